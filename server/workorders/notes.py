"""Work-order notes: the crews' (made on phones, arriving by sync) and the office's, one
append-only set per order, oldest first."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from server.accounts.auth import Actor
from server.audit import record
from server.dbtypes import utcnow
from server.errors import Conflict, Invalid, NotFound
from server.events import emit
from server.workorders.events import WorkOrderContentChanged
from server.workorders.models import NoteCreate, NotePublic, WorkOrder, WorkOrderNote


def note_public(note: WorkOrderNote) -> NotePublic:
    return NotePublic(
        id=note.id,
        work_order_id=note.work_order_id,
        body=note.body,
        author=note.author,
        from_office=note.crew_id is None and note.device_id is None,
        created_at=note.created_at,
    )


async def notes_of(tx: AsyncSession, work_order_id: int) -> list[NotePublic]:
    rows = (
        await tx.execute(
            select(WorkOrderNote)
            .where(col(WorkOrderNote.work_order_id) == work_order_id)
            .order_by(col(WorkOrderNote.created_at), col(WorkOrderNote.id))
        )
    ).scalars()
    return [note_public(n) for n in rows]


async def add_office_note(
    tx: AsyncSession, work_order_id: int, data: NoteCreate, actor: Actor
) -> tuple[NotePublic, bool]:
    """A dispatcher's note on an order, in the same append-only set as the crews' notes: it
    reaches the crew's phones with their next pull (a hint is sent). Idempotent by ``note_id``.
    Returns the note and whether it was created now."""
    query = select(WorkOrder).where(col(WorkOrder.id) == work_order_id).with_for_update()
    wo = (await tx.execute(query)).scalar_one_or_none()
    if wo is None:
        raise NotFound("work_order", work_order_id)
    note_id = str(data.note_id or uuid.uuid4())
    existing = await tx.get(WorkOrderNote, note_id)
    if existing is not None:
        if existing.work_order_id != wo.id or existing.user_id != actor.user_id:
            raise Conflict("note_id_taken", id=note_id)
        return note_public(existing), False
    body = data.body.strip()
    if not body:
        raise Invalid("note_empty")
    note = WorkOrderNote(
        id=note_id,
        work_order_id=wo.id or 0,
        body=body,
        user_id=actor.user_id,
        author=actor.username,
        created_at=utcnow(),
    )
    tx.add(note)
    await record(
        tx,
        entity_type="work_order",
        entity_id=wo.id or 0,
        action="note_added",
        actor=actor,
        changes={"note": [None, note_id]},
    )
    # the crew's phones pull it (the sync feed listens; not a version bump: no conflict)
    await emit(WorkOrderContentChanged(tx, wo))
    await tx.flush()
    return note_public(note), True
