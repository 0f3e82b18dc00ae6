"""Dispatcher and crew actions on work orders.

Every function loads rows (locked where it writes), asks ``sync.states`` whether the change is
legal, mutates, bumps ``version``, writes the audit row and ``flush()``es. Nothing here commits.
Reads (lists, views, history, detail) are :mod:`server.workorders.queries`; the write paths stay
together (~430 lines) because they share the version check, ``_save`` and the event they emit.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from server import events
from server.accounts.auth import Actor
from server.audit import diff, record
from server.city.service import borough_of
from server.crews.models import Crew
from server.dbtypes import UTCDateTime, utcnow
from server.errors import Conflict, Forbidden, Invalid, NotFound
from server.requests.models import ServiceRequest, ServiceType
from server.requests.service import service_type_by_code
from server.workorders.events import WorkOrderChanged
from server.workorders.models import (
    WorkOrder,
    WorkOrderCreate,
)
from sync.states import (
    OPEN_STATUSES,
    Action,
    Outcome,
    Role,
    Status,
    TransitionRefused,
    next_status,
)

OPEN = sorted(s.value for s in OPEN_STATUSES)
TRACKED_FIELDS = (
    "status",
    "crew_id",
    "priority",
    "due_at",
    "outcome",
    "outcome_note",
    "cancel_reason",
    "title",
    "description",
    "lat",
    "lon",
    "address",
    "work_performed",
)


def _snapshot(wo: WorkOrder) -> dict[str, Any]:
    return {name: getattr(wo, name) for name in TRACKED_FIELDS}


async def load(tx: AsyncSession, work_order_id: int, *, for_update: bool = False) -> WorkOrder:
    query = select(WorkOrder).where(col(WorkOrder.id) == work_order_id)
    if for_update:
        query = query.with_for_update()
    found = (await tx.execute(query)).scalar_one_or_none()
    if found is None:
        raise NotFound("work_order", work_order_id)
    return found


async def _crew(tx: AsyncSession, crew_id: int) -> Crew:
    crew = await tx.get(Crew, crew_id)
    if crew is None:
        raise NotFound("crew", crew_id)
    if not crew.active:
        raise Invalid("crew_inactive", id=crew_id)
    return crew


def _check_version(wo: WorkOrder, expected: int | None) -> None:
    if expected is not None and expected != wo.version:
        raise Conflict("version_conflict", current=wo.version, expected=expected)


def _refused(exc: TransitionRefused) -> Conflict:
    return Conflict(exc.code, current=str(exc.current), action=str(exc.action))


async def _save(
    tx: AsyncSession,
    wo: WorkOrder,
    before: dict[str, Any],
    action: str,
    actor: Actor | None,
    reason: str | None = None,
    requests: Sequence[ServiceRequest] | None = None,
    flush: bool = True,
) -> None:
    changes = diff(before, _snapshot(wo))
    wo.version += 1
    wo.updated_at = utcnow()
    tx.add(wo)
    if flush:
        await tx.flush()
    assert wo.id is not None
    await record(
        tx,
        entity_type="work_order",
        entity_id=wo.id,
        action=action,
        actor=actor,
        changes=changes,
        reason=reason,
    )
    linked = await _sync_request_statuses(tx, wo, requests)
    await events.emit(WorkOrderChanged(tx, wo, before, action, actor, linked_requests=linked))


async def _sync_request_statuses(
    tx: AsyncSession, wo: WorkOrder, requests: Sequence[ServiceRequest] | None = None
) -> Sequence[ServiceRequest]:
    """Linked requests follow their work order: scheduled while open, closed when it closes.

    ``requests``: the order's linked requests when the caller already knows them (sync push
    passes ``[]`` for the orders it found without any, saving a query); returns them."""
    status = "closed" if wo.status not in OPEN else ("scheduled" if wo.crew_id else "received")
    now = utcnow()
    rows = requests
    if rows is None:
        query = select(ServiceRequest).where(col(ServiceRequest.work_order_id) == wo.id)
        rows = (await tx.execute(query)).scalars().all()
    for request in rows:
        if request.status != status:
            request.status = status
            request.updated_at = now
            request.closed_at = now if status == "closed" else None
            tx.add(request)
    return rows


def _role(actor: Actor) -> Role:
    return Role(actor.role)


async def apply_action(
    tx: AsyncSession,
    wo: WorkOrder,
    action: Action,
    actor: Actor,
    *,
    outcome: Outcome | None = None,
    reason: str | None = None,
    note: str | None = None,
    requests: Sequence[ServiceRequest] | None = None,
    flush: bool = True,
) -> WorkOrder:
    """``requests``: the order's linked service requests if already loaded (else queried).
    ``flush=False`` leaves the writes to the caller's next flush (sync push: one per batch)."""
    before = _snapshot(wo)
    try:
        wo.status = next_status(
            Status(wo.status),
            action,
            _role(actor),
            has_crew=wo.crew_id is not None,
            outcome=outcome,
            reason=reason,
        ).value
    except TransitionRefused as exc:
        raise _refused(exc) from exc
    now = utcnow()
    if action == Action.COMPLETE:
        wo.outcome = outcome.value if outcome else None
        wo.outcome_note = note
        wo.completed_at = now
    elif action == Action.CANCEL:
        wo.cancel_reason = reason
        wo.cancelled_at = now
    elif action == Action.REOPEN:
        wo.outcome = None
        wo.outcome_note = None
        wo.completed_at = None
        wo.cancelled_at = None
        wo.cancel_reason = None
    elif action == Action.UNASSIGN:
        wo.crew_id = None
    await _save(tx, wo, before, action.value, actor, reason=reason, requests=requests, flush=flush)
    return wo


