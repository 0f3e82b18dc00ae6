"""Offline sync, push: apply a device's mutations (docs/sync-protocol.md section 3-4).

The merge rules are pure (``sync.policies``, ``sync.mutations``); this module loads rows once per
batch, asks them, applies the verdict through the work-order service (audit rows with the device
id, ``events.work_order_changed``) and records outcomes and conflicts.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import String, cast, insert, literal, null, or_, select, union_all, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from server import events
from server.accounts.auth import Actor
from server.dbtypes import utcnow
from server.errors import Conflict, DomainError, Forbidden
from server.photos.events import PhotoAttached
from server.photos.models import WorkOrderPhoto
from server.requests.models import ServiceRequest
from server.syncapi import feed
from server.syncapi.common import (
    check_envelope,
    insert_for,
)
from server.syncapi.models import (
    CrewExit,
    MutationIn,
    MutationResult,
    PushRequest,
    PushResponse,
    SyncClient,
    SyncConflict,
    SyncMutation,
)
from server.workorders import service as wo_service
from server.workorders.models import MaterialEntry, WorkOrder, WorkOrderNote
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
    without_nul,
)
from sync.policies import (
    ConflictKind,
    MutationOutcome,
    OrderView,
    Verdict,
    decide_append,
    decide_completion,
    decide_dispatch_field,
    decide_status,
    seen_status,
    severity_of,
)
from sync.states import Outcome, Status

# =========================================================================== push

_STATUS_WRITES = ("workorder.set_status", "workorder.complete")


def _written_status(name: str, args: Any) -> Status | None:
    """The status a logged status write moved the device's screen to (None: unreadable)."""
    try:
        parsed = parse_mutation(name, args)
    except MutationInvalid:
        return None
    if isinstance(parsed, SetStatus):
        return parsed.status
    if isinstance(parsed, Complete):
        return Status.COMPLETED
    return None


def _status_version(wo: WorkOrder) -> int:
    return int((wo.field_versions or {}).get("status", 1))


@dataclass(frozen=True, slots=True)
class _Note:
    """A note the batch added (what the idempotence checks read; the row is a plain insert)."""

    id: str
    work_order_id: int
    body: str


@dataclass(frozen=True, slots=True)
class _Entry:
    """A material entry the batch added (as :class:`_Note`)."""

    id: str
    work_order_id: int
    material_code: str
    quantity: float
    unit: str
    voids_id: str | None


@dataclass
class _Batch:
    """Rows a batch needs, loaded once (no N+1)."""

    actor: Actor
    crew_id: int
    client_id: str
    orders: dict[int, WorkOrder]
    exits: set[int]  # work orders this crew was reassigned away from
    notes: dict[str, WorkOrderNote | _Note]
    materials: dict[str, MaterialEntry | _Entry]
    voided: set[str]  # material entries already voided
    photos: dict[str, WorkOrderPhoto]
    with_requests: set[int]  # work orders with linked service requests (status changes only)
    away_conflicts: dict[int, int | SyncConflict] = field(default_factory=dict)  # wo id -> open
    # new notes and material entries, inserted as plain rows (one executemany per table) by
    # _write_rows, not as ORM objects: building 50 SQLModel objects cost more than their insert
    note_rows: list[dict[str, Any]] = field(default_factory=list)
    entry_rows: list[dict[str, Any]] = field(default_factory=list)
    now: datetime = field(default_factory=utcnow)
    touched: set[int] = field(default_factory=set)  # orders whose embedded lists changed
    # wo id -> (base_version, target) of this client's last status write on it that was not
    # rejected: what its screen showed for its next one (sync.policies.seen_status)
    previous: dict[int, tuple[int | None, Status]] = field(default_factory=dict)


_CLIENTS: Any = SyncClient.__table__  # type: ignore[attr-defined]


async def _client_for_update(
    tx: AsyncSession, client_id: str, actor: Actor, schema_version: int
) -> int:
    """Lock the client's row (creating it) and return its ``last_mutation_id``. On the table,
    not the model: the push updates it with one statement at the end."""
    query = (
        select(_CLIENTS.c.user_id, _CLIENTS.c.last_mutation_id)
        .where(_CLIENTS.c.client_id == client_id)
        .with_for_update()
    )
    client = (await tx.execute(query)).first()
    if client is None:
        await tx.execute(
            insert_for(tx)(SyncClient)
            .values(
                client_id=client_id,
                user_id=actor.user_id,
                device_id=actor.device_id,
                crew_id=actor.crew_id,
                last_mutation_id=0,
                schema_version=schema_version,
                created_at=utcnow(),
            )
            .on_conflict_do_nothing(index_elements=["client_id"])
        )
        client = (await tx.execute(query)).one()
    if client.user_id != actor.user_id:
        raise Forbidden("client_id_taken")
    return int(client.last_mutation_id)


