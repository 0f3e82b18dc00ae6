"""Small geodesy helpers (no GIS dependency needed at city scale)."""

from __future__ import annotations

import math
from collections.abc import Sequence

EARTH_RADIUS_M = 6_371_008.8


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp = p2 - p1
    dl = math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def bbox_around(lat: float, lon: float, radius_m: float) -> tuple[float, float, float, float]:
    """(min_lat, min_lon, max_lat, max_lon) enclosing a circle: an index-friendly prefilter."""
    dlat = math.degrees(radius_m / EARTH_RADIUS_M)
    dlon = math.degrees(radius_m / (EARTH_RADIUS_M * max(0.01, math.cos(math.radians(lat)))))
    return (lat - dlat, lon - dlon, lat + dlat, lon + dlon)


def in_bounds(lat: float, lon: float, bounds: tuple[float, float, float, float]) -> bool:
    min_lat, min_lon, max_lat, max_lon = bounds
    return min_lat <= lat <= max_lat and min_lon <= lon <= max_lon


def point_in_ring(x: float, y: float, ring: Sequence[Sequence[float]]) -> bool:
    """Even-odd ray casting on a simple ring of ``(x, y)`` vertices (closed or not).

    Fine at city scale: latitude and longitude are treated as plane coordinates."""
    inside = False
    count = len(ring)
    for i in range(count):
        x1, y1 = ring[i][0], ring[i][1]
        x2, y2 = ring[(i + 1) % count][0], ring[(i + 1) % count][1]
        if (x1 > x) != (x2 > x):
            y_cross = y1 + (x - x1) * (y2 - y1) / (x2 - x1)
            if y < y_cross:
                inside = not inside
    return inside
