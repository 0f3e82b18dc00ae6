"""Open311 GeoReport v2 (XML and JSON) with the FixMyStreet ``servicerequestupdates`` extension."""