def _check_order(mutations: Sequence[MutationIn]) -> None:
    for previous, current in itertools.pairwise(mutations):
        if current.id != previous.id + 1:
            raise DomainError("mutation_order_invalid", 400)


def _work_order_id(m: MutationIn) -> int | None:
    value = m.args.get("work_order_id")
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 2_147_483_647:
        return value
    return None


def _uuids(mutations: Sequence[MutationIn], *keys: str) -> list[str]:
    found = []
    for m in mutations:
        for key in keys:
            value = m.args.get(key)
            if isinstance(value, str) and len(value) == 36:
                found.append(value.lower())
    return found


async def _load_batch(
    tx: AsyncSession,
    actor: Actor,
    crew_id: int,
    client_id: str,
    new: Sequence[MutationIn],
    *,
    optimistic: bool = False,
) -> _Batch:
    """``optimistic``: do not look up the UUIDs of new notes and material entries: a re-sent
    one (rare: a re-sent mutation id is a replay, answered from the log) makes the batch's
    insert fail on the primary key, and the batch is replayed with every lookup (push())."""
    ids = sorted({i for m in new if (i := _work_order_id(m)) is not None})
    names = {m.name.split("@")[0] for m in new}
    orders: dict[int, WorkOrder] = {}
    exits: set[int] = set()
    with_requests: set[int] = set()  # orders with linked service requests (status changes only)
    if ids:
        query: Any = select(WorkOrder)
        if names & set(_STATUS_WRITES):
            # Which orders have linked requests, in the same query (the service would look per
            # status change).
            linked = (
                select(ServiceRequest.id)
                .where(ServiceRequest.work_order_id == WorkOrder.id)
                .exists()
            )
            query = select(WorkOrder, linked.label("linked"))
        # Lock in id order: two batches touching the same orders never deadlock.
        rows = await tx.execute(
            query.where(WorkOrder.id.in_(ids))  # type: ignore[union-attr]
            .order_by(WorkOrder.id)
            .with_for_update(of=WorkOrder)
        )
        for row in rows:
            wo = row[0]
            if wo.id is not None:
                orders[wo.id] = wo
                if len(row) > 1 and row[1]:
                    with_requests.add(wo.id)
        foreign = [i for i, wo in orders.items() if wo.crew_id != crew_id]
        if foreign:
            exits = set(
                (
                    await tx.execute(
                        select(CrewExit.work_order_id).where(
                            CrewExit.crew_id == crew_id,
                            CrewExit.work_order_id.in_(foreign),  # type: ignore[attr-defined]
                        )
                    )
                ).scalars()
            )
    notes: dict[str, WorkOrderNote | _Note] = {}
    materials: dict[str, MaterialEntry | _Entry] = {}
    voided: set[str] = set()
    photos: dict[str, WorkOrderPhoto] = {}
    note_keys: list[str] = []
    entry_keys: list[str] = []
    if not optimistic:
        note_keys = _uuids(new, "note_id") if "workorder.add_note" in names else []
        if names & {"workorder.add_material", "workorder.void_material"}:
            entry_keys = _uuids(new, "entry_id", "voids")
    elif "workorder.void_material" in names:
        # a void needs the entry it corrects (and whether it was voided already)
        entry_keys = _uuids(
            [m for m in new if m.name.startswith("workorder.void_material@")], "entry_id", "voids"
        )
    if note_keys or entry_keys:
        # Which of these UUIDs exist (notes; material entries named, and entries voiding them),
        # in one query; whole rows are loaded only for those found (re-sends, voided entries).
        parts = []
        if note_keys:
            parts.append(
                select(
                    literal("n", String).label("kind"),
                    WorkOrderNote.id.label("id"),  # type: ignore[attr-defined]
                    cast(null(), String).label("voids_id"),
                ).where(WorkOrderNote.id.in_(note_keys))  # type: ignore[attr-defined]
            )
        if entry_keys:
            parts.append(
                select(
                    literal("m", String).label("kind"),
                    MaterialEntry.id.label("id"),  # type: ignore[attr-defined]
                    MaterialEntry.voids_id.label("voids_id"),  # type: ignore[union-attr]
                ).where(
                    or_(MaterialEntry.id.in_(entry_keys), MaterialEntry.voids_id.in_(entry_keys))  # type: ignore[attr-defined,union-attr]
                )
            )
        found = (await tx.execute(parts[0] if len(parts) == 1 else union_all(*parts))).all()
        wanted = set(entry_keys)
        note_hits = [key for kind, key, _ in found if kind == "n"]
        entry_hits = [key for kind, key, _ in found if kind == "m" and key in wanted]
        voided = {voids for kind, _, voids in found if kind == "m" and voids in wanted}
        if note_hits:
            rows = await tx.execute(select(WorkOrderNote).where(WorkOrderNote.id.in_(note_hits)))  # type: ignore[attr-defined]
            notes = {n.id: n for n in rows.scalars()}
        if entry_hits:
            rows = await tx.execute(
                select(MaterialEntry).where(MaterialEntry.id.in_(entry_hits))  # type: ignore[attr-defined]
            )
            materials = {e.id: e for e in rows.scalars()}
    if "workorder.attach_photo" in names:
        keys = _uuids(new, "photo_id")
        if keys:
            rows = await tx.execute(select(WorkOrderPhoto).where(WorkOrderPhoto.id.in_(keys)))  # type: ignore[attr-defined]
            photos = {p.id: p for p in rows.scalars()}
    batch = _Batch(
        actor, crew_id, client_id, orders, exits, notes, materials, voided, photos, with_requests
    )
    if orders and names & set(_STATUS_WRITES):
        await _load_previous(tx, batch, new)
    return batch


