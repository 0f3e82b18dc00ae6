"""Open311 requests out, which ones: the query and paging parameters of GET requests and the
look-ups by id and tracking token."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from server.dbtypes import MAX_ID, utcnow
from server.errors import Invalid
from server.open311.service import DEFAULT_WINDOW, MAX_RESULTS, Open311NotFound, invalid, parse_w3c
from server.requests.models import ServiceRequest, ServiceType


@dataclass(frozen=True)
class RequestQuery:
    ids: list[str]
    service_codes: list[str]
    statuses: list[str]
    start: datetime | None
    end: datetime | None


def _csv(raw: str | None) -> list[str]:
    return [p.strip() for p in (raw or "").split(",") if p.strip()]


def build_query(params: dict[str, str]) -> RequestQuery:
    statuses = [s.lower() for s in _csv(params.get("status"))]
    for status in statuses:
        if status not in ("open", "closed"):
            raise Invalid("open311_status_invalid", status=status[:40])
    start = params.get("start_date")
    end = params.get("end_date")
    return RequestQuery(
        ids=_csv(params.get("service_request_id")),
        service_codes=_csv(params.get("service_code")),
        statuses=statuses,
        start=parse_w3c(start, "start_date") if start and start.strip() else None,
        end=parse_w3c(end, "end_date") if end and end.strip() else None,
    )


def window(start: datetime | None, end: datetime | None) -> tuple[datetime, datetime | None]:
    if start is None:
        start = (end or utcnow()) - DEFAULT_WINDOW
    return start, end


def _ids(raw: Iterable[str]) -> list[int]:
    ids = []
    for part in raw:
        if part.isascii() and part.isdigit() and 1 <= int(part) <= MAX_ID:
            ids.append(int(part))
    return ids


@dataclass(frozen=True)
class Page:
    number: int = 1
    size: int = MAX_RESULTS


def page_of(params: dict[str, str]) -> Page:
    """``page`` (from 1) and ``page_size`` (1–1000, default 1000): the common extension."""
    values = []
    for name, default, high in (("page", 1, 1_000_000), ("page_size", MAX_RESULTS, MAX_RESULTS)):
        raw = (params.get(name) or "").strip()
        if not raw:
            values.append(default)
            continue
        if not (raw.isascii() and raw.isdigit() and len(raw) <= 8) or not 1 <= int(raw) <= high:
            raise invalid(name)
        values.append(int(raw))
    return Page(number=values[0], size=values[1])


async def find_requests(
    tx: AsyncSession, query: RequestQuery, page: Page | None = None
) -> list[ServiceRequest]:
    page = page or Page()
    stmt = select(ServiceRequest)
    if query.ids:
        # service_request_id overrides every other filter
        stmt = stmt.where(col(ServiceRequest.id).in_(_ids(query.ids) or [0]))
    else:
        if query.service_codes:
            stmt = stmt.join(
                ServiceType, col(ServiceType.id) == col(ServiceRequest.service_type_id)
            ).where(col(ServiceType.code).in_(query.service_codes))
        if query.statuses and set(query.statuses) != {"open", "closed"}:
            if "closed" in query.statuses:
                stmt = stmt.where(col(ServiceRequest.status) == "closed")
            else:
                stmt = stmt.where(col(ServiceRequest.status) != "closed")
        start, end = window(query.start, query.end)
        stmt = stmt.where(col(ServiceRequest.created_at) >= start)
        if end is not None:
            stmt = stmt.where(col(ServiceRequest.created_at) <= end)
    # newest first, the id breaking ties: a stable order, so pages neither skip nor repeat
    stmt = (
        stmt.order_by(col(ServiceRequest.created_at).desc(), col(ServiceRequest.id).desc())
        .limit(page.size)
        .offset((page.number - 1) * page.size)
    )
    return list((await tx.execute(stmt)).scalars())


async def request_by_id(tx: AsyncSession, raw_id: str) -> ServiceRequest:
    ids = _ids([raw_id])
    found = await tx.get(ServiceRequest, ids[0]) if ids else None
    if found is None:
        raise Open311NotFound("open311_request_not_found", id=raw_id[:40])
    return found


async def request_by_token(tx: AsyncSession, token: str) -> ServiceRequest:
    found = (
        await tx.execute(
            select(ServiceRequest).where(col(ServiceRequest.tracking_token) == token[:64])
        )
    ).scalar_one_or_none()
    if found is None:
        raise Open311NotFound("open311_token_not_found")
    return found
