"""Push, record: the rows a batch writes besides the orders: notes and material entries (one
insert each), change stamps, and the conflicts its verdicts raise."""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import col

from server import events
from server.dbtypes import table_of
from server.syncapi import feed
from server.syncapi.models import (
    MutationIn,
    SyncConflict,
)
from server.syncapi.push.batch import (
    Applied,
    Batch,
)
from server.workorders.models import MaterialEntry, WorkOrder, WorkOrderNote
from sync.mutations import (
    without_nul,
)
from sync.policies import (
    ConflictKind,
    MutationOutcome,
    Verdict,
    severity_of,
)


def touch(tx: AsyncSession, batch: Batch, wo: WorkOrder) -> None:
    """feed.touch, deferred to :func:`write_rows`: one UPDATE for all the orders touched."""
    if wo.id is not None and wo.id not in batch.touched:
        batch.touched.add(wo.id)
        feed.hint(tx, wo.crew_id, wo.id)


async def write_rows(tx: AsyncSession, batch: Batch) -> None:
    """Insert the notes and material entries added since the last call (one statement each),
    and stamp the orders they (or conflicts) touched, after the ORM's flush."""
    if batch.touched:
        ids, batch.touched = sorted(batch.touched), set()
        value = await feed.stamp(tx)
        table: Any = table_of(WorkOrder)
        await tx.execute(update(table).where(table.c.id.in_(ids)).values(change_seq=value))
        for wo_id in ids:
            wo = batch.orders.get(wo_id)
            if wo is not None:
                # the row has it; the ORM must not see a change to write again
                set_committed_value(wo, "change_seq", value)
    if batch.note_rows:
        rows, batch.note_rows = batch.note_rows, []
        await tx.execute(insert(table_of(WorkOrderNote)), rows)
    if batch.entry_rows:
        rows, batch.entry_rows = batch.entry_rows, []
        await tx.execute(insert(table_of(MaterialEntry)), rows)


async def finish(
    tx: AsyncSession,
    batch: Batch,
    m: MutationIn,
    wo: WorkOrder,
    verdict: Verdict,
    *,
    field: str,
    server: Any = None,
    client: Any = None,
) -> Applied:
    if verdict.conflict is None:
        return Applied(verdict)
    if verdict.outcome is MutationOutcome.REJECTED:
        client = {"name": m.name, "args": m.args, "base_version": m.base_version}
    if verdict.conflict is ConflictKind.REASSIGNED_AWAY and wo.id in batch.away_conflicts:
        return Applied(verdict, batch.away_conflicts[wo.id or 0])
    if verdict.conflict is ConflictKind.REASSIGNED_AWAY:
        existing = (
            await tx.execute(
                select(col(SyncConflict.id)).where(
                    col(SyncConflict.work_order_id) == wo.id,
                    col(SyncConflict.crew_id) == batch.crew_id,
                    col(SyncConflict.kind) == ConflictKind.REASSIGNED_AWAY.value,
                    col(SyncConflict.status) == "open",
                )
            )
        ).scalar()
        if existing is not None:
            batch.away_conflicts[wo.id or 0] = existing
            return Applied(verdict, existing)
    conflict = await _conflict(
        tx,
        batch,
        m,
        wo,
        verdict.conflict,
        verdict.code,
        field=field,
        server=server,
        client=client,
        detail={"server_status": wo.status, "base_version": m.base_version, "version": wo.version},
    )
    if verdict.conflict is ConflictKind.REASSIGNED_AWAY:
        batch.away_conflicts[wo.id or 0] = conflict
    return Applied(verdict, conflict)


async def _conflict(
    tx: AsyncSession,
    batch: Batch,
    m: MutationIn,
    wo: WorkOrder | None,
    kind: ConflictKind,
    code: str | None,
    *,
    field: str | None,
    server: Any,
    client: Any,
    detail: dict[str, Any],
) -> SyncConflict:
    """Add a conflict row; its id is set by the next flush (push flushes before reading it)."""
    conflict = SyncConflict(
        kind=kind.value,
        severity=severity_of(kind).value,
        work_order_id=wo.id if wo is not None else None,
        crew_id=batch.crew_id,
        user_id=batch.actor.user_id,
        device_id=batch.actor.device_id,
        client_id=batch.client_id,
        mutation_id=m.id,
        mutation_name=without_nul(m.name[:100]),
        code=code,
        field=field,
        server_value=server,
        client_value=client,
        detail=detail,
    )
    tx.add(conflict)
    if wo is not None:
        touch(tx, batch, wo)
    await events.emit(events.DeskItemChanged(tx, "conflict_recorded", conflict.work_order_id))
    return conflict


async def reject(
    tx: AsyncSession,
    batch: Batch,
    m: MutationIn,
    wo: WorkOrder | None,
    code: str,
    detail: dict[str, Any],
    *,
    inside: bool = False,
) -> Applied:
    del inside
    kind = ConflictKind.REJECTED
    if code in {"illegal_transition", "role_not_allowed", "crew_required", "outcome_required"}:
        kind = ConflictKind.INVALID_TRANSITION
    verdict = Verdict(MutationOutcome.REJECTED, conflict=kind, code=code)
    conflict = await _conflict(
        tx,
        batch,
        m,
        wo,
        kind,
        code,
        field=None,
        server=None,
        client=without_nul({"name": m.name, "args": m.args, "base_version": m.base_version}),
        detail={k: v for k, v in detail.items() if v is not None},
    )
    return Applied(verdict, conflict)