async def _load_previous(tx: AsyncSession, batch: _Batch, new: Sequence[MutationIn]) -> None:
    """This client's last status write (not rejected) on each order whose first status write in
    the batch is concurrent (the status changed after its base_version): if both were made on
    the same pulled version, the earlier one is what the device's screen showed (an offline
    chain). A rejected write is not: the app drops it from its view once refused. Causal
    writes and the batch's later ones need no query."""
    first: set[int] = set()
    wanted: list[int] = []
    for m in new:
        wo_id = _work_order_id(m)
        if wo_id is None or wo_id in first or m.name.split("@")[0] not in _STATUS_WRITES:
            continue
        first.add(wo_id)
        wo = batch.orders.get(wo_id)
        if wo is not None and m.base_version is not None and _status_version(wo) > m.base_version:
            wanted.append(wo_id)
    if not wanted:
        return
    rows = await tx.execute(
        select(
            SyncMutation.work_order_id,
            SyncMutation.name,
            SyncMutation.base_version,
            SyncMutation.args,
        )
        .where(
            SyncMutation.client_id == batch.client_id,
            SyncMutation.work_order_id.in_(wanted),  # type: ignore[union-attr]
            SyncMutation.outcome != MutationOutcome.REJECTED.value,
            or_(
                *(
                    SyncMutation.name.startswith(f"{name}@", autoescape=True)  # type: ignore[attr-defined]
                    for name in _STATUS_WRITES
                )
            ),
        )
        .order_by(SyncMutation.id)  # type: ignore[arg-type]
    )
    for wo_id, name, base_version, args in rows:
        written = _written_status(name, args)
        if written is not None:
            batch.previous[wo_id] = (base_version, written)


@dataclass
class _Applied:
    verdict: Verdict
    conflict: int | SyncConflict | None = None  # an id, or a row whose id the next flush sets

    @property
    def conflict_id(self) -> int | None:
        if isinstance(self.conflict, SyncConflict):
            return self.conflict.id
        return self.conflict


def _batched(batch: _Batch, wo: WorkOrder) -> dict[str, Any]:
    """Work-order service options for a status change inside a batch: no flush per change (the
    batch flushes once, inside its savepoint), and the order's linked requests: [] when the
    batch knows it has none (saves the service's query), None to let the service look."""
    return {"requests": None if wo.id in batch.with_requests else [], "flush": False}