async def mark_work_performed(
    tx: AsyncSession,
    wo: WorkOrder,
    actor: Actor,
    reason: str | None = None,
    requests: Sequence[ServiceRequest] | None = None,
    flush: bool = True,
) -> WorkOrder:
    """Offline sync: a crew completed an order it could not close (cancelled meanwhile)."""
    before = _snapshot(wo)
    wo.work_performed = True
    await _save(
        tx, wo, before, "work_performed", actor, reason=reason, requests=requests, flush=flush
    )
    return wo


async def assign(
    tx: AsyncSession,
    work_order_id: int,
    crew_id: int,
    actor: Actor,
    expected_version: int | None = None,
) -> WorkOrder:
    wo = await load(tx, work_order_id, for_update=True)
    _check_version(wo, expected_version)
    await _crew(tx, crew_id)
    before = _snapshot(wo)
    try:
        wo.status = next_status(Status(wo.status), Action.ASSIGN, _role(actor), has_crew=True).value
    except TransitionRefused as exc:
        raise _refused(exc) from exc
    action = "reassigned" if before["crew_id"] is not None else "assigned"
    wo.crew_id = crew_id
    wo.assigned_at = utcnow()
    await _save(tx, wo, before, action, actor)
    return wo


async def set_priority(
    tx: AsyncSession, work_order_id: int, priority: int, actor: Actor, expected_version: int | None
) -> WorkOrder:
    wo = await load(tx, work_order_id, for_update=True)
    _check_version(wo, expected_version)
    if wo.status not in OPEN:
        raise Conflict("work_order_closed", id=work_order_id)
    before = _snapshot(wo)
    wo.priority = priority
    await _save(tx, wo, before, "reprioritised", actor)
    return wo


async def cancel(
    tx: AsyncSession, work_order_id: int, reason: str, actor: Actor, expected_version: int | None
) -> WorkOrder:
    wo = await load(tx, work_order_id, for_update=True)
    _check_version(wo, expected_version)
    return await apply_action(tx, wo, Action.CANCEL, actor, reason=reason)


async def transition(
    tx: AsyncSession,
    work_order_id: int,
    action_name: str,
    actor: Actor,
    *,
    outcome_name: str | None,
    note: str | None,
    reason: str | None,
    expected_version: int | None,
) -> WorkOrder:
    try:
        action = Action(action_name)
    except ValueError as exc:
        raise Invalid("action_unknown", action=action_name) from exc
    if action in (Action.ASSIGN,):
        raise Invalid("action_unknown", action=action_name)
    outcome: Outcome | None = None
    if outcome_name is not None:
        try:
            outcome = Outcome(outcome_name)
        except ValueError as exc:
            raise Invalid("outcome_unknown", outcome=outcome_name) from exc
    wo = await load(tx, work_order_id, for_update=True)
    ensure_visible(wo, actor)
    _check_version(wo, expected_version)
    return await apply_action(tx, wo, action, actor, outcome=outcome, reason=reason, note=note)


def ensure_visible(wo: WorkOrder, actor: Actor) -> None:
    """A crew member sees and changes only its own crew's work orders."""
    if actor.role == "crew" and (actor.crew_id is None or wo.crew_id != actor.crew_id):
        raise Forbidden("not_your_crew")


def due_at_for(service_type: ServiceType, start: datetime) -> datetime:
    return start + timedelta(hours=service_type.sla_hours)


