"""Exports of work orders and service requests (CSV, GeoJSON) and the SLA report.

Rows are read in batches of ``BATCH`` by keyset on ``id``, each batch in its own short
transaction (a long read must not hold SQLite's write lock, taken at BEGIN by server/db.py), and
turned into text as they come: an export of any size never sits in memory. Nothing here writes.
"""

from __future__ import annotations

import csv
import io
import json
import math
import statistics
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, or_, select
from sqlmodel import col

from server.db import Database
from server.dbtypes import utcnow
from server.requests.models import ServiceRequest, ServiceType
from server.workorders.models import WorkOrder
from server.workorders.service import OPEN

BATCH = 500
AnySelect = Select[*tuple[Any, ...]]


@dataclass(frozen=True)
class ExportFilters:
    """The work-order list's filters, plus a date range on ``created_at`` (since ≤ t < until)."""

    status: Sequence[str] = ()
    service_type_id: int | None = None
    crew_id: int | None = None
    borough: str | None = None
    overdue: bool | None = None
    since: datetime | None = None
    until: datetime | None = None


def _iso(value: datetime | None) -> str:
    return value.isoformat().replace("+00:00", "Z") if value else ""


def _cell(value: object) -> object:
    """Text a person typed cannot start a spreadsheet formula (CSV injection)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def _overdue_clause(overdue: bool | None, now: datetime) -> Any:
    if overdue is True:
        return and_(col(WorkOrder.status).in_(OPEN), col(WorkOrder.due_at) < now)
    if overdue is False:
        return or_(col(WorkOrder.status).not_in(OPEN), col(WorkOrder.due_at) >= now)
    return None


def work_order_query(filters: ExportFilters, now: datetime) -> AnySelect:
    query = select(WorkOrder, col(ServiceType.code)).join(
        ServiceType,
        col(ServiceType.id) == col(WorkOrder.service_type_id),
    )
    if filters.status:
        query = query.where(col(WorkOrder.status).in_(filters.status))
    if filters.service_type_id is not None:
        query = query.where(col(WorkOrder.service_type_id) == filters.service_type_id)
    if filters.crew_id is not None:
        query = query.where(col(WorkOrder.crew_id) == filters.crew_id)
    if filters.borough:
        query = query.where(col(WorkOrder.borough_code) == filters.borough)
    clause = _overdue_clause(filters.overdue, now)
    if clause is not None:
        query = query.where(clause)
    if filters.since is not None:
        query = query.where(col(WorkOrder.created_at) >= filters.since)
    if filters.until is not None:
        query = query.where(col(WorkOrder.created_at) < filters.until)
    return query


def request_query(filters: ExportFilters, now: datetime) -> AnySelect:
    """Requests, with their work order (if any): crew and overdue filter through it."""
    query = (
        select(ServiceRequest, col(ServiceType.code), WorkOrder)
        .join(ServiceType, col(ServiceType.id) == col(ServiceRequest.service_type_id))
        .outerjoin(WorkOrder, col(WorkOrder.id) == col(ServiceRequest.work_order_id))
    )
    if filters.status:
        query = query.where(col(ServiceRequest.status).in_(filters.status))
    if filters.service_type_id is not None:
        query = query.where(col(ServiceRequest.service_type_id) == filters.service_type_id)
    if filters.crew_id is not None:
        query = query.where(col(WorkOrder.crew_id) == filters.crew_id)
    if filters.borough:
        query = query.where(col(ServiceRequest.borough_code) == filters.borough)
    clause = _overdue_clause(filters.overdue, now)
    if clause is not None:
        query = query.where(col(WorkOrder.id).is_not(None), clause)
    if filters.since is not None:
        query = query.where(col(ServiceRequest.created_at) >= filters.since)
    if filters.until is not None:
        query = query.where(col(ServiceRequest.created_at) < filters.until)
    return query


async def _batches(
    db: Database, query: AnySelect, id_column: Any, batch: int = BATCH
) -> AsyncIterator[Sequence[Any]]:
    """Rows of ``query`` in id order, ``batch`` at a time, each batch in its own transaction."""
    after = 0
    while True:
        async with db.sessionmaker() as session:  # closed (lock released) before yielding
            rows = (
                await session.execute(
                    query.where(id_column > after).order_by(id_column).limit(batch)
                )
            ).all()
        if not rows:
            return
        yield rows
        after = int(rows[-1][0].id)
        if len(rows) < batch:
            return


WORK_ORDER_COLUMNS = (
    "id",
    "service_code",
    "status",
    "priority",
    "borough_code",
    "crew_id",
    "title",
    "address",
    "lat",
    "lon",
    "created_at",
    "due_at",
    "assigned_at",
    "completed_at",
    "cancelled_at",
    "outcome",
    "overdue",
    "planned",
)
# reporter contact: dispatchers and admins already see it on each request (ServiceRequestPublic)
REQUEST_COLUMNS = (
    "id",
    "service_code",
    "status",
    "borough_code",
    "address",
    "lat",
    "lon",
    "description",
    "channel",
    "language",
    "created_at",
    "closed_at",
    "work_order_id",
    "work_order_status",
    "crew_id",
    "reporter_name",
    "reporter_phone",
    "reporter_email",
    "media_url",
)


def _work_order_record(wo: WorkOrder, code: str, now: datetime) -> dict[str, Any]:
    return {
        "id": wo.id,
        "service_code": code,
        "status": wo.status,
        "priority": wo.priority,
        "borough_code": wo.borough_code or "",
        "crew_id": wo.crew_id if wo.crew_id is not None else "",
        "title": wo.title,
        "address": wo.address,
        "lat": wo.lat,
        "lon": wo.lon,
        "created_at": _iso(wo.created_at),
        "due_at": _iso(wo.due_at),
        "assigned_at": _iso(wo.assigned_at),
        "completed_at": _iso(wo.completed_at),
        "cancelled_at": _iso(wo.cancelled_at),
        "outcome": wo.outcome or "",
        "overdue": wo.status in OPEN and wo.due_at < now,
        "planned": wo.planned,
    }


def _request_record(sr: ServiceRequest, code: str, wo: WorkOrder | None) -> dict[str, Any]:
    return {
        "id": sr.id,
        "service_code": code,
        "status": sr.status,
        "borough_code": sr.borough_code or "",
        "address": sr.address,
        "lat": sr.lat,
        "lon": sr.lon,
        "description": sr.description,
        "channel": sr.channel,
        "language": sr.language,
        "created_at": _iso(sr.created_at),
        "closed_at": _iso(sr.closed_at),
        "work_order_id": sr.work_order_id if sr.work_order_id is not None else "",
        "work_order_status": wo.status if wo else "",
        "crew_id": wo.crew_id if wo and wo.crew_id is not None else "",
        "reporter_name": sr.reporter_name or "",
        "reporter_phone": sr.reporter_phone or "",
        "reporter_email": sr.reporter_email or "",
        "media_url": sr.media_url or "",
    }


def _csv_line(values: Iterable[object]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow([_cell(v) for v in values])
    return buffer.getvalue()


async def _records(
    db: Database, kind: str, filters: ExportFilters
) -> AsyncIterator[dict[str, Any]]:
    now = utcnow()
    if kind == "work-orders":
        query = work_order_query(filters, now)
        async for rows in _batches(db, query, col(WorkOrder.id)):
            for wo, code in rows:
                yield _work_order_record(wo, code, now)
    else:
        query = request_query(filters, now)
        async for rows in _batches(db, query, col(ServiceRequest.id)):
            for sr, code, wo in rows:
                yield _request_record(sr, code, wo)


def columns_of(kind: str) -> tuple[str, ...]:
    return WORK_ORDER_COLUMNS if kind == "work-orders" else REQUEST_COLUMNS


async def csv_rows(db: Database, kind: str, filters: ExportFilters) -> AsyncIterator[str]:
    columns = columns_of(kind)
    yield "\ufeff" + _csv_line(columns)  # BOM: spreadsheets then read UTF-8 accents right
    async for record in _records(db, kind, filters):
        yield _csv_line(record[c] for c in columns)


async def geojson_features(db: Database, kind: str, filters: ExportFilters) -> AsyncIterator[str]:
    """A GeoJSON FeatureCollection (RFC 7946: [lon, lat], WGS 84), one feature per chunk."""
    yield '{"type":"FeatureCollection","features":['
    first = True
    async for record in _records(db, kind, filters):
        properties = {k: v for k, v in record.items() if k not in ("lat", "lon")}
        feature = {
            "type": "Feature",
            "id": record["id"],
            "geometry": {"type": "Point", "coordinates": [record["lon"], record["lat"]]},
            "properties": properties,
        }
        yield ("" if first else ",") + json.dumps(feature, ensure_ascii=False)
        first = False
    yield "]}\n"


# --- SLA report --------------------------------------------------------------------------------


@dataclass
class _Group:
    service_code: str
    borough_code: str
    sla_hours: int
    received: int = 0
    hours: list[float] | None = None

    def __post_init__(self) -> None:
        self.hours = []


def nearest_rank(values: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile of sorted ``values`` (an observed value, never interpolated)."""
    return values[max(0, math.ceil(fraction * len(values)) - 1)]


