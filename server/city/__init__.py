"""The city itself: its boroughs (names and limits), stored in the database.

The limits come from the city's own data (``tournee city import boroughs.geojson``) or, for the
demo, from server/demo_data.py through ``tournee demo``. Which borough a point is in is a query
on that table (:func:`server.city.service.borough_of`), never a read of the demo file."""