async def create_work_order(tx: AsyncSession, body: WorkOrderCreate, actor: Actor) -> WorkOrder:
    requests: list[ServiceRequest] = []
    for request_id in dict.fromkeys(body.request_ids):
        request = (
            await tx.execute(
                select(ServiceRequest).where(col(ServiceRequest.id) == request_id).with_for_update()
            )
        ).scalar_one_or_none()
        if request is None:
            raise NotFound("service_request", request_id)
        if request.work_order_id is not None:
            raise Conflict(
                "request_already_linked", id=request_id, work_order_id=request.work_order_id
            )
        requests.append(request)
    if requests:
        type_ids = {r.service_type_id for r in requests}
        if len(type_ids) > 1:
            raise Invalid("request_type_mismatch")
        service_type = await tx.get(ServiceType, type_ids.pop())
        assert service_type is not None
        if body.service_code and body.service_code != service_type.code:
            raise Invalid("request_type_mismatch")
        first = min(requests, key=lambda r: r.created_at)
        lat = body.lat if body.lat is not None else first.lat
        lon = body.lon if body.lon is not None else first.lon
        address = body.address or first.address
        borough = first.borough_code
        start = first.created_at
        description = body.description or first.description
    else:
        if body.lat is None or body.lon is None:
            raise Invalid("location_required")
        if not body.service_code:
            raise Invalid("service_type_unknown", code="")
        service_type = await service_type_by_code(tx, body.service_code)
        lat, lon, address = body.lat, body.lon, body.address
        borough = await borough_of(tx, lat, lon)
        start = utcnow()
        description = body.description
    assert service_type.id is not None
    wo = WorkOrder(
        service_type_id=service_type.id,
        title=body.title or service_type.name_fr,
        description=description,
        lat=lat,
        lon=lon,
        address=address,
        borough_code=borough,
        priority=body.priority or service_type.default_priority,
        due_at=due_at_for(service_type, start),
        planned=not requests,
    )
    tx.add(wo)
    await tx.flush()
    assert wo.id is not None
    for request in requests:
        request.work_order_id = wo.id
        request.updated_at = utcnow()
        tx.add(request)
    await record(
        tx,
        entity_type="work_order",
        entity_id=wo.id,
        action="created",
        actor=actor,
        changes=diff({}, _snapshot(wo)) | {"request_ids": [None, [r.id for r in requests]]},
    )
    await tx.flush()
    await events.emit(WorkOrderChanged(tx, wo, {}, "created", actor))
    if body.crew_id is not None:
        await assign(tx, wo.id, body.crew_id, actor)
    else:
        await _sync_request_statuses(tx, wo)
    return wo


async def merge_requests(
    tx: AsyncSession, work_order_id: int, request_ids: Sequence[int], actor: Actor
) -> WorkOrder:
    """Attach duplicate requests to this work order; work orders left empty are cancelled."""
    wo = await load(tx, work_order_id, for_update=True)
    if wo.status not in OPEN:
        raise Conflict("work_order_closed", id=work_order_id)
    emptied: set[int] = set()
    moved: list[int] = []
    for request_id in dict.fromkeys(request_ids):
        request = (
            await tx.execute(
                select(ServiceRequest).where(col(ServiceRequest.id) == request_id).with_for_update()
            )
        ).scalar_one_or_none()
        if request is None:
            raise NotFound("service_request", request_id)
        if request.service_type_id != wo.service_type_id:
            raise Invalid("request_type_mismatch")
        if request.work_order_id == wo.id:
            continue
        if request.work_order_id is not None:
            emptied.add(request.work_order_id)
        request.work_order_id = wo.id
        request.updated_at = utcnow()
        tx.add(request)
        moved.append(request_id)
    await tx.flush()
    # The earliest linked request sets the SLA clock.
    earliest = (
        await tx.execute(
            select(func.min(col(ServiceRequest.created_at))).where(
                col(ServiceRequest.work_order_id) == wo.id
            )
        )
    ).scalar_one()
    before = _snapshot(wo)
    service_type = await tx.get(ServiceType, wo.service_type_id)
    assert service_type is not None
    if earliest is not None:
        earliest_dt = UTCDateTime().process_result_value(earliest, tx.get_bind().dialect)
        assert earliest_dt is not None
        wo.due_at = min(wo.due_at, due_at_for(service_type, earliest_dt))
    await _save(tx, wo, before, "merged", actor, reason=f"requests {moved}")
    for other_id in emptied - {wo.id}:
        other = await load(tx, other_id, for_update=True)
        remaining = (
            await tx.execute(
                select(func.count()).where(col(ServiceRequest.work_order_id) == other_id)
            )
        ).scalar_one()
        if remaining == 0 and other.status in OPEN:
            await apply_action(
                tx,
                other,
                Action.CANCEL,
                actor,
                reason=f"duplicate of work order {wo.id}",
            )
            other.outcome = Outcome.DUPLICATE.value
            tx.add(other)
    await tx.flush()
    return wo
