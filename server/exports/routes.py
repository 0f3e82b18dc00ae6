"""Dispatcher downloads: work orders and requests as CSV or GeoJSON, and the SLA report."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Literal

from litestar import Controller, Response, get
from litestar.di import NamedDependency, Provide
from litestar.params import FromQuery, Parameter
from litestar.response import Stream

from server.accounts.auth import dispatcher_guard
from server.dbtypes import utcnow
from server.errors import DomainError, Invalid
from server.exports import service
from server.params import Db, QueryDbId, Tx
from server.requests.service import service_type_by_code

Format = Annotated[
    Literal["csv", "geojson"], Parameter(description="csv (UTF-8 with BOM) or geojson")
]
Since = Annotated[
    datetime | None, Parameter(description="Created at or after (ISO 8601, UTC if no offset)")
]
Until = Annotated[datetime | None, Parameter(description="Created before (ISO 8601)")]
MEDIA = {"csv": "text/csv; charset=utf-8", "geojson": "application/geo+json"}
MAX_SLA_DAYS = 400


def _utc(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=utcnow().tzinfo)


def _range(
    since: datetime | None, until: datetime | None
) -> tuple[datetime | None, datetime | None]:
    since, until = _utc(since), _utc(until)
    if since is not None and until is not None and since >= until:
        raise Invalid("date_range_invalid")
    return since, until


async def _filters(
    tx: Tx,
    status: Annotated[str | None, Parameter(description="Comma list of statuses")] = None,
    service_code: FromQuery[str | None] = None,
    crew_id: QueryDbId = None,
    borough: FromQuery[str | None] = None,
    overdue: FromQuery[bool | None] = None,
    since: Since = None,
    until: Until = None,
) -> service.ExportFilters:
    """The list's filters + a created date range, checked before the first byte is streamed (a
    database refusal once the 200 is sent would cut the download short)."""
    if any(value and "\x00" in value for value in (status, service_code, borough)):
        raise DomainError("text_nul_character", 400)
    service_type_id = None
    if service_code:  # an unknown code is a 400 before the first byte is streamed
        service_type_id = (await service_type_by_code(tx, service_code)).id
    since, until = _range(since, until)
    return service.ExportFilters(
        status=[s.strip() for s in (status or "").split(",") if s.strip()],
        service_type_id=service_type_id,
        crew_id=crew_id,
        borough=borough,
        overdue=overdue,
        since=since,
        until=until,
    )


Filters = NamedDependency[service.ExportFilters]


def _stream(db: Db, kind: str, fmt: str, filters: service.ExportFilters) -> Stream:
    body = (
        service.csv_rows(db, kind, filters)
        if fmt == "csv"
        else service.geojson_features(db, kind, filters)
    )
    stamp = utcnow().strftime("%Y%m%d-%H%M")
    return Stream(
        body,
        media_type=MEDIA[fmt],
        headers={
            "Content-Disposition": f'attachment; filename="tournee-{kind}-{stamp}.{fmt}"',
            "Cache-Control": "no-store",
        },
    )


class ExportController(Controller):
    path = "/api/v1/exports"
    guards = [dispatcher_guard]
    tags = ["exports"]
    dependencies = {"filters": Provide(_filters)}

    @get(
        "/work-orders",
        operation_id="exportWorkOrders",
        summary="Work orders as CSV or GeoJSON (the list's filters + created date range)",
    )
    async def export_work_orders(
        self,
        db: Db,
        filters: Filters,
        format: Format = "csv",
    ) -> Stream:
        return _stream(db, "work-orders", format, filters)

    @get(
        "/requests",
        operation_id="exportRequests",
        summary="Service requests (with reporter contact) as CSV or GeoJSON",
    )
    async def export_requests(
        self,
        db: Db,
        filters: Filters,
        format: Format = "csv",
    ) -> Stream:
        return _stream(db, "requests", format, filters)

    @get(
        "/sla",
        operation_id="slaReport",
        summary="Per service type and borough: received, done, median/p90 hours, % within SLA",
    )
    async def sla_report(
        self,
        db: Db,
        format: Annotated[Literal["json", "csv"], Parameter()] = "json",
        since: Since = None,
        until: Until = None,
    ) -> Response[list[dict[str, object]]] | Stream:
        """Requests received in [since, until); by default the last 30 days."""
        since, until = _range(since, until)
        until = until or utcnow()
        since = since or until - timedelta(days=30)
        if since >= until:
            raise Invalid("date_range_invalid")
        if until - since > timedelta(days=MAX_SLA_DAYS):
            raise Invalid("date_range_too_long", days=MAX_SLA_DAYS)
        report = await service.sla_report(db, since, until)
        if format == "json":
            return Response(report)
        return Stream(
            service.sla_csv(report),
            media_type=MEDIA["csv"],
            headers={
                "Content-Disposition": (
                    f'attachment; filename="tournee-sla-{since:%Y%m%d}-{until:%Y%m%d}.csv"'
                ),
                "Cache-Control": "no-store",
            },
        )
