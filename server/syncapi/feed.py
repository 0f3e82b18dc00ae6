"""The sync change feed: stamps, per-field versions, crew exits and pull hints.

Called from :mod:`server.events` inside the transaction that changed a work order, and from the
sync service when a note, material entry, photo or conflict is added to one.

The change stamp (docs/adr/0011): every write to a work order (or to what the pull embeds in its
value) sets ``work_order.change_seq`` to the writing transaction's stamp:
- PostgreSQL: the transaction id, ``pg_current_xact_id()`` (64-bit, never wraps). A pull's cursor
  is its snapshot's ``xmin``: every transaction not visible to that snapshot has an id >= xmin,
  so ``change_seq >= cursor`` finds every row the pull could not see, whatever the commit order.
- SQLite: a counter incremented once per writing transaction. Writers are serialised (BEGIN
  IMMEDIATE) and a pull takes the same lock, so commit order is stamp order.
Take the stamp before any savepoint (a savepoint rolled back on SQLite would undo the counter
increment while the cached value lives on): :func:`stamp` is called first thing by push.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event as sa_event
from sqlalchemy import text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, SessionTransaction

from server.dbtypes import dialect_name, utcnow
from server.live import bus as live
from server.syncapi.models import CrewExit
from server.workorders.service import TRACKED_FIELDS
from sync.policies import trail_with
from sync.states import TERMINAL_STATUSES, Status

_STAMP_KEY = "tournee_sync_stamp"
_HINTS_KEY = "tournee_sync_hints"
MAX_HINT_IDS = 50

VERSIONED_FIELDS = TRACKED_FIELDS
"""Fields whose last-changed version is kept in ``work_order.field_versions``."""

STATUS_TRAIL = "status_trail"
"""``field_versions`` key: ``[version, status]`` of the order's last status changes."""

_TERMINAL = frozenset(s.value for s in TERMINAL_STATUSES)


def is_postgres(tx: AsyncSession) -> bool:
    return dialect_name(tx) == "postgresql"


async def stamp(tx: AsyncSession) -> int:
    """This transaction's change stamp (one query per transaction, then cached)."""
    cached = tx.info.get(_STAMP_KEY)
    if cached is not None:
        return int(cached)
    if is_postgres(tx):
        query = text("SELECT pg_current_xact_id()::text::bigint")
    else:
        query = text(
            "INSERT INTO sync_counter (name, value) VALUES ('change', 1) "
            "ON CONFLICT (name) DO UPDATE SET value = sync_counter.value + 1 RETURNING value"
        )
    value = int((await tx.execute(query)).scalar_one())
    tx.info[_STAMP_KEY] = value
    return value


@sa_event.listens_for(Session, "after_transaction_end")
def _forget_stamp(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:
        session.info.pop(_STAMP_KEY, None)
        session.info.pop(_HINTS_KEY, None)


def hint(tx: AsyncSession, crew_id: int | None, work_order_id: int | None) -> None:
    """Tell the crew's online phones to pull, once this transaction commits."""
    if crew_id is None:
        return
    hints: dict[int, list[int]] = tx.info.setdefault(_HINTS_KEY, {})
    ids = hints.setdefault(crew_id, [])
    if work_order_id is not None and work_order_id not in ids and len(ids) < MAX_HINT_IDS:
        ids.append(work_order_id)
    live.publish(tx, live.crew_channel(crew_id), "pull", {"work_order_ids": list(ids)})


async def touch(tx: AsyncSession, wo: Any) -> None:
    """Something the pull embeds in the order's value changed (note, material, photo, conflict)."""
    value = await stamp(tx)
    if wo.change_seq != value:
        wo.change_seq = value
        tx.add(wo)
    hint(tx, wo.crew_id, wo.id)


async def on_work_order_changed(
    tx: AsyncSession, wo: Any, before: dict[str, Any], action: str, actor: Any
) -> None:
    """events.work_order_changed: stamp, field versions, closed_at, crew exit, hints."""
    del action, actor
    value = await stamp(tx)
    now = utcnow()
    versions = dict(wo.field_versions or {})
    for name in VERSIONED_FIELDS:
        if name not in before or before[name] != getattr(wo, name):
            versions[name] = wo.version
    if before.get("status") != wo.status:
        # What status the order had at each recent version: push judges an offline status
        # write from the status the device saw (sync.policies.seen_status, docs/adr/0022).
        versions[STATUS_TRAIL] = trail_with(
            versions.get(STATUS_TRAIL) or [], wo.version, Status(wo.status)
        )
    if versions != wo.field_versions:
        wo.field_versions = versions
    if wo.status in _TERMINAL:
        if wo.closed_at is None or before.get("status") != wo.status:
            wo.closed_at = now
    elif wo.closed_at is not None:
        wo.closed_at = None
    wo.change_seq = value
    tx.add(wo)
    old_crew = before.get("crew_id")
    if old_crew is not None and old_crew != wo.crew_id:
        await _record_exit(tx, wo.id, old_crew, now, value)
        hint(tx, old_crew, wo.id)
    hint(tx, wo.crew_id, wo.id)


async def _record_exit(
    tx: AsyncSession, work_order_id: int, crew_id: int, now: Any, seq: int
) -> None:
    insert = pg_insert if is_postgres(tx) else sqlite_insert
    statement = insert(CrewExit).values(
        work_order_id=work_order_id, crew_id=crew_id, left_at=now, change_seq=seq
    )
    statement = statement.on_conflict_do_update(
        index_elements=["work_order_id", "crew_id"],
        set_={"left_at": statement.excluded.left_at, "change_seq": statement.excluded.change_seq},
    )
    await tx.execute(statement)


def status_of(wo: Any) -> Status:
    return Status(wo.status)
