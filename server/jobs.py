"""Scheduled jobs. Each opens its own transactions through ``Database.transaction()`` and calls
the same services as the routes; each takes the clock as a parameter (``now``) so tests can
move time without patching. Every job is safe to run in several processes at once: work rows
are claimed with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL (``BEGIN IMMEDIATE`` on SQLite).
The registry that runs them is server/scheduler.py.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Field, SQLModel, col

from server.accounts.models import AccessToken, StreamTicket
from server.audit import record
from server.db import Database
from server.dbtypes import UTCDateTime, dialect_name, rowcount, utcnow
from server.live import bus as live
from server.notify.jobs import DeliveryReport, deliver_pushes
from server.notify.models import FINAL_STATES, DispatcherNotice, PushMessage, PushSubscription
from server.notify.service import forget_subscriptions
from server.notify.webpush import VapidKeys
from server.photos import jobs as photo_jobs
from server.photos.service import make_photo_store
from server.ratelimit import RateLimitWindow
from server.requests.models import ServiceRequest
from server.settings import Settings
from server.workorders.models import WorkOrder
from sync.states import OPEN_STATUSES

log = logging.getLogger("tournee.jobs")

OPEN = sorted(s.value for s in OPEN_STATUSES)
SLA_BATCH = 200


class JobRun(SQLModel, table=True):
    """Runs of each scheduled job over every scheduler process (``/metrics`` reads it: the
    scheduler serves no HTTP, and several schedulers add up in one row per job)."""

    __tablename__ = "job_run"

    name: str = Field(primary_key=True, max_length=60)
    runs: int = 0
    failures: int = 0
    seconds_total: float = 0.0
    last_seconds: float = 0.0
    last_finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


async def record_run(db: Database, name: str, seconds: float, *, failed: bool) -> None:
    """Add one run to the job's row (one upsert in its own short transaction)."""
    async with db.transaction() as tx:
        insert = pg_insert if dialect_name(tx) == "postgresql" else sqlite_insert
        now = utcnow()
        statement = insert(JobRun).values(
            name=name,
            runs=1,
            failures=int(failed),
            seconds_total=seconds,
            last_seconds=seconds,
            last_finished_at=now,
        )
        await tx.execute(
            statement.on_conflict_do_update(
                index_elements=["name"],
                set_={
                    "runs": JobRun.runs + 1,
                    "failures": JobRun.failures + int(failed),
                    "seconds_total": JobRun.seconds_total + seconds,
                    "last_seconds": seconds,
                    "last_finished_at": now,
                },
            )
        )


__all__ = [
    "deliver_pushes",
    "escalate_overdue_work_orders",
    "prune_expired_data",
    "run_photo_jobs",
]


# --- push delivery ---------------------------------------------------------------------------


async def deliver_push_notifications(
    db: Database,
    settings: Settings,
    vapid: VapidKeys,
    *,
    now: datetime | None = None,
    keep_going: Callable[[], bool] | None = None,
) -> DeliveryReport:
    report = await deliver_pushes(db, settings, vapid, now=now, keep_going=keep_going)
    if report.sent or report.deferred or report.expired or report.waited_for_photo:
        log.info(
            "push: %d delivered, %d retried, %d gone, %d failed, %d deferred, %d expired,"
            " %d waiting for their photo",
            report.delivered,
            report.retried,
            report.gone,
            report.failed,
            report.deferred,
            report.expired,
            report.waited_for_photo,
        )
    return report


# --- SLA escalation --------------------------------------------------------------------------