async def push(tx: AsyncSession, actor: Actor, body: PushRequest) -> PushResponse:
    crew_id = check_envelope(actor, body.protocol)
    mutations = body.mutations
    _check_order(mutations)
    last = await _client_for_update(tx, body.client_id, actor, body.schema_version)
    replays = [m for m in mutations if m.id <= last]
    new = [m for m in mutations if m.id > last]
    if new and new[0].id != last + 1:
        # the watermark at the top of the body (docs/sync-protocol.md), and in params as before
        raise Conflict("mutation_gap", last_mutation_id=last).with_members(last_mutation_id=last)
    results: list[MutationResult] = []
    if replays:
        logged = {
            row.id: row
            for row in (
                await tx.execute(
                    select(SyncMutation).where(
                        SyncMutation.client_id == body.client_id,
                        SyncMutation.id.in_([m.id for m in replays]),  # type: ignore[attr-defined]
                    )
                )
            ).scalars()
        }
        for m in replays:
            row = logged.get(m.id)
            results.append(
                MutationResult(
                    id=m.id,
                    outcome=row.outcome if row else MutationOutcome.APPLIED.value,
                    conflict_id=row.conflict_id if row else None,
                    code=row.code if row else None,
                    replayed=True,
                )
            )
    now = utcnow()
    if new:
        await feed.stamp(tx)  # before any savepoint (see feed.stamp)
        batch = await _load_batch(tx, actor, crew_id, body.client_id, new, optimistic=True)
        try:
            # Fast path: the whole batch in one savepoint, rows flushed together. A mutation
            # that fails at the database undoes it, and the batch is replayed with one
            # savepoint per mutation: the outcomes are the same, isolation per mutation holds.
            async with tx.begin_nested():
                outcomes = [await _apply_one(tx, batch, m, isolate=False) for m in new]
                await tx.flush()
                await _write_rows(tx, batch)
        except (DomainError, IntegrityError):
            for wo in batch.orders.values():
                await tx.refresh(wo)
            batch = await _load_batch(tx, actor, crew_id, body.client_id, new)
            outcomes = [await _apply_one(tx, batch, m, isolate=True) for m in new]
        await tx.flush()  # conflict ids
        log_rows = []
        for m, applied in zip(new, outcomes, strict=True):
            verdict = applied.verdict
            refused = verdict.outcome is MutationOutcome.REJECTED
            results.append(
                MutationResult(
                    id=m.id,
                    outcome=verdict.outcome.value,
                    conflict_id=applied.conflict_id,
                    code=verdict.code,
                )
            )
            log_rows.append(
                {
                    "client_id": body.client_id,
                    "id": m.id,
                    # a refused mutation may hold NUL characters: kept as U+FFFD
                    "name": without_nul(m.name[:100]) if refused else m.name[:100],
                    "work_order_id": _work_order_id(m),
                    "base_version": m.base_version,
                    "client_ts": without_nul(m.client_ts) if refused else m.client_ts,
                    "args": without_nul(m.args) if refused else m.args,
                    "outcome": verdict.outcome.value,
                    "code": verdict.code,
                    "conflict_id": applied.conflict_id,
                    "user_id": actor.user_id,
                    "device_id": actor.device_id,
                    "received_at": now,
                }
            )
        # On the table, not the model: one executemany (the ORM's bulk insert would split the
        # rows by which columns are None).
        await tx.execute(insert_for(tx)(SyncMutation.__table__), log_rows)
    values: dict[str, Any] = {
        "last_push_at": now,
        "device_id": actor.device_id,
        "crew_id": crew_id,
        "schema_version": body.schema_version,
    }
    if new:
        values["last_mutation_id"] = new[-1].id
    await tx.execute(
        update(_CLIENTS).where(_CLIENTS.c.client_id == body.client_id).values(**values)
    )
    last_mutation_id = new[-1].id if new else last
    return PushResponse(last_mutation_id=last_mutation_id, results=results, server_time=now)


