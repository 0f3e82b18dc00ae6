"""Push, load: lock the client and the batch's work orders, and read once every row the batch's
mutations will ask about (no N+1)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import String, cast, literal, null, or_, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from server.accounts.auth import Actor
from server.dbtypes import utcnow
from server.errors import Forbidden
from server.photos.models import WorkOrderPhoto
from server.requests.models import ServiceRequest
from server.syncapi.common import (
    insert_for,
)
from server.syncapi.models import (
    CrewExit,
    MutationIn,
    SyncClient,
    SyncMutation,
)
from server.syncapi.push.batch import (
    CLIENTS,
    STATUS_WRITES,
    Batch,
    Entry,
    Note,
    status_version,
    work_order_id,
)
from server.workorders.models import MaterialEntry, WorkOrder, WorkOrderNote
from sync.mutations import (
    Complete,
    MutationInvalid,
    SetStatus,
    parse_mutation,
)
from sync.policies import (
    MutationOutcome,
)
from sync.states import Status


async def client_for_update(
    tx: AsyncSession, client_id: str, actor: Actor, schema_version: int
) -> int:
    """Lock the client's row (creating it) and return its ``last_mutation_id``. On the table,
    not the model: the push updates it with one statement at the end."""
    query = (
        select(CLIENTS.c.user_id, CLIENTS.c.last_mutation_id)
        .where(CLIENTS.c.client_id == client_id)
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


def _uuids(mutations: Sequence[MutationIn], *keys: str) -> list[str]:
    found = []
    for m in mutations:
        for key in keys:
            value = m.args.get(key)
            if isinstance(value, str) and len(value) == 36:
                found.append(value.lower())
    return found


async def load_batch(
    tx: AsyncSession,
    actor: Actor,
    crew_id: int,
    client_id: str,
    new: Sequence[MutationIn],
    *,
    optimistic: bool = False,
) -> Batch:
    """``optimistic``: do not look up the UUIDs of new notes and material entries: a re-sent
    one (rare: a re-sent mutation id is a replay, answered from the log) makes the batch's
    insert fail on the primary key, and the batch is replayed with every lookup (push())."""
    ids = sorted({i for m in new if (i := work_order_id(m)) is not None})
    names = {m.name.split("@")[0] for m in new}
    orders, with_requests = await _lock_orders(
        tx, ids, status_writes=bool(names & set(STATUS_WRITES))
    )
    exits = await _exits(tx, crew_id, [i for i, wo in orders.items() if wo.crew_id != crew_id])
    note_keys, entry_keys = _keys_to_look_up(new, names, optimistic=optimistic)
    notes, materials, voided = await _existing_appends(tx, note_keys, entry_keys)
    photos: dict[str, WorkOrderPhoto] = {}
    if "workorder.attach_photo" in names:
        photos = await _photos(tx, _uuids(new, "photo_id"))
    batch = Batch(
        actor, crew_id, client_id, orders, exits, notes, materials, voided, photos, with_requests
    )
    if orders and names & set(STATUS_WRITES):
        await _load_previous(tx, batch, new)
    return batch


async def _lock_orders(
    tx: AsyncSession, ids: list[int], *, status_writes: bool
) -> tuple[dict[int, WorkOrder], set[int]]:
    """The batch's work orders, locked, and (for status writes) those with linked requests."""
    orders: dict[int, WorkOrder] = {}
    with_requests: set[int] = set()  # orders with linked service requests (status changes only)
    if not ids:
        return orders, with_requests
    query: Any = select(WorkOrder)
    if status_writes:
        # Which orders have linked requests, in the same query (the service would look per
        # status change).
        linked = (
            select(col(ServiceRequest.id))
            .where(col(ServiceRequest.work_order_id) == col(WorkOrder.id))
            .exists()
        )
        query = select(WorkOrder, linked.label("linked"))
    # Lock in id order: two batches touching the same orders never deadlock.
    rows = await tx.execute(
        query.where(col(WorkOrder.id).in_(ids))
        .order_by(col(WorkOrder.id))
        .with_for_update(of=WorkOrder)
    )
    for row in rows:
        wo = row[0]
        if wo.id is not None:
            orders[wo.id] = wo
            if len(row) > 1 and row[1]:
                with_requests.add(wo.id)
    return orders, with_requests


async def _exits(tx: AsyncSession, crew_id: int, foreign: list[int]) -> set[int]:
    """Of the orders another crew holds, those this crew was reassigned away from."""
    if not foreign:
        return set()
    return set(
        (
            await tx.execute(
                select(col(CrewExit.work_order_id)).where(
                    col(CrewExit.crew_id) == crew_id,
                    col(CrewExit.work_order_id).in_(foreign),
                )
            )
        ).scalars()
    )