SLA_COLUMNS = (
    "service_code",
    "borough_code",
    "sla_hours",
    "received",
    "done",
    "median_hours",
    "p90_hours",
    "within_sla_pct",
)


async def sla_report(db: Database, since: datetime, until: datetime) -> list[dict[str, Any]]:
    """Per service type and borough, for requests received in [since, until).

    ``done`` counts those whose work order is completed; time to completion runs from the
    request's ``created_at`` to the work order's ``completed_at``, in hours; within SLA means at
    most the service type's ``sla_hours``. Only durations are kept in memory (one float each).
    """
    query = (
        select(ServiceRequest, col(ServiceType.code), col(ServiceType.sla_hours), WorkOrder)
        .join(ServiceType, col(ServiceType.id) == col(ServiceRequest.service_type_id))
        .outerjoin(WorkOrder, col(WorkOrder.id) == col(ServiceRequest.work_order_id))
        .where(
            col(ServiceRequest.created_at) >= since,
            col(ServiceRequest.created_at) < until,
        )
    )
    groups: dict[tuple[str, str], _Group] = {}
    async for rows in _batches(db, query, col(ServiceRequest.id)):
        for sr, code, sla_hours, wo in rows:
            key = (code, sr.borough_code or "")
            group = groups.get(key)
            if group is None:
                group = groups[key] = _Group(code, sr.borough_code or "", int(sla_hours))
            group.received += 1
            if wo is not None and wo.status == "completed" and wo.completed_at is not None:
                assert group.hours is not None
                group.hours.append((wo.completed_at - sr.created_at).total_seconds() / 3600)
    report = []
    for key in sorted(groups):
        group = groups[key]
        hours = sorted(group.hours or [])
        done = len(hours)
        within = sum(1 for h in hours if h <= group.sla_hours)
        report.append(
            {
                "service_code": group.service_code,
                "borough_code": group.borough_code or None,
                "sla_hours": group.sla_hours,
                "received": group.received,
                "done": done,
                "median_hours": round(statistics.median(hours), 2) if hours else None,
                "p90_hours": round(nearest_rank(hours, 0.9), 2) if hours else None,
                "within_sla_pct": round(100 * within / done, 1) if done else None,
            }
        )
    return report


def sla_csv(report: list[dict[str, Any]]) -> Iterable[str]:
    yield "\ufeff" + _csv_line(SLA_COLUMNS)
    for row in report:
        yield _csv_line("" if row[c] is None else row[c] for c in SLA_COLUMNS)
