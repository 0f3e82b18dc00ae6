"""Boroughs: which one holds a point, the list, and importing the city's limits (GeoJSON)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from server.city.models import Borough, BoroughPublic
from server.errors import Invalid
from server.geo import point_in_ring

Ring = Sequence[Sequence[float]]


def polygons_of(geometry: dict[str, Any]) -> list[list[Ring]]:
    """The polygons (outer ring, then holes) of a GeoJSON Polygon or MultiPolygon."""
    if geometry.get("type") == "Polygon":
        return [geometry["coordinates"]]
    if geometry.get("type") == "MultiPolygon":
        return list(geometry["coordinates"])
    return []


def contains(geometry: dict[str, Any], lat: float, lon: float) -> bool:
    """Inside an outer ring and outside its holes (coordinates are ``[lon, lat]``)."""
    for outer, *holes in polygons_of(geometry):
        if point_in_ring(lon, lat, outer) and not any(point_in_ring(lon, lat, h) for h in holes):
            return True
    return False


async def borough_of(tx: AsyncSession, lat: float, lon: float) -> str | None:
    """Code of the borough containing the point, or None (outside every known limit)."""
    candidates = await tx.execute(
        select(col(Borough.code), col(Borough.geometry))
        .where(
            col(Borough.min_lat) <= lat,
            col(Borough.max_lat) >= lat,
            col(Borough.min_lon) <= lon,
            col(Borough.max_lon) >= lon,
        )
        .order_by(col(Borough.code))
    )
    for code, geometry in candidates.all():
        if geometry and contains(geometry, lat, lon):
            return str(code)
    return None


async def list_boroughs(tx: AsyncSession) -> list[BoroughPublic]:
    rows = (await tx.execute(select(Borough).order_by(col(Borough.name)))).scalars()
    return [BoroughPublic(code=b.code, name=b.name) for b in rows]


@dataclass(frozen=True)
class BoroughLimits:
    code: str
    name: str
    geometry: dict[str, Any]


def _bbox(geometry: dict[str, Any]) -> tuple[float, float, float, float]:
    points = [p for polygon in polygons_of(geometry) for ring in polygon for p in ring]
    lons = [float(p[0]) for p in points]
    lats = [float(p[1]) for p in points]
    return min(lats), min(lons), max(lats), max(lons)


def _valid_ring(ring: Any) -> bool:
    return (
        isinstance(ring, list)
        and len(ring) >= 4
        and all(
            isinstance(p, list)
            and len(p) >= 2
            and all(isinstance(v, int | float) and not isinstance(v, bool) for v in p[:2])
            and -180 <= p[0] <= 180
            and -90 <= p[1] <= 90
            for p in ring
        )
    )


def parse_feature_collection(data: Any) -> list[BoroughLimits]:
    """Boroughs from a GeoJSON FeatureCollection: each feature a Polygon or MultiPolygon with
    ``code`` and ``name`` properties (``nom`` is read as a name too). Invalid: ValueError."""
    if not isinstance(data, dict) or data.get("type") != "FeatureCollection":
        raise ValueError("not a GeoJSON FeatureCollection")
    boroughs: list[BoroughLimits] = []
    for index, feature in enumerate(data.get("features") or []):
        where = f"feature {index}"
        properties = (feature or {}).get("properties") or {}
        geometry = (feature or {}).get("geometry") or {}
        code = str(properties.get("code") or "").strip().lower()
        name = str(properties.get("name") or properties.get("nom") or "").strip()
        if not code or len(code) > 40 or not name or len(name) > 120:
            raise ValueError(f"{where}: properties 'code' (≤ 40) and 'name' (≤ 120) are required")
        polygons = polygons_of(geometry)
        if not polygons or not all(
            polygon and all(_valid_ring(ring) for ring in polygon) for polygon in polygons
        ):
            raise ValueError(f"{where} ({code}): a Polygon or MultiPolygon of [lon, lat] rings")
        boroughs.append(
            BoroughLimits(
                code, name, {"type": geometry["type"], "coordinates": geometry["coordinates"]}
            )
        )
    if not boroughs:
        raise ValueError("no feature")
    codes = [b.code for b in boroughs]
    if len(set(codes)) != len(codes):
        raise ValueError("a borough code appears twice")
    return boroughs


async def save_limits(tx: AsyncSession, boroughs: Iterable[BoroughLimits]) -> tuple[int, int]:
    """Insert or update each borough's name and limits. Returns (created, updated)."""
    created = updated = 0
    for limits in boroughs:
        row = await tx.get(Borough, limits.code)
        if row is None:
            row = Borough(code=limits.code, name=limits.name)
            created += 1
        else:
            updated += 1
        row.name = limits.name
        row.geometry = limits.geometry
        row.min_lat, row.min_lon, row.max_lat, row.max_lon = _bbox(limits.geometry)
        tx.add(row)
    await tx.flush()
    return created, updated


async def check_borough(tx: AsyncSession, code: str) -> None:
    """Invalid (400 ``borough_unknown``) unless the borough exists."""
    if await tx.get(Borough, code) is None:
        raise Invalid("borough_unknown", code=code)
