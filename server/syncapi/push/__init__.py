"""Offline sync, push: apply a device's mutations (docs/sync-protocol.md section 3-4).

The merge rules are pure (``sync.policies``, ``sync.mutations``); this module loads rows once per
batch, asks them, applies the verdict through the work-order service (audit rows with the device
id, ``events.work_order_changed``) and records outcomes and conflicts.

The steps: ``load`` (rows, once per batch), ``apply`` (verdicts), ``record`` (notes, entries,
conflicts, stamps); ``batch`` is what they share. This module runs them and keeps the log.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from server.accounts.auth import Actor
from server.dbtypes import table_of, utcnow
from server.errors import Conflict, DomainError
from server.syncapi import feed
from server.syncapi.common import (
    check_envelope,
    insert_for,
)
from server.syncapi.models import (
    MutationIn,
    MutationResult,
    PushRequest,
    PushResponse,
    SyncMutation,
)
from server.syncapi.push.apply import apply_one
from server.syncapi.push.batch import (
    CLIENTS,
    Applied,
    work_order_id,
)
from server.syncapi.push.load import client_for_update, load_batch
from server.syncapi.push.record import write_rows
from sync.mutations import (
    without_nul,
)
from sync.policies import (
    MutationOutcome,
)


def _check_order(mutations: Sequence[MutationIn]) -> None:
    for previous, current in itertools.pairwise(mutations):
        if current.id != previous.id + 1:
            raise DomainError("mutation_order_invalid", 400)


async def push(tx: AsyncSession, actor: Actor, body: PushRequest) -> PushResponse:
    crew_id = check_envelope(actor, body.protocol)
    mutations = body.mutations
    _check_order(mutations)
    last = await client_for_update(tx, body.client_id, actor, body.schema_version)
    replays = [m for m in mutations if m.id <= last]
    new = [m for m in mutations if m.id > last]
    if new and new[0].id != last + 1:
        # the watermark at the top of the body (docs/sync-protocol.md), and in params as before
        raise Conflict("mutation_gap", last_mutation_id=last).with_members(last_mutation_id=last)
    results = await _replayed(tx, body.client_id, replays) if replays else []
    now = utcnow()
    if new:
        outcomes = await _apply_new(tx, actor, crew_id, body.client_id, new)
        await tx.flush()  # conflict ids
        results += await _log(tx, actor, body.client_id, new, outcomes, now)
    values: dict[str, Any] = {
        "last_push_at": now,
        "device_id": actor.device_id,
        "crew_id": crew_id,
        "schema_version": body.schema_version,
    }
    if new:
        values["last_mutation_id"] = new[-1].id
    await tx.execute(update(CLIENTS).where(CLIENTS.c.client_id == body.client_id).values(**values))
    last_mutation_id = new[-1].id if new else last
    return PushResponse(last_mutation_id=last_mutation_id, results=results, server_time=now)


async def _replayed(
    tx: AsyncSession, client_id: str, replays: Sequence[MutationIn]
) -> list[MutationResult]:
    """Re-sent mutations: their outcomes, read from the log."""
    logged = {
        row.id: row
        for row in (
            await tx.execute(
                select(SyncMutation).where(
                    col(SyncMutation.client_id) == client_id,
                    col(SyncMutation.id).in_([m.id for m in replays]),
                )
            )
        ).scalars()
    }
    results = []
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
    return results


async def _apply_new(
    tx: AsyncSession, actor: Actor, crew_id: int, client_id: str, new: Sequence[MutationIn]
) -> list[Applied]:
    await feed.stamp(tx)  # before any savepoint (see feed.stamp)
    batch = await load_batch(tx, actor, crew_id, client_id, new, optimistic=True)
    try:
        # Fast path: the whole batch in one savepoint, rows flushed together. A mutation
        # that fails at the database undoes it, and the batch is replayed with one
        # savepoint per mutation: the outcomes are the same, isolation per mutation holds.
        async with tx.begin_nested():
            outcomes = [await apply_one(tx, batch, m, isolate=False) for m in new]
            await tx.flush()
            await write_rows(tx, batch)
    except (DomainError, IntegrityError):
        for wo in batch.orders.values():
            await tx.refresh(wo)
        batch = await load_batch(tx, actor, crew_id, client_id, new)
        outcomes = [await apply_one(tx, batch, m, isolate=True) for m in new]
    return outcomes


async def _log(
    tx: AsyncSession,
    actor: Actor,
    client_id: str,
    new: Sequence[MutationIn],
    outcomes: Sequence[Applied],
    now: datetime,
) -> list[MutationResult]:
    """Write the new mutations to the log (one statement) and return their results."""
    results = []
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
                "client_id": client_id,
                "id": m.id,
                # a refused mutation may hold NUL characters: kept as U+FFFD
                "name": without_nul(m.name[:100]) if refused else m.name[:100],
                "work_order_id": work_order_id(m),
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
    table = table_of(SyncMutation)
    await tx.execute(insert_for(tx)(table), log_rows)
    return results
