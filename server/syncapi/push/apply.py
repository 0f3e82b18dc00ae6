"""Push, apply: ask ``sync.policies`` for each mutation's verdict and carry it out through the
work-order service (audit rows with the device id, ``events.work_order_changed``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from server import events
from server.errors import DomainError
from server.photos.events import PhotoAttached
from server.photos.models import WorkOrderPhoto
from server.syncapi import feed
from server.syncapi.models import (
    MutationIn,
)
from server.syncapi.push.batch import (
    Applied,
    Batch,
    Entry,
    Note,
    status_version,
    work_order_id,
)
from server.syncapi.push.record import finish, reject, touch, write_rows
from server.workorders import service as wo_service
from server.workorders.models import WorkOrder
from sync.mutations import (
    AddMaterial,
    AddNote,
    AttachPhoto,
    Complete,
    MutationInvalid,
    ParsedMutation,
    SetField,
    SetStatus,
    VoidMaterial,
    parse_mutation,
)
from sync.policies import (
    MutationOutcome,
    OrderView,
    decide_append,
    decide_completion,
    decide_dispatch_field,
    decide_status,
    seen_status,
)
from sync.states import Outcome, Status


async def apply_one(tx: AsyncSession, batch: Batch, m: MutationIn, *, isolate: bool) -> Applied:
    wo_id = work_order_id(m)
    wo = batch.orders.get(wo_id) if wo_id is not None else None
    try:
        parsed = parse_mutation(m.name, m.args)
    except MutationInvalid as exc:
        return await reject(tx, batch, m, wo, exc.code, {"field": exc.field})
    if m.client_ts is not None and "\x00" in m.client_ts:
        return await reject(tx, batch, m, wo, "args_invalid", {"field": "client_ts"})
    if wo is None:
        return await reject(tx, batch, m, None, "work_order_unknown", {})
    holds = wo.crew_id == batch.crew_id
    if not holds and wo.id not in batch.exits:
        return await reject(tx, batch, m, wo, "not_your_crew", {})
    if not isolate:
        return await _apply_parsed(tx, batch, m, wo, parsed, holds)
    try:
        async with tx.begin_nested():
            applied = await _apply_parsed(tx, batch, m, wo, parsed, holds)
            await tx.flush()
            await write_rows(tx, batch)
            return applied
    except (DomainError, IntegrityError) as exc:
        batch.note_rows.clear()
        batch.entry_rows.clear()
        batch.touched.clear()
        await tx.refresh(wo)
        code = exc.code if isinstance(exc, DomainError) else "integrity_error"
        return await reject(tx, batch, m, wo, code, {})


def _view(wo: WorkOrder, holds: bool, seen: Status | None = None) -> OrderView:
    outcome = None
    if wo.outcome:
        try:
            outcome = Outcome(wo.outcome)
        except ValueError:
            outcome = None
    return OrderView(
        status=Status(wo.status),
        has_crew=wo.crew_id is not None,
        status_version=status_version(wo),
        crew_holds_order=holds,
        outcome=outcome,
        outcome_note=wo.outcome_note,
        seen=seen,
    )


def _seen(batch: Batch, wo: WorkOrder, m: MutationIn) -> Status | None:
    versions = wo.field_versions or {}
    return seen_status(
        trail=versions.get(feed.STATUS_TRAIL) or [],
        status=Status(wo.status),
        status_version=status_version(wo),
        base_version=m.base_version,
        previous=batch.previous.get(wo.id or 0),
    )


def _batched(batch: Batch, wo: WorkOrder) -> dict[str, Any]:
    """Work-order service options for a status change inside a batch: no flush per change (the
    batch flushes once, inside its savepoint), and the order's linked requests: [] when the
    batch knows it has none (saves the service's query), None to let the service look."""
    return {"requests": None if wo.id in batch.with_requests else [], "flush": False}


async def _apply_parsed(
    tx: AsyncSession,
    batch: Batch,
    m: MutationIn,
    wo: WorkOrder,
    parsed: ParsedMutation,
    holds: bool,
) -> Applied:
    if isinstance(parsed, SetStatus):
        return await _set_status(tx, batch, m, wo, parsed, holds)
    if isinstance(parsed, Complete):
        return await _complete(tx, batch, m, wo, parsed, holds)
    if isinstance(parsed, SetField):
        return await _set_field(tx, batch, m, wo, parsed)
    if isinstance(parsed, AddNote):
        return await _add_note(tx, batch, m, wo, parsed, holds)
    if isinstance(parsed, AddMaterial):
        return await _add_material(tx, batch, m, wo, parsed, holds)
    if isinstance(parsed, VoidMaterial):
        return await _void(tx, batch, m, wo, parsed, holds)
    assert isinstance(parsed, AttachPhoto)
    return await _attach_photo(tx, batch, m, wo, parsed, holds)


async def _set_status(
    tx: AsyncSession, batch: Batch, m: MutationIn, wo: WorkOrder, parsed: SetStatus, holds: bool
) -> Applied:
    seen = _seen(batch, wo, m)
    verdict = decide_status(_view(wo, holds, seen), parsed.status, m.base_version)
    if verdict.outcome is not MutationOutcome.REJECTED:
        batch.previous[wo.id or 0] = (m.base_version, parsed.status)
    if verdict.action is not None:
        for action in (verdict.action, *verdict.then):
            await wo_service.apply_action(
                tx, wo, action, batch.actor, reason=parsed.reason, **_batched(batch, wo)
            )
    return await finish(
        tx, batch, m, wo, verdict, field="status", server=wo.status, client=parsed.status.value
    )


async def _complete(
    tx: AsyncSession, batch: Batch, m: MutationIn, wo: WorkOrder, parsed: Complete, holds: bool
) -> Applied:
    actor = batch.actor
    facts = {
        "outcome": parsed.outcome.value,
        "note": parsed.note,
        "completed_at": parsed.completed_at.isoformat() if parsed.completed_at else None,
    }
    status_before = wo.status
    verdict = decide_completion(_view(wo, holds), parsed.outcome, parsed.note, m.base_version)
    batch.previous[wo.id or 0] = (m.base_version, Status.COMPLETED)  # never rejected
    if verdict.action is not None:
        await wo_service.apply_action(
            tx,
            wo,
            verdict.action,
            actor,
            outcome=parsed.outcome,
            note=parsed.note,
            **_batched(batch, wo),
        )
    if verdict.work_performed and not wo.work_performed:
        await wo_service.mark_work_performed(
            tx,
            wo,
            actor,
            reason=f"completed offline ({parsed.outcome.value})",
            **_batched(batch, wo),
        )
    return await finish(
        tx, batch, m, wo, verdict, field="status", server=status_before, client=facts
    )


async def _set_field(
    tx: AsyncSession, batch: Batch, m: MutationIn, wo: WorkOrder, parsed: SetField
) -> Applied:
    server_value: Any = (
        {"lat": wo.lat, "lon": wo.lon}
        if parsed.field == "location"
        else getattr(wo, parsed.field, None)
    )
    if isinstance(server_value, datetime):
        server_value = server_value.isoformat()
    verdict = decide_dispatch_field(parsed.field)
    return await finish(
        tx, batch, m, wo, verdict, field=parsed.field, server=server_value, client=parsed.value
    )


async def _add_note(
    tx: AsyncSession, batch: Batch, m: MutationIn, wo: WorkOrder, parsed: AddNote, holds: bool
) -> Applied:
    actor = batch.actor
    note = batch.notes.get(parsed.note_id)
    verdict = decide_append(
        exists=note is not None,
        same=note is not None and note.body == parsed.body and note.work_order_id == wo.id,
        crew_holds_order=holds,
    )
    if note is None and verdict.outcome is not MutationOutcome.REJECTED:
        batch.note_rows.append(
            {
                "id": parsed.note_id,
                "work_order_id": wo.id or 0,
                "body": parsed.body,
                "user_id": actor.user_id,
                "author": actor.username,
                "device_id": actor.device_id,
                "crew_id": batch.crew_id,
                "client_ts": m.client_ts,
                "created_at": batch.now,
            }
        )
        batch.notes[parsed.note_id] = Note(parsed.note_id, wo.id or 0, parsed.body)
        touch(tx, batch, wo)
    return await finish(tx, batch, m, wo, verdict, field="notes", client=m.args)


async def _add_material(
    tx: AsyncSession, batch: Batch, m: MutationIn, wo: WorkOrder, parsed: AddMaterial, holds: bool
) -> Applied:
    entry = batch.materials.get(parsed.entry_id)
    same = (
        entry is not None
        and entry.work_order_id == wo.id
        and entry.voids_id is None
        and (entry.material_code, entry.quantity, entry.unit)
        == (parsed.material_code, parsed.quantity, parsed.unit)
    )
    verdict = decide_append(exists=entry is not None, same=same, crew_holds_order=holds)
    if entry is None and verdict.outcome is not MutationOutcome.REJECTED:
        _add_entry(
            batch,
            m,
            Entry(
                parsed.entry_id,
                wo.id or 0,
                parsed.material_code,
                parsed.quantity,
                parsed.unit,
                None,
            ),
            reason=None,
        )
        touch(tx, batch, wo)
    return await finish(tx, batch, m, wo, verdict, field="materials", client=m.args)


async def _attach_photo(
    tx: AsyncSession, batch: Batch, m: MutationIn, wo: WorkOrder, parsed: AttachPhoto, holds: bool
) -> Applied:
    actor = batch.actor
    photo = batch.photos.get(parsed.photo_id)
    verdict = decide_append(
        exists=photo is not None,
        same=photo is not None and photo.sha256 == parsed.sha256 and photo.work_order_id == wo.id,
        crew_holds_order=holds,
    )
    if photo is None and verdict.outcome is not MutationOutcome.REJECTED:
        photo = WorkOrderPhoto(
            id=parsed.photo_id,
            work_order_id=wo.id or 0,
            sha256=parsed.sha256,
            kind=parsed.kind,
            captured_at=parsed.captured_at.astimezone(UTC) if parsed.captured_at else None,
            captured_lat=parsed.lat,
            captured_lon=parsed.lon,
            captured_accuracy_m=parsed.accuracy_m,
            device_id=actor.device_id,
            user_id=actor.user_id,
        )
        tx.add(photo)
        batch.photos[photo.id] = photo
        await tx.flush()
        await events.emit(PhotoAttached(tx, photo, wo))
    return await finish(tx, batch, m, wo, verdict, field="photos", client=m.args)


async def _void(
    tx: AsyncSession,
    batch: Batch,
    m: MutationIn,
    wo: WorkOrder,
    parsed: VoidMaterial,
    holds: bool,
) -> Applied:
    existing = batch.materials.get(parsed.entry_id)
    if existing is not None:
        same = existing.voids_id == parsed.voids and existing.work_order_id == wo.id
        verdict = decide_append(exists=True, same=same, crew_holds_order=holds)
        return await finish(tx, batch, m, wo, verdict, field="materials", client=m.args)
    original = batch.materials.get(parsed.voids)
    if original is None or original.work_order_id != wo.id or original.voids_id is not None:
        return await reject(tx, batch, m, wo, "material_entry_unknown", {}, inside=True)
    if parsed.voids in batch.voided:
        return await reject(tx, batch, m, wo, "material_already_voided", {}, inside=True)
    verdict = decide_append(exists=False, same=False, crew_holds_order=holds)
    entry = Entry(
        parsed.entry_id,
        wo.id or 0,
        original.material_code,
        -original.quantity,
        original.unit,
        original.id,
    )
    _add_entry(batch, m, entry, reason=parsed.reason)
    batch.voided.add(original.id)
    touch(tx, batch, wo)
    return await finish(tx, batch, m, wo, verdict, field="materials", client=m.args)


def _add_entry(batch: Batch, m: MutationIn, entry: Entry, *, reason: str | None) -> None:
    batch.entry_rows.append(
        {
            "id": entry.id,
            "work_order_id": entry.work_order_id,
            "material_code": entry.material_code,
            "quantity": entry.quantity,
            "unit": entry.unit,
            "voids_id": entry.voids_id,
            "reason": reason,
            "user_id": batch.actor.user_id,
            "device_id": batch.actor.device_id,
            "crew_id": batch.crew_id,
            "client_ts": m.client_ts,
            "created_at": batch.now,
        }
    )
    batch.materials[entry.id] = entry