async def _apply_one(tx: AsyncSession, batch: _Batch, m: MutationIn, *, isolate: bool) -> _Applied:
    wo_id = _work_order_id(m)
    wo = batch.orders.get(wo_id) if wo_id is not None else None
    try:
        parsed = parse_mutation(m.name, m.args)
    except MutationInvalid as exc:
        return await _reject(tx, batch, m, wo, exc.code, {"field": exc.field})
    if m.client_ts is not None and "\x00" in m.client_ts:
        return await _reject(tx, batch, m, wo, "args_invalid", {"field": "client_ts"})
    if wo is None:
        return await _reject(tx, batch, m, None, "work_order_unknown", {})
    holds = wo.crew_id == batch.crew_id
    if not holds and wo.id not in batch.exits:
        return await _reject(tx, batch, m, wo, "not_your_crew", {})
    if not isolate:
        return await _apply_parsed(tx, batch, m, wo, parsed, holds)
    try:
        async with tx.begin_nested():
            applied = await _apply_parsed(tx, batch, m, wo, parsed, holds)
            await tx.flush()
            await _write_rows(tx, batch)
            return applied
    except (DomainError, IntegrityError) as exc:
        batch.note_rows.clear()
        batch.entry_rows.clear()
        batch.touched.clear()
        await tx.refresh(wo)
        code = exc.code if isinstance(exc, DomainError) else "integrity_error"
        return await _reject(tx, batch, m, wo, code, {})


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
        status_version=_status_version(wo),
        crew_holds_order=holds,
        outcome=outcome,
        outcome_note=wo.outcome_note,
        seen=seen,
    )


def _seen(batch: _Batch, wo: WorkOrder, m: MutationIn) -> Status | None:
    versions = wo.field_versions or {}
    return seen_status(
        trail=versions.get(feed.STATUS_TRAIL) or [],
        status=Status(wo.status),
        status_version=_status_version(wo),
        base_version=m.base_version,
        previous=batch.previous.get(wo.id or 0),
    )


async def _apply_parsed(
    tx: AsyncSession,
    batch: _Batch,
    m: MutationIn,
    wo: WorkOrder,
    parsed: ParsedMutation,
    holds: bool,
) -> _Applied:
    actor = batch.actor
    if isinstance(parsed, SetStatus):
        seen = _seen(batch, wo, m)
        verdict = decide_status(_view(wo, holds, seen), parsed.status, m.base_version)
        if verdict.outcome is not MutationOutcome.REJECTED:
            batch.previous[wo.id or 0] = (m.base_version, parsed.status)
        if verdict.action is not None:
            for action in (verdict.action, *verdict.then):
                await wo_service.apply_action(
                    tx, wo, action, actor, reason=parsed.reason, **_batched(batch, wo)
                )
        return await _finish(
            tx, batch, m, wo, verdict, field="status", server=wo.status, client=parsed.status.value
        )
    if isinstance(parsed, Complete):
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
        return await _finish(
            tx, batch, m, wo, verdict, field="status", server=status_before, client=facts
        )
    if isinstance(parsed, SetField):
        server_value: Any = (
            {"lat": wo.lat, "lon": wo.lon}
            if parsed.field == "location"
            else getattr(wo, parsed.field, None)
        )
        if isinstance(server_value, datetime):
            server_value = server_value.isoformat()
        verdict = decide_dispatch_field(parsed.field)
        return await _finish(
            tx, batch, m, wo, verdict, field=parsed.field, server=server_value, client=parsed.value
        )
    if isinstance(parsed, AddNote):
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
            batch.notes[parsed.note_id] = _Note(parsed.note_id, wo.id or 0, parsed.body)
            _touch(tx, batch, wo)
        return await _finish(tx, batch, m, wo, verdict, field="notes", client=m.args)
    if isinstance(parsed, AddMaterial):
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
                _Entry(
                    parsed.entry_id,
                    wo.id or 0,
                    parsed.material_code,
                    parsed.quantity,
                    parsed.unit,
                    None,
                ),
                reason=None,
            )
            _touch(tx, batch, wo)
        return await _finish(tx, batch, m, wo, verdict, field="materials", client=m.args)
    if isinstance(parsed, VoidMaterial):
        return await _void(tx, batch, m, wo, parsed, holds)
    assert isinstance(parsed, AttachPhoto)
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
    return await _finish(tx, batch, m, wo, verdict, field="photos", client=m.args)


