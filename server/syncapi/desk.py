"""Offline sync, the dispatcher's side: conflicts, resolutions, mutation logs, values."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from server import events
from server.accounts.auth import Actor
from server.dbtypes import utcnow
from server.errors import Conflict, Invalid, NotFound
from server.requests.models import ServiceType
from server.syncapi import feed
from server.syncapi.models import SyncConflict, SyncMutation
from server.syncapi.values import work_order_values
from server.workorders import service as wo_service
from server.workorders.models import WorkOrder
from sync.policies import (
    ConflictKind,
)
from sync.states import Outcome, Status

# =========================================================================== dispatcher side


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@dataclass(frozen=True)
class ConflictFilters:
    status: str | None = None
    kind: str | None = None
    crew_id: int | None = None
    work_order_id: int | None = None
    limit: int = 50
    offset: int = 0


async def list_conflicts(
    tx: AsyncSession, filters: ConflictFilters
) -> tuple[list[SyncConflict], int]:
    query = select(SyncConflict)
    if filters.status:
        query = query.where(col(SyncConflict.status) == filters.status)
    if filters.kind:
        query = query.where(col(SyncConflict.kind) == filters.kind)
    if filters.crew_id is not None:
        query = query.where(col(SyncConflict.crew_id) == filters.crew_id)
    if filters.work_order_id is not None:
        query = query.where(col(SyncConflict.work_order_id) == filters.work_order_id)
    total = (await tx.execute(select(func.count()).select_from(query.subquery()))).scalar_one()
    rows = (
        await tx.execute(
            query.order_by(col(SyncConflict.id).desc()).limit(filters.limit).offset(filters.offset)
        )
    ).scalars()
    return list(rows), int(total)


async def load_conflict(
    tx: AsyncSession, conflict_id: int, *, for_update: bool = False
) -> SyncConflict:
    query = select(SyncConflict).where(col(SyncConflict.id) == conflict_id)
    if for_update:
        query = query.with_for_update()
    conflict = (await tx.execute(query)).scalar_one_or_none()
    if conflict is None:
        raise NotFound("sync_conflict", conflict_id)
    return conflict


ALLOWED_RESOLUTIONS: dict[str, set[str]] = {
    "accept_completion": {ConflictKind.COMPLETION_NOT_APPLIED.value},
    "keep_cancellation": {ConflictKind.COMPLETION_NOT_APPLIED.value},
    "reopen": {ConflictKind.COMPLETION_NOT_APPLIED.value, ConflictKind.STATUS_SUPERSEDED.value},
    "accept_suggestion": {ConflictKind.SUGGESTION.value},
    "dismiss": {k.value for k in ConflictKind},
}


async def resolve_conflict(
    tx: AsyncSession, conflict_id: int, resolution: str, note: str | None, actor: Actor
) -> SyncConflict:
    conflict = await load_conflict(tx, conflict_id, for_update=True)
    if conflict.status != "open":
        raise Conflict("conflict_already_resolved", id=conflict_id)
    if conflict.kind not in ALLOWED_RESOLUTIONS.get(resolution, set()):
        raise Invalid("resolution_not_allowed", resolution=resolution, kind=conflict.kind)
    wo = (
        await wo_service.load(tx, conflict.work_order_id, for_update=True)
        if conflict.work_order_id is not None
        else None
    )
    if wo is not None and resolution != "dismiss":
        await _apply_resolution(tx, conflict, wo, resolution, actor)
    conflict.status = "resolved"
    conflict.resolution = resolution
    conflict.resolution_note = note
    conflict.resolved_by = actor.user_id
    conflict.resolved_at = utcnow()
    tx.add(conflict)
    if wo is not None:
        await feed.touch(tx, wo)  # the crew sees the resolution on its next pull
        feed.hint(tx, conflict.crew_id, wo.id)
    await events.emit(events.DeskItemChanged(tx, "conflict_resolved", conflict.work_order_id))
    await tx.flush()
    return conflict


async def _apply_resolution(
    tx: AsyncSession, conflict: SyncConflict, wo: WorkOrder, resolution: str, actor: Actor
) -> None:
    from sync.states import Action

    reason = f"sync conflict {conflict.id}: {resolution}"
    if resolution == "accept_completion":
        facts = conflict.client_value if isinstance(conflict.client_value, dict) else {}
        try:
            outcome = Outcome(str(facts.get("outcome")))
        except ValueError as exc:
            raise Invalid(
                "resolution_not_allowed", resolution=resolution, kind=conflict.kind
            ) from exc
        if wo.status == Status.COMPLETED.value:
            return
        if wo.status == Status.CANCELLED.value:
            await wo_service.apply_action(tx, wo, Action.REOPEN, actor, reason=reason)
        if wo.crew_id is None and conflict.crew_id is not None:
            await wo_service.assign(tx, wo.id or 0, conflict.crew_id, actor)
        await wo_service.apply_action(
            tx, wo, Action.COMPLETE, actor, outcome=outcome, note=facts.get("note"), reason=reason
        )
    elif resolution == "reopen":
        if wo.status in (Status.COMPLETED.value, Status.CANCELLED.value):
            await wo_service.apply_action(tx, wo, Action.REOPEN, actor, reason=reason)
    elif resolution == "accept_suggestion":
        await _accept_suggestion(tx, conflict, wo, actor)


async def _accept_suggestion(
    tx: AsyncSession, conflict: SyncConflict, wo: WorkOrder, actor: Actor
) -> None:
    value = conflict.client_value
    name = conflict.field or ""
    bad = Invalid("suggestion_value_invalid", field=name)
    if name == "priority":
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 4:
            raise bad
        await wo_service.set_priority(tx, wo.id or 0, value, actor, None)
        return
    if name == "crew_id":
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 2_147_483_647:
            raise bad
        await wo_service.assign(tx, wo.id or 0, value, actor)
        return
    before = wo_service._snapshot(wo)
    if name == "due_at":
        try:
            due = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError as exc:
            raise bad from exc
        if due.tzinfo is None:
            raise bad
        wo.due_at = due.astimezone(UTC)
    elif name == "location":
        if not isinstance(value, dict):
            raise bad
        lat, lon = value.get("lat"), value.get("lon")
        if not (_is_number(lat) and _is_number(lon)):
            raise bad
        assert isinstance(lat, int | float) and isinstance(lon, int | float)
        if not (-90 <= float(lat) <= 90 and -180 <= float(lon) <= 180):
            raise bad
        wo.lat, wo.lon = float(lat), float(lon)
    elif name in ("title", "description", "address"):
        limit = {"title": 200, "description": 4000, "address": 300}[name]
        if not isinstance(value, str) or len(value) > limit or "\x00" in value:
            raise bad
        setattr(wo, name, value)
    else:
        raise bad
    await wo_service._save(
        tx, wo, before, "suggestion_accepted", actor, reason=f"sync conflict {conflict.id}"
    )


async def mutation_log(
    tx: AsyncSession, client_id: str, after: int, limit: int
) -> list[SyncMutation]:
    rows = await tx.execute(
        select(SyncMutation)
        .where(col(SyncMutation.client_id) == client_id, col(SyncMutation.id) > after)
        .order_by(col(SyncMutation.id))
        .limit(limit)
    )
    return list(rows.scalars())


async def work_order_value(tx: AsyncSession, work_order_id: int) -> dict[str, Any]:
    wo = await wo_service.load(tx, work_order_id)
    types = {st.id: st.code for st in (await tx.execute(select(ServiceType))).scalars() if st.id}
    values = await work_order_values(tx, [wo], types, away=set(), crew_id=None)
    return values[work_order_id]
