"""Boroughs: code, name and limits (a GeoJSON Polygon or MultiPolygon in ``[lon, lat]``)."""

from __future__ import annotations

from typing import Any

from sqlmodel import Field, SQLModel

from server.dbtypes import JSONDict


class Borough(SQLModel, table=True):
    __tablename__ = "borough"

    code: str = Field(primary_key=True, max_length=40)
    name: str = Field(max_length=120)
    # The limits (None: a borough known by name only, e.g. created before an import) and their
    # bounding box, a cheap prefilter before the polygon test.
    geometry: dict[str, Any] | None = Field(default=None, sa_type=JSONDict)
    min_lat: float | None = None
    min_lon: float | None = None
    max_lat: float | None = None
    max_lon: float | None = None


class BoroughPublic(SQLModel):
    code: str
    name: str