async def _void(
    tx: AsyncSession,
    batch: _Batch,
    m: MutationIn,
    wo: WorkOrder,
    parsed: VoidMaterial,
    holds: bool,
) -> _Applied:
    existing = batch.materials.get(parsed.entry_id)
    if existing is not None:
        same = existing.voids_id == parsed.voids and existing.work_order_id == wo.id
        verdict = decide_append(exists=True, same=same, crew_holds_order=holds)
        return await _finish(tx, batch, m, wo, verdict, field="materials", client=m.args)
    original = batch.materials.get(parsed.voids)
    if original is None or original.work_order_id != wo.id or original.voids_id is not None:
        return await _reject(tx, batch, m, wo, "material_entry_unknown", {}, inside=True)
    if parsed.voids in batch.voided:
        return await _reject(tx, batch, m, wo, "material_already_voided", {}, inside=True)
    verdict = decide_append(exists=False, same=False, crew_holds_order=holds)
    entry = _Entry(
        parsed.entry_id,
        wo.id or 0,
        original.material_code,
        -original.quantity,
        original.unit,
        original.id,
    )
    _add_entry(batch, m, entry, reason=parsed.reason)
    batch.voided.add(original.id)
    _touch(tx, batch, wo)
    return await _finish(tx, batch, m, wo, verdict, field="materials", client=m.args)


def _add_entry(batch: _Batch, m: MutationIn, entry: _Entry, *, reason: str | None) -> None:
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


def _touch(tx: AsyncSession, batch: _Batch, wo: WorkOrder) -> None:
    """feed.touch, deferred to :func:`_write_rows`: one UPDATE for all the orders touched."""
    if wo.id is not None and wo.id not in batch.touched:
        batch.touched.add(wo.id)
        feed.hint(tx, wo.crew_id, wo.id)


async def _write_rows(tx: AsyncSession, batch: _Batch) -> None:
    """Insert the notes and material entries added since the last call (one statement each),
    and stamp the orders they (or conflicts) touched, after the ORM's flush."""
    if batch.touched:
        ids, batch.touched = sorted(batch.touched), set()
        value = await feed.stamp(tx)
        table: Any = WorkOrder.__table__  # type: ignore[attr-defined]
        await tx.execute(update(table).where(table.c.id.in_(ids)).values(change_seq=value))
        for wo_id in ids:
            wo = batch.orders.get(wo_id)
            if wo is not None:
                # the row has it; the ORM must not see a change to write again
                set_committed_value(wo, "change_seq", value)
    if batch.note_rows:
        rows, batch.note_rows = batch.note_rows, []
        await tx.execute(insert(WorkOrderNote.__table__), rows)  # type: ignore[attr-defined]
    if batch.entry_rows:
        rows, batch.entry_rows = batch.entry_rows, []
        await tx.execute(insert(MaterialEntry.__table__), rows)  # type: ignore[attr-defined]


async def _finish(
    tx: AsyncSession,
    batch: _Batch,
    m: MutationIn,
    wo: WorkOrder,
    verdict: Verdict,
    *,
    field: str,
    server: Any = None,
    client: Any = None,
) -> _Applied:
    if verdict.conflict is None:
        return _Applied(verdict)
    if verdict.outcome is MutationOutcome.REJECTED:
        client = {"name": m.name, "args": m.args, "base_version": m.base_version}
    if verdict.conflict is ConflictKind.REASSIGNED_AWAY and wo.id in batch.away_conflicts:
        return _Applied(verdict, batch.away_conflicts[wo.id or 0])
    if verdict.conflict is ConflictKind.REASSIGNED_AWAY:
        existing = (
            await tx.execute(
                select(SyncConflict.id).where(
                    SyncConflict.work_order_id == wo.id,
                    SyncConflict.crew_id == batch.crew_id,
                    SyncConflict.kind == ConflictKind.REASSIGNED_AWAY.value,
                    SyncConflict.status == "open",
                )
            )
        ).scalar()
        if existing is not None:
            batch.away_conflicts[wo.id or 0] = existing
            return _Applied(verdict, existing)
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
    return _Applied(verdict, conflict)


async def _conflict(
    tx: AsyncSession,
    batch: _Batch,
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
        _touch(tx, batch, wo)
    await events.emit(events.DeskItemChanged(tx, "conflict_recorded", conflict.work_order_id))
    return conflict


async def _reject(
    tx: AsyncSession,
    batch: _Batch,
    m: MutationIn,
    wo: WorkOrder | None,
    code: str,
    detail: dict[str, Any],
    *,
    inside: bool = False,
) -> _Applied:
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
    return _Applied(verdict, conflict)
