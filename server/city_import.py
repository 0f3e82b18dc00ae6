"""A city of its own: boroughs, service types (with SLAs and Open311 questions) and crews from
files, and the same files written back from a database (docs/city.md).

- boroughs: GeoJSON FeatureCollection (Polygon or MultiPolygon features, ``code`` and ``name``)
- service types: YAML, a list of service types, each with its optional ``open311_attributes``
- crews: CSV with the header ``code,name,borough_code,kind``

``tournee city import`` reads any of the three and applies them in one transaction (all or
nothing: a bad line anywhere writes nothing); ``tournee city export DIR`` writes the three files
of the current database (the Québec demo's are the example). The demo seed goes through
:func:`apply` too, so an installation's own city and the demo take the same path.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from server.city.models import Borough
from server.city.service import BoroughLimits, check_borough, parse_feature_collection, save_limits
from server.crews.models import Crew, CrewCreate
from server.open311.models import AttributeDefinition, Open311ServiceAttribute
from server.requests.models import ServiceType, ServiceTypeCreate

CREW_COLUMNS = ("code", "name", "borough_code", "kind")
SERVICE_TYPE_FIELDS = (
    "code",
    "name_fr",
    "name_en",
    "description_fr",
    "description_en",
    "category",
    "default_priority",
    "sla_hours",
    "evidence_required",
    "crew_kind",
)


class CityFileError(ValueError):
    """A file that cannot be imported; the message names the file and the place."""


class ServiceTypeFile(ServiceTypeCreate):
    """One service type of the YAML file; ``open311_attributes`` None: leave them as they are."""

    open311_attributes: list[AttributeDefinition] | None = None


@dataclass
class CityData:
    boroughs: list[BoroughLimits] = field(default_factory=list)
    service_types: list[ServiceTypeFile] = field(default_factory=list)
    crews: list[CrewCreate] = field(default_factory=list)


def _problem(source: str, exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"])
    return f"{source}: {where}: {first['msg']}"


def read_boroughs(path: Path) -> list[BoroughLimits]:
    try:
        return parse_feature_collection(json.loads(path.read_text("utf-8")))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, ValueError) as exc:
        raise CityFileError(f"{path}: {exc}") from exc


def read_service_types(path: Path) -> list[ServiceTypeFile]:
    try:
        data = yaml.safe_load(path.read_text("utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise CityFileError(f"{path}: {exc}") from exc
    if isinstance(data, dict):
        data = data.get("service_types")
    if not isinstance(data, list) or not data:
        raise CityFileError(f"{path}: a list of service types (or 'service_types: [...]')")
    types: list[ServiceTypeFile] = []
    for index, item in enumerate(data):
        try:
            types.append(ServiceTypeFile.model_validate(item))
        except ValidationError as exc:
            raise CityFileError(_problem(f"{path}: service type {index + 1}", exc)) from exc
    _unique(path, [t.code for t in types])
    return types


def read_crews(path: Path) -> list[CrewCreate]:
    try:
        text = path.read_text("utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise CityFileError(f"{path}: {exc}") from exc
    reader = csv.DictReader(io.StringIO(text))
    if tuple(reader.fieldnames or ()) != CREW_COLUMNS:
        raise CityFileError(f"{path}: the header must be {','.join(CREW_COLUMNS)}")
    crews: list[CrewCreate] = []
    for row in reader:
        try:
            crews.append(CrewCreate.model_validate(row))
        except ValidationError as exc:
            raise CityFileError(_problem(f"{path}: line {reader.line_num}", exc)) from exc
    if not crews:
        raise CityFileError(f"{path}: no crew")
    _unique(path, [c.code for c in crews])
    return crews


def _unique(path: Path, codes: Sequence[str]) -> None:
    if len(set(codes)) != len(codes):
        twice = sorted({c for c in codes if codes.count(c) > 1})
        raise CityFileError(f"{path}: codes appear twice: {', '.join(twice)}")


async def _save_service_types(tx: AsyncSession, types: Sequence[ServiceTypeFile]) -> list[int]:
    counts = [0, 0]
    for item in types:
        row = (
            await tx.execute(select(ServiceType).where(col(ServiceType.code) == item.code))
        ).scalar_one_or_none()
        counts[row is not None] += 1
        row = row or ServiceType.model_validate(item.model_dump(include=set(SERVICE_TYPE_FIELDS)))
        for name in SERVICE_TYPE_FIELDS:
            setattr(row, name, getattr(item, name))
        tx.add(row)
        await tx.flush()
        if item.open311_attributes is not None:
            assert row.id is not None
            await tx.execute(
                delete(Open311ServiceAttribute).where(
                    col(Open311ServiceAttribute.service_type_id) == row.id
                )
            )
            for attribute in item.open311_attributes:
                values = [v.model_dump() for v in attribute.values]
                fields = attribute.model_dump(exclude={"values"})
                tx.add(Open311ServiceAttribute(service_type_id=row.id, values=values, **fields))
    await tx.flush()
    return counts


async def _save_crews(tx: AsyncSession, crews: Sequence[CrewCreate]) -> list[int]:
    counts = [0, 0]
    for item in crews:
        await check_borough(tx, item.borough_code)
        found = await tx.execute(select(Crew).where(col(Crew.code) == item.code))
        row = found.scalar_one_or_none()
        counts[row is not None] += 1
        row = row or Crew(**item.model_dump())
        row.name, row.borough_code, row.kind = item.name, item.borough_code, item.kind
        tx.add(row)
    await tx.flush()
    return counts


async def apply(tx: AsyncSession, data: CityData) -> dict[str, tuple[int, int]]:
    """Create or update everything in ``data`` (boroughs first: crews name them). Returns
    ``{"boroughs": (created, updated), "service_types": …, "crews": …}``."""
    report: dict[str, tuple[int, int]] = {}
    if data.boroughs:
        report["boroughs"] = await save_limits(tx, data.boroughs)
    if data.service_types:
        created, updated = await _save_service_types(tx, data.service_types)
        report["service_types"] = (created, updated)
    if data.crews:
        created, updated = await _save_crews(tx, data.crews)
        report["crews"] = (created, updated)
    return report


async def export(tx: AsyncSession, directory: Path) -> list[Path]:
    """Write boroughs.geojson, service-types.yaml and crews.csv of the database to ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    boroughs = (await tx.execute(select(Borough).order_by(col(Borough.code)))).scalars()
    features = [
        {
            "type": "Feature",
            "properties": {"code": b.code, "name": b.name},
            "geometry": b.geometry,
        }
        for b in boroughs
        if b.geometry
    ]
    collection = {"type": "FeatureCollection", "features": features}
    attributes: dict[int, list[dict[str, Any]]] = {}
    for attribute in (
        await tx.execute(
            select(Open311ServiceAttribute).order_by(
                col(Open311ServiceAttribute.service_type_id),
                col(Open311ServiceAttribute.order),
            )
        )
    ).scalars():
        definition = AttributeDefinition.model_validate(attribute.model_dump())
        attributes.setdefault(attribute.service_type_id, []).append(
            definition.model_dump(exclude_none=True)
        )
    types = [
        {
            **{name: getattr(st, name) for name in SERVICE_TYPE_FIELDS},
            "open311_attributes": attributes.get(st.id or 0, []),
        }
        for st in (await tx.execute(select(ServiceType).order_by(col(ServiceType.code)))).scalars()
    ]
    crews = io.StringIO()
    writer = csv.writer(crews, lineterminator="\n")
    writer.writerow(CREW_COLUMNS)
    for crew in (await tx.execute(select(Crew).order_by(col(Crew.code)))).scalars():
        writer.writerow([getattr(crew, name) for name in CREW_COLUMNS])
    written = {
        "boroughs.geojson": json.dumps(collection, ensure_ascii=False) + "\n",
        "service-types.yaml": yaml.safe_dump(
            {"service_types": types}, allow_unicode=True, sort_keys=False, width=100
        ),
        "crews.csv": crews.getvalue(),
    }
    paths = []
    for name, text in written.items():
        path = directory / name
        path.write_text(text, "utf-8")
        paths.append(path)
    return paths
