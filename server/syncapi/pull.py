"""Offline sync, pull: the crew's scope since a cookie (docs/sync-protocol.md section 5,
docs/adr/0011).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from server.accounts.auth import Actor
from server.dbtypes import utcnow
from server.errors import Forbidden
from server.requests.models import ServiceType
from server.settings import Settings
from server.syncapi import feed
from server.syncapi.common import (
    OPEN,
    OUTCOME_NAMES,
    check_envelope,
)
from server.syncapi.models import (
    CrewExit,
    PatchOp,
    PullRequest,
    PullResponse,
    SyncClient,
)
from server.syncapi.values import work_order_values
from server.workorders.models import WorkOrder
from sync.cursor import Cookie, cookie_key, decode_cookie, encode_cookie
from sync.mutations import crew_transition_table

# =========================================================================== pull


async def _begin_snapshot(tx: AsyncSession) -> int:
    """Start the pull's snapshot; return the cursor the next pull will start from."""
    if feed.is_postgres(tx):
        await tx.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"))
        value = (
            await tx.execute(text("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint"))
        ).scalar_one()
        return int(value)
    value = (
        await tx.execute(text("SELECT value FROM sync_counter WHERE name = 'change'"))
    ).scalar()
    return int(value or 0) + 1


def _service_type_value(st: ServiceType) -> dict[str, Any]:
    return {
        "code": st.code,
        "name_fr": st.name_fr,
        "name_en": st.name_en,
        "category": st.category,
        "default_priority": st.default_priority,
        "sla_hours": st.sla_hours,
        "evidence_required": list(st.evidence_required or []),
        "active": st.active,
    }


def _reference_patch(types: Sequence[ServiceType]) -> list[PatchOp]:
    patch = [
        PatchOp("put", f"service_type/{st.code}", _service_type_value(st))
        for st in sorted(types, key=lambda t: t.code)
    ]
    for code in sorted(OUTCOME_NAMES):
        fr, en = OUTCOME_NAMES[code]
        patch.append(
            PatchOp("put", f"outcome/{code}", {"code": code, "name_fr": fr, "name_en": en})
        )
    for status, moves in crew_transition_table().items():
        patch.append(PatchOp("put", f"crew_transition/{status}", moves))
    return patch


def _reference_digest(types: Sequence[ServiceType]) -> str:
    data = [_service_type_value(st) for st in sorted(types, key=lambda t: t.code)]
    raw = json.dumps([data, OUTCOME_NAMES, crew_transition_table()], sort_keys=True).encode()
    return hashlib.sha256(raw).hexdigest()[:16]


def _epoch(value: datetime) -> float:
    return value.timestamp()


def _from_epoch(value: float) -> datetime:
    return datetime.fromtimestamp(value, UTC)


async def _page_rows(
    tx: AsyncSession,
    crew_id: int,
    cookie: Cookie | None,
    *,
    seq: int,
    since: datetime | None,
    cutoff: datetime,
    after: int,
    limit: int,
) -> tuple[list[tuple[WorkOrder, str]], bool]:
    """Work orders of one page as ``(order, kind)``: kind is put, away or del. Ordered by id.

    Full sync (``cookie is None``): the scope. Incremental: what changed since ``seq`` and what
    aged out of the tail between ``since`` and ``cutoff``.
    """
    queries = _page_queries(crew_id, cookie, seq=seq, since=since, cutoff=cutoff, after=after)
    found: dict[int, tuple[WorkOrder, str]] = {}
    more = False
    for query, kind in queries:
        orders, exits_left = await _fetch(tx, query, kind, limit)
        if len(orders) > limit:
            more = True
        for wo in orders:
            assert wo.id is not None
            found[wo.id] = (wo, _row_kind(wo, kind, exits_left, cutoff))
    ordered = [found[i] for i in sorted(found)]
    if len(ordered) > limit:
        # A query that overflowed contributed limit + 1 rows, so the cut below is exact: its
        # unfetched rows all have larger ids than the last one kept.
        more = True
        ordered = ordered[:limit]
    return ordered, more


