"""Reading work orders: the filtered, paginated list, public views, history and detail (what
the dispatcher and the crew see). Writes are in :mod:`server.workorders.service`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from server.accounts.auth import Actor
from server.audit import AuditEvent, AuditEventPublic
from server.dbtypes import utcnow
from server.requests.models import RequestForCrew, ServiceRequest, ServiceType
from server.requests.service import service_type_by_code, service_types_by_id, to_public
from server.workorders.models import (
    WorkOrder,
    WorkOrderDetail,
    WorkOrderForCrew,
    WorkOrderPage,
    WorkOrderPublic,
)
from server.workorders.notes import notes_of
from server.workorders.service import OPEN, ensure_visible, load


@dataclass(frozen=True)
class WorkOrderFilters:
    status: Sequence[str] = ()
    service_code: str | None = None
    crew_id: int | None = None
    borough: str | None = None
    bbox: tuple[float, float, float, float] | None = None  # min_lon, min_lat, max_lon, max_lat
    overdue: bool | None = None
    limit: int = 50
    offset: int = 0


def is_overdue(wo: WorkOrder, now: datetime) -> bool:
    return wo.status in OPEN and wo.due_at < now


async def open_counts(tx: AsyncSession, crew_ids: Sequence[int]) -> dict[int, int]:
    """Open work orders per crew (the crews' list shows it: ``crew_load`` in server/app.py)."""
    if not crew_ids:
        return {}
    rows = await tx.execute(
        select(col(WorkOrder.crew_id), func.count())
        .where(col(WorkOrder.crew_id).in_(crew_ids), col(WorkOrder.status).in_(OPEN))
        .group_by(col(WorkOrder.crew_id))
    )
    return {int(crew_id): int(count) for crew_id, count in rows.all() if crew_id is not None}


async def list_work_orders(
    tx: AsyncSession, filters: WorkOrderFilters
) -> tuple[list[WorkOrder], int]:
    query = select(WorkOrder)
    if filters.status:
        query = query.where(col(WorkOrder.status).in_(filters.status))
    if filters.service_code:
        st = await service_type_by_code(tx, filters.service_code)
        query = query.where(col(WorkOrder.service_type_id) == st.id)
    if filters.crew_id is not None:
        query = query.where(col(WorkOrder.crew_id) == filters.crew_id)
    if filters.borough:
        query = query.where(col(WorkOrder.borough_code) == filters.borough)
    if filters.bbox:
        min_lon, min_lat, max_lon, max_lat = filters.bbox
        query = query.where(
            col(WorkOrder.lat).between(min_lat, max_lat),
            col(WorkOrder.lon).between(min_lon, max_lon),
        )
    now = utcnow()
    if filters.overdue is True:
        query = query.where(col(WorkOrder.status).in_(OPEN), col(WorkOrder.due_at) < now)
    elif filters.overdue is False:
        query = query.where(or_(col(WorkOrder.status).not_in(OPEN), col(WorkOrder.due_at) >= now))
    total = (await tx.execute(select(func.count()).select_from(query.subquery()))).scalar_one()
    rows = (
        await tx.execute(
            query.order_by(col(WorkOrder.due_at), col(WorkOrder.priority), col(WorkOrder.id))
            .limit(filters.limit)
            .offset(filters.offset)
        )
    ).scalars()
    return list(rows), int(total)


async def request_counts(tx: AsyncSession, ids: list[int]) -> dict[int, int]:
    if not ids:
        return {}
    rows = await tx.execute(
        select(col(ServiceRequest.work_order_id), func.count())
        .where(col(ServiceRequest.work_order_id).in_(ids))
        .group_by(col(ServiceRequest.work_order_id))
    )
    return {int(wo_id): int(count) for wo_id, count in rows.all() if wo_id is not None}


async def to_public_many(tx: AsyncSession, orders: list[WorkOrder]) -> list[WorkOrderPublic]:
    types = await service_types_by_id(tx, {wo.service_type_id for wo in orders})
    counts = await request_counts(tx, [wo.id for wo in orders if wo.id is not None])
    now = utcnow()
    result = []
    for wo in orders:
        st = types[wo.service_type_id]
        data = wo.model_dump()
        data.update(
            service_code=st.code,
            service_name=st.name_fr,
            category=st.category,
            overdue=is_overdue(wo, now),
            request_count=counts.get(wo.id or 0, 0),
        )
        result.append(WorkOrderPublic.model_validate(data))
    return result


async def history(tx: AsyncSession, work_order_id: int) -> list[AuditEventPublic]:
    rows = (
        await tx.execute(
            select(AuditEvent)
            .where(
                col(AuditEvent.entity_type) == "work_order",
                col(AuditEvent.entity_id) == work_order_id,
            )
            .order_by(col(AuditEvent.id))
        )
    ).scalars()
    return [AuditEventPublic.model_validate(e.model_dump()) for e in rows]


async def detail(
    tx: AsyncSession, wo: WorkOrder, actor: Actor
) -> WorkOrderDetail | WorkOrderForCrew:
    (public,) = await to_public_many(tx, [wo])
    requests = list(
        (
            await tx.execute(
                select(ServiceRequest)
                .where(col(ServiceRequest.work_order_id) == wo.id)
                .order_by(col(ServiceRequest.id))
            )
        ).scalars()
    )
    events = await history(tx, wo.id or 0)
    if actor.is_dispatcher:
        st = await tx.get(ServiceType, wo.service_type_id)
        assert st is not None
        return WorkOrderDetail(
            **public.model_dump(),
            requests=[to_public(r, st) for r in requests],
            history=events,
            notes=await notes_of(tx, wo.id or 0),
        )
    return WorkOrderForCrew(
        **public.model_dump(),
        requests=[RequestForCrew.model_validate(r.model_dump()) for r in requests],
        history=events,
    )


async def page(
    tx: AsyncSession, filters: WorkOrderFilters, *, crew_order: bool = False
) -> WorkOrderPage:
    """One page of the list in the public view (``crew_order``: a crew's phone sorts by priority,
    then due time)."""
    rows, total = await list_work_orders(tx, filters)
    items = await to_public_many(tx, rows)
    if crew_order:
        items.sort(key=lambda wo: (wo.priority, wo.due_at, wo.id))
    return WorkOrderPage(items=items, total=total, limit=filters.limit, offset=filters.offset)


async def dispatcher_detail(tx: AsyncSession, work_order_id: int, actor: Actor) -> WorkOrderDetail:
    result = await detail(tx, await load(tx, work_order_id), actor)
    assert isinstance(result, WorkOrderDetail)
    return result


async def crew_detail(tx: AsyncSession, work_order_id: int, actor: Actor) -> WorkOrderForCrew:
    """The order as a crew phone sees it: its own crew's only, no reporter contact."""
    wo = await load(tx, work_order_id)
    ensure_visible(wo, actor)
    result = await detail(tx, wo, actor)
    assert isinstance(result, WorkOrderForCrew)
    return result