def _keys_to_look_up(
    new: Sequence[MutationIn], names: set[str], *, optimistic: bool
) -> tuple[list[str], list[str]]:
    """The UUIDs of notes and material entries whose rows the batch must look up."""
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
    return note_keys, entry_keys


async def _existing_appends(
    tx: AsyncSession, note_keys: list[str], entry_keys: list[str]
) -> tuple[dict[str, WorkOrderNote | Note], dict[str, MaterialEntry | Entry], set[str]]:
    """Which of these UUIDs exist (notes; material entries named, and entries voiding them),
    in one query; whole rows are loaded only for those found (re-sends, voided entries)."""
    notes: dict[str, WorkOrderNote | Note] = {}
    materials: dict[str, MaterialEntry | Entry] = {}
    voided: set[str] = set()
    if not (note_keys or entry_keys):
        return notes, materials, voided
    parts: list[Any] = []
    if note_keys:
        parts.append(
            select(
                literal("n", String).label("kind"),
                col(WorkOrderNote.id).label("id"),
                cast(null(), String).label("voids_id"),
            ).where(col(WorkOrderNote.id).in_(note_keys))
        )
    if entry_keys:
        parts.append(
            select(
                literal("m", String).label("kind"),
                col(MaterialEntry.id).label("id"),
                col(MaterialEntry.voids_id).label("voids_id"),
            ).where(
                or_(
                    col(MaterialEntry.id).in_(entry_keys),
                    col(MaterialEntry.voids_id).in_(entry_keys),
                )
            )
        )
    both: Any = (
        parts[0] if len(parts) == 1 else union_all(*parts)
    )  # (mypy 2.4 crashes inferring it)
    found = (await tx.execute(both)).all()
    wanted = set(entry_keys)
    note_hits = [key for kind, key, _ in found if kind == "n"]
    entry_hits = [key for kind, key, _ in found if kind == "m" and key in wanted]
    voided = {voids for kind, _, voids in found if kind == "m" and voids in wanted}
    if note_hits:
        note_rows = await tx.execute(
            select(WorkOrderNote).where(col(WorkOrderNote.id).in_(note_hits))
        )
        notes = {n.id: n for n in note_rows.scalars()}
    if entry_hits:
        entry_rows = await tx.execute(
            select(MaterialEntry).where(col(MaterialEntry.id).in_(entry_hits))
        )
        materials = {e.id: e for e in entry_rows.scalars()}
    return notes, materials, voided


async def _photos(tx: AsyncSession, keys: list[str]) -> dict[str, WorkOrderPhoto]:
    if not keys:
        return {}
    rows = await tx.execute(select(WorkOrderPhoto).where(col(WorkOrderPhoto.id).in_(keys)))
    return {p.id: p for p in rows.scalars()}


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


async def _load_previous(tx: AsyncSession, batch: Batch, new: Sequence[MutationIn]) -> None:
    """This client's last status write (not rejected) on each order whose first status write in
    the batch is concurrent (the status changed after its base_version): if both were made on
    the same pulled version, the earlier one is what the device's screen showed (an offline
    chain). A rejected write is not: the app drops it from its view once refused. Causal
    writes and the batch's later ones need no query."""
    first: set[int] = set()
    wanted: list[int] = []
    for m in new:
        wo_id = work_order_id(m)
        if wo_id is None or wo_id in first or m.name.split("@")[0] not in STATUS_WRITES:
            continue
        first.add(wo_id)
        wo = batch.orders.get(wo_id)
        if wo is not None and m.base_version is not None and status_version(wo) > m.base_version:
            wanted.append(wo_id)
    if not wanted:
        return
    rows = await tx.execute(
        select(
            col(SyncMutation.work_order_id),
            col(SyncMutation.name),
            col(SyncMutation.base_version),
            col(SyncMutation.args),
        )
        .where(
            col(SyncMutation.client_id) == batch.client_id,
            col(SyncMutation.work_order_id).in_(wanted),
            col(SyncMutation.outcome) != MutationOutcome.REJECTED.value,
            or_(
                *(
                    col(SyncMutation.name).startswith(f"{name}@", autoescape=True)
                    for name in STATUS_WRITES
                )
            ),
        )
        .order_by(col(SyncMutation.id))
    )
    for wo_id, name, base_version, args in rows:
        written = _written_status(name, args)
        if written is not None:
            batch.previous[wo_id] = (base_version, written)