def _page_queries(
    crew_id: int,
    cookie: Cookie | None,
    *,
    seq: int,
    since: datetime | None,
    cutoff: datetime,
    after: int,
) -> list[tuple[Any, str]]:
    """The queries of one page, each with what its rows are: scope, away, away_or_aged, aged."""
    in_tail = or_(
        col(WorkOrder.status).in_(OPEN),
        col(WorkOrder.closed_at) >= cutoff,
    )
    mine = col(WorkOrder.crew_id) == crew_id
    not_mine = or_(col(WorkOrder.crew_id).is_(None), col(WorkOrder.crew_id) != crew_id)
    exit_join = and_(
        col(CrewExit.work_order_id) == col(WorkOrder.id), col(CrewExit.crew_id) == crew_id
    )
    later = col(WorkOrder.id) > after
    if cookie is None:
        return [
            (select(WorkOrder).where(mine, in_tail, later), "scope"),
            (
                select(WorkOrder)
                .join(CrewExit, exit_join)
                .where(not_mine, col(CrewExit.left_at) >= cutoff, later),
                "away",
            ),
        ]
    assert since is not None
    return [
        (select(WorkOrder).where(mine, col(WorkOrder.change_seq) >= seq, later), "scope"),
        (
            select(WorkOrder)
            .join(CrewExit, exit_join)
            .where(
                not_mine,
                later,
                or_(
                    col(WorkOrder.change_seq) >= seq,
                    and_(col(CrewExit.left_at) >= since, col(CrewExit.left_at) < cutoff),
                ),
            ),
            "away_or_aged",
        ),
        (
            select(WorkOrder).where(
                mine,
                later,
                col(WorkOrder.change_seq) < seq,
                col(WorkOrder.closed_at) >= since,
                col(WorkOrder.closed_at) < cutoff,
            ),
            "aged",
        ),
    ]


async def _fetch(
    tx: AsyncSession, query: Any, kind: str, limit: int
) -> tuple[list[WorkOrder], dict[int, datetime]]:
    """Up to ``limit + 1`` orders of one query, in id order, and when the crew left the away
    ones."""
    order = WorkOrder.id
    exits_left: dict[int, datetime] = {}
    if not kind.startswith("away"):
        return list((await tx.execute(query.order_by(order).limit(limit + 1))).scalars()), {}
    rows = (
        await tx.execute(query.add_columns(CrewExit.left_at).order_by(order).limit(limit + 1))
    ).all()
    orders = []
    for wo, left_at in rows:
        exits_left[wo.id] = left_at
        orders.append(wo)
    return orders, exits_left


def _row_kind(wo: WorkOrder, kind: str, exits_left: dict[int, datetime], cutoff: datetime) -> str:
    assert wo.id is not None
    if kind == "scope":
        in_scope = wo.status in OPEN or (wo.closed_at is not None and wo.closed_at >= cutoff)
        return "put" if in_scope else "del"
    if kind.startswith("away"):
        return "away" if exits_left[wo.id] >= cutoff else "del"
    return "del"


