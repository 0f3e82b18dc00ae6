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

from server.accounts.auth import Actor
from server.dbtypes import utcnow
from server.errors import Forbidden
from server.photos.models import Photo, WorkOrderPhoto
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
    SyncConflict,
)
from server.workorders.models import MaterialEntry, WorkOrder, WorkOrderNote
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


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


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


async def work_order_values(
    tx: AsyncSession,
    orders: Sequence[WorkOrder],
    codes: dict[int, str],
    *,
    away: set[int],
    crew_id: int | None,
) -> dict[int, dict[str, Any]]:
    """The pull value of each order, children loaded with one query per kind."""
    ids = [wo.id for wo in orders if wo.id is not None]
    if not ids:
        return {}
    notes: dict[int, list[dict[str, Any]]] = {i: [] for i in ids}
    for n in (
        await tx.execute(
            select(WorkOrderNote)
            .where(WorkOrderNote.work_order_id.in_(ids))
            .order_by(WorkOrderNote.id)  # type: ignore[attr-defined]
        )
    ).scalars():
        notes[n.work_order_id].append(
            {"id": n.id, "body": n.body, "author": n.author, "created_at": _iso(n.created_at)}
        )
    materials: dict[int, list[dict[str, Any]]] = {i: [] for i in ids}
    for e in (
        await tx.execute(
            select(MaterialEntry)
            .where(MaterialEntry.work_order_id.in_(ids))
            .order_by(MaterialEntry.id)  # type: ignore[attr-defined]
        )
    ).scalars():
        materials[e.work_order_id].append(
            {
                "id": e.id,
                "material_code": e.material_code,
                "quantity": e.quantity,
                "unit": e.unit,
                "voids": e.voids_id,
                "created_at": _iso(e.created_at),
            }
        )
    photos: dict[int, list[dict[str, Any]]] = {i: [] for i in ids}
    photo_rows = list(
        (
            await tx.execute(
                select(WorkOrderPhoto)
                .where(WorkOrderPhoto.work_order_id.in_(ids))
                .order_by(WorkOrderPhoto.id)  # type: ignore[attr-defined]
            )
        ).scalars()
    )
    received: set[str] = set()
    if photo_rows:
        received = set(
            (
                await tx.execute(
                    select(Photo.sha256).where(Photo.sha256.in_({p.sha256 for p in photo_rows}))  # type: ignore[attr-defined]
                )
            ).scalars()
        )
    for p in photo_rows:
        photos[p.work_order_id].append(
            {
                "id": p.id,
                "sha256": p.sha256,
                "kind": p.kind,
                "received": p.sha256 in received,
                "created_at": _iso(p.created_at),
            }
        )
    conflicts: dict[int, list[dict[str, Any]]] = {i: [] for i in ids}
    query = select(SyncConflict).where(SyncConflict.work_order_id.in_(ids))  # type: ignore[union-attr]
    if crew_id is not None:
        query = query.where(SyncConflict.crew_id == crew_id)
    for c in (await tx.execute(query.order_by(SyncConflict.id))).scalars():  # type: ignore[arg-type]
        conflicts[c.work_order_id or 0].append(
            {
                "id": c.id,
                "kind": c.kind,
                "status": c.status,
                "resolution": c.resolution,
                "mutation_id": c.mutation_id,
                "client_id": c.client_id,
            }
        )
    values = {}
    for wo in orders:
        assert wo.id is not None
        values[wo.id] = {
            "id": wo.id,
            "version": wo.version,
            "status": wo.status,
            "service_code": codes.get(wo.service_type_id, ""),
            "title": wo.title,
            "description": wo.description,
            "address": wo.address,
            "lat": wo.lat,
            "lon": wo.lon,
            "borough_code": wo.borough_code,
            "priority": wo.priority,
            "due_at": _iso(wo.due_at),
            "crew_id": wo.crew_id,
            "outcome": wo.outcome,
            "outcome_note": wo.outcome_note,
            "completed_at": _iso(wo.completed_at),
            "cancelled_at": _iso(wo.cancelled_at),
            "cancel_reason": wo.cancel_reason,
            "work_performed": wo.work_performed,
            "reassigned_away": wo.id in away,
            "field_versions": dict(wo.field_versions or {}),
            "notes": notes[wo.id],
            "materials": materials[wo.id],
            "photos": photos[wo.id],
            "conflicts": conflicts[wo.id],
        }
    return values


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
    in_tail = or_(
        WorkOrder.status.in_(OPEN),  # type: ignore[attr-defined]
        WorkOrder.closed_at >= cutoff,  # type: ignore[operator]
    )
    mine = WorkOrder.crew_id == crew_id
    not_mine = or_(WorkOrder.crew_id.is_(None), WorkOrder.crew_id != crew_id)  # type: ignore[union-attr]
    exit_join = and_(CrewExit.work_order_id == WorkOrder.id, CrewExit.crew_id == crew_id)
    later = WorkOrder.id > after  # type: ignore[operator]
    order = WorkOrder.id  # type: ignore[var-annotated]
    queries: list[tuple[Any, str]] = []
    if cookie is None:
        queries.append((select(WorkOrder).where(mine, in_tail, later), "scope"))
        queries.append(
            (
                select(WorkOrder)
                .join(CrewExit, exit_join)
                .where(not_mine, CrewExit.left_at >= cutoff, later),  # type: ignore[operator]
                "away",
            )
        )
    else:
        assert since is not None
        queries.append(
            (select(WorkOrder).where(mine, WorkOrder.change_seq >= seq, later), "scope")  # type: ignore[operator]
        )
        queries.append(
            (
                select(WorkOrder)
                .join(CrewExit, exit_join)
                .where(
                    not_mine,
                    later,
                    or_(
                        WorkOrder.change_seq >= seq,  # type: ignore[operator]
                        and_(CrewExit.left_at >= since, CrewExit.left_at < cutoff),  # type: ignore[operator]
                    ),
                ),
                "away_or_aged",
            )
        )
        queries.append(
            (
                select(WorkOrder).where(
                    mine,
                    later,
                    WorkOrder.change_seq < seq,  # type: ignore[operator]
                    WorkOrder.closed_at >= since,  # type: ignore[operator]
                    WorkOrder.closed_at < cutoff,  # type: ignore[operator]
                ),
                "aged",
            )
        )
    found: dict[int, tuple[WorkOrder, str]] = {}
    exits_left: dict[int, datetime] = {}
    more = False
    for query, kind in queries:
        if kind.startswith("away"):
            rows = (
                await tx.execute(
                    query.add_columns(CrewExit.left_at).order_by(order).limit(limit + 1)
                )
            ).all()
            orders = []
            for wo, left_at in rows:
                exits_left[wo.id] = left_at
                orders.append(wo)
        else:
            orders = list((await tx.execute(query.order_by(order).limit(limit + 1))).scalars())
        if len(orders) > limit:
            more = True
        for wo in orders:
            assert wo.id is not None
            if kind == "scope":
                in_scope = wo.status in OPEN or (
                    wo.closed_at is not None and wo.closed_at >= cutoff
                )
                found[wo.id] = (wo, "put" if in_scope else "del")
            elif kind.startswith("away"):
                found[wo.id] = (wo, "away" if exits_left[wo.id] >= cutoff else "del")
            else:
                found[wo.id] = (wo, "del")
    ordered = [found[i] for i in sorted(found)]
    if len(ordered) > limit:
        # A query that overflowed contributed limit + 1 rows, so the cut below is exact: its
        # unfetched rows all have larger ids than the last one kept.
        more = True
        ordered = ordered[:limit]
    return ordered, more


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
    if cookie is None or (cookie.paging and cookie.full):
        # a full sync: first page, or a later page of one
        reset = cookie is None
        if cookie is None:
            cookie = Cookie(
                seq=0,
                at=now.timestamp(),
                crew=crew_id,
                ref=digest,
                after=0,
                next_seq=next_seq,
                next_at=now.timestamp(),
                lmid=lmid,
                full=True,
            )
            patch.extend(_reference_patch(types))
        assert cookie.next_at is not None
        cutoff = _from_epoch(cookie.next_at) - tail
        rows, more = await _page_rows(
            tx,
            crew_id,
            None,
            seq=0,
            since=None,
            cutoff=cutoff,
            after=cookie.after or 0,
            limit=body.limit,
        )
    else:
        reset = False
        if not cookie.paging:
            cookie = Cookie(
                seq=cookie.seq,
                at=cookie.at,
                crew=crew_id,
                ref=cookie.ref,
                after=0,
                next_seq=next_seq,
                next_at=now.timestamp(),
                lmid=lmid,
                full=False,
            )
            if cookie.ref != digest:
                patch.extend(_reference_patch(types))
        assert cookie.next_at is not None
        cutoff = _from_epoch(cookie.next_at) - tail
        rows, more = await _page_rows(
            tx,
            crew_id,
            cookie,
            seq=cookie.seq,
            since=_from_epoch(cookie.at) - tail,
            cutoff=cutoff,
            after=cookie.after or 0,
            limit=body.limit,
        )
    puts = [wo for wo, kind in rows if kind != "del"]
    away = {wo.id for wo, kind in rows if kind == "away" and wo.id is not None}
    values = await work_order_values(tx, puts, codes, away=away, crew_id=crew_id)
    for wo, kind in rows:
        key = f"work_order/{wo.id}"
        if kind == "del":
            patch.append(PatchOp("del", key))
        else:
            patch.append(PatchOp("put", key, values[wo.id or 0]))
    assert cookie.lmid is not None
    answer_lmid = cookie.lmid
    if more:
        last_id = rows[-1][0].id if rows else cookie.after or 0
        out = Cookie(
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
    else:
        done = cookie.finished()
        out = Cookie(seq=done.seq, at=done.at, crew=crew_id, ref=digest)
    return PullResponse(
        cookie=encode_cookie(out, signing_key, body.client_id),
        last_mutation_id=answer_lmid,
        reset=reset,
        has_more=more,
        upgrade=False,
        server_time=now,
        patch=patch,
    )


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
            select(SyncClient.last_mutation_id, SyncClient.user_id).where(
                SyncClient.client_id == client_id
            )
        )
    ).first()
    if row is None:
        return 0
    if row[1] != actor.user_id:
        raise Forbidden("client_id_taken")
    return int(row[0])