async def escalate_overdue_work_orders(
    db: Database, settings: Settings, *, now: datetime | None = None
) -> list[int]:
    """Flag each open work order past its due time once: ``escalated_at``, an audit row, a
    durable notice row and a live event for the dispatch desk. Returns the ids escalated."""
    now = now or utcnow()
    escalated: list[int] = []
    async with db.transaction() as tx:
        orders = (
            await tx.execute(
                select(WorkOrder)
                .where(
                    col(WorkOrder.status).in_(OPEN),
                    col(WorkOrder.due_at) < now,
                    col(WorkOrder.escalated_at).is_(None),
                )
                .order_by(col(WorkOrder.due_at), col(WorkOrder.id))
                .limit(SLA_BATCH)
                .with_for_update(skip_locked=True)
            )
        ).scalars()
        for wo in orders:
            assert wo.id is not None
            # Not a version bump: a server-side flag must not make crews' offline edits conflict.
            wo.escalated_at = now
            tx.add(wo)
            overdue_minutes = int((now - wo.due_at).total_seconds() // 60)
            await record(
                tx,
                entity_type="work_order",
                entity_id=wo.id,
                action="escalated",
                actor=None,
                changes={"escalated_at": [None, now.isoformat()]},
                reason=f"overdue by {overdue_minutes} min",
            )
            notice = DispatcherNotice(
                kind="sla_overdue",
                work_order_id=wo.id,
                data={
                    "work_order_id": wo.id,
                    "status": wo.status,
                    "priority": wo.priority,
                    "crew_id": wo.crew_id,
                    "borough_code": wo.borough_code,
                    "due_at": wo.due_at.isoformat(),
                    "overdue_minutes": overdue_minutes,
                },
                created_at=now,
            )
            notice.published_at = now  # the live hint below leaves at commit
            tx.add(notice)
            escalated.append(wo.id)
        if escalated:
            # One coalesced hint per run to the dispatch desk's live stream (server/live/bus.py);
            # the notice rows keep the details.
            live.publish(tx, live.DISPATCH_CHANNEL, "sla_escalated", {"work_order_ids": escalated})
    if escalated:
        log.info("SLA: %d work order(s) escalated: %s", len(escalated), escalated)
    return escalated


# --- photos (server/photos/jobs.py) ----------------------------------------------------------


async def run_photo_jobs(
    db: Database, settings: Settings, *, now: datetime | None = None
) -> dict[str, int]:
    """Photo derivatives, missing-evidence checks and the files' life cycle (uploads abandoned,
    orphans, retention, withdrawn copies: server/photos/jobs.py ``purge_photos``)."""
    store = make_photo_store(settings)
    purged = await photo_jobs.purge_photos(db, store, settings, now=now)
    return {
        "derivatives": await photo_jobs.process_pending_photo_jobs(db, store, 20),
        "missing": await photo_jobs.check_missing_photos(db, settings),
        "cleanup": purged.uploads,
        "orphans": purged.orphans,
        "expired": purged.expired,
        "withdrawn": purged.withdrawn,
    }


# --- pruning ---------------------------------------------------------------------------------


@dataclass
class PruneReport:
    sessions: int = 0
    push_messages: int = 0
    subscriptions: int = 0
    notices: int = 0
    rate_windows: int = 0


async def prune_expired_data(
    db: Database, settings: Settings, *, now: datetime | None = None
) -> PruneReport:
    """Delete what has no further use: expired dispatcher sessions, finished outbox rows and
    dispatcher notices older than the retention, subscriptions of requests closed that long,
    rate-limit windows that have ended."""
    now = now or utcnow()
    cutoff = now - timedelta(days=settings.push_retention_days)
    report = PruneReport()
    async with db.transaction() as tx:
        expired_sessions = select(col(AccessToken.id)).where(
            col(AccessToken.kind) == "session",
            col(AccessToken.expires_at).is_not(None),
            col(AccessToken.expires_at) < now,
        )
        await tx.execute(  # stream tickets live a minute; those of expired sessions go too
            delete(StreamTicket).where(
                or_(
                    col(StreamTicket.expires_at) < now,
                    col(StreamTicket.token_id).in_(expired_sessions),
                )
            )
        )
        result = await tx.execute(
            delete(AccessToken).where(col(AccessToken.id).in_(expired_sessions))
        )
        report.sessions = rowcount(result)
        result = await tx.execute(
            delete(PushMessage).where(
                col(PushMessage.state).in_(FINAL_STATES),
                col(PushMessage.finished_at) < cutoff,
            )
        )
        report.push_messages = rowcount(result)
        stale = (
            await tx.execute(
                select(col(PushSubscription.id))
                .join(ServiceRequest, col(ServiceRequest.id) == col(PushSubscription.request_id))
                .where(
                    col(ServiceRequest.status) == "closed", col(ServiceRequest.closed_at) < cutoff
                )
            )
        ).scalars()
        stale_ids = [int(i) for i in stale if i is not None]
        if stale_ids:
            await forget_subscriptions(tx, stale_ids, final_state="expired")
        report.subscriptions = len(stale_ids)
        result = await tx.execute(
            delete(DispatcherNotice).where(col(DispatcherNotice.created_at) < cutoff)
        )
        report.notices = rowcount(result)
        result = await tx.execute(
            delete(RateLimitWindow).where(col(RateLimitWindow.window_end) < now)
        )
        report.rate_windows = rowcount(result)
    return report