async def pull(
    tx: AsyncSession, actor: Actor, body: PullRequest, settings: Settings
) -> PullResponse:
    crew_id = check_envelope(actor, body.protocol)
    now = utcnow()
    if body.schema_version < settings.sync_min_schema:
        lmid = await _last_mutation_id(tx, body.client_id, actor)
        return PullResponse(body.cookie, lmid, False, False, True, now, [])
    next_seq = await _begin_snapshot(tx)  # first statement: the snapshot
    lmid = await _last_mutation_id(tx, body.client_id, actor)
    types = list((await tx.execute(select(ServiceType))).scalars())
    codes = {st.id: st.code for st in types if st.id is not None}
    digest = _reference_digest(types)
    signing_key = cookie_key(settings.secret_key)
    cookie = _trusted(
        decode_cookie(body.cookie, signing_key, body.client_id), crew_id, next_seq, now, settings
    )
    tail = timedelta(hours=settings.sync_tail_hours)
    patch: list[PatchOp] = []
    full = cookie is None or (cookie.paging and cookie.full)  # first page, or a later page of one
    reset = cookie is None
    if cookie is None or not cookie.paging:
        # a new pass: the cursor it ends at is this snapshot
        cookie = Cookie(
            seq=0 if cookie is None else cookie.seq,
            at=now.timestamp() if cookie is None else cookie.at,
            crew=crew_id,
            ref=digest if cookie is None else cookie.ref,
            after=0,
            next_seq=next_seq,
            next_at=now.timestamp(),
            lmid=lmid,
            full=cookie is None,
        )
        if reset or cookie.ref != digest:
            patch.extend(_reference_patch(types))
    assert cookie.next_at is not None
    cutoff = _from_epoch(cookie.next_at) - tail
    rows, more = await _page_rows(
        tx,
        crew_id,
        None if full else cookie,
        seq=0 if full else cookie.seq,
        since=None if full else _from_epoch(cookie.at) - tail,
        cutoff=cutoff,
        after=cookie.after or 0,
        limit=body.limit,
    )
    patch.extend(await _order_patch(tx, rows, codes, crew_id))
    assert cookie.lmid is not None
    return PullResponse(
        cookie=encode_cookie(
            _next_cookie(cookie, rows, more, crew_id, digest), signing_key, body.client_id
        ),
        last_mutation_id=cookie.lmid,
        reset=reset,
        has_more=more,
        upgrade=False,
        server_time=now,
        patch=patch,
    )


async def _order_patch(
    tx: AsyncSession, rows: list[tuple[WorkOrder, str]], codes: dict[int, str], crew_id: int
) -> list[PatchOp]:
    puts = [wo for wo, kind in rows if kind != "del"]
    away = {wo.id for wo, kind in rows if kind == "away" and wo.id is not None}
    values = await work_order_values(tx, puts, codes, away=away, crew_id=crew_id)
    patch = []
    for wo, kind in rows:
        key = f"work_order/{wo.id}"
        if kind == "del":
            patch.append(PatchOp("del", key))
        else:
            patch.append(PatchOp("put", key, values[wo.id or 0]))
    return patch


def _next_cookie(
    cookie: Cookie, rows: list[tuple[WorkOrder, str]], more: bool, crew_id: int, digest: str
) -> Cookie:
    """The next page of this pass, or (the pass done) the cursor it ends at."""
    if more:
        last_id = rows[-1][0].id if rows else cookie.after or 0
        return Cookie(
            seq=cookie.seq,
            at=cookie.at,
            crew=crew_id,
            ref=digest,
            after=last_id,
            next_seq=cookie.next_seq,
            next_at=cookie.next_at,
            lmid=cookie.lmid,
            full=cookie.full,
        )
    done = cookie.finished()
    return Cookie(seq=done.seq, at=done.at, crew=crew_id, ref=digest)


CLOCK_SKEW_SECONDS = 300  # API processes' clocks may differ this much


def _trusted(
    cookie: Cookie | None, crew_id: int, next_seq: int, now: datetime, settings: Settings
) -> Cookie | None:
    """A verified cookie that still makes sense here, or None (a full resync): another crew's,
    older than TOURNEE_SYNC_COOKIE_MAX_DAYS, or ahead of this database (a cursor past the
    current snapshot, a time in the future: a restored database, never a client's own)."""
    if cookie is None or cookie.crew != crew_id:
        return None
    max_age = timedelta(days=settings.sync_cookie_max_days).total_seconds()
    at = now.timestamp()
    if at - cookie.at > max_age or cookie.at > at + CLOCK_SKEW_SECONDS or cookie.seq > next_seq:
        return None
    if cookie.paging and (
        (cookie.next_seq or 0) > next_seq or (cookie.next_at or 0) > at + CLOCK_SKEW_SECONDS
    ):
        return None
    return cookie


async def _last_mutation_id(tx: AsyncSession, client_id: str, actor: Actor) -> int:
    row = (
        await tx.execute(
            select(col(SyncClient.last_mutation_id), col(SyncClient.user_id)).where(
                col(SyncClient.client_id) == client_id
            )
        )
    ).first()
    if row is None:
        return 0
    if row[1] != actor.user_id:
        raise Forbidden("client_id_taken")
    return int(row[0])
