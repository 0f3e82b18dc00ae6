"""The push delivery job: claim due outbox rows, send them, record what the push service said.

Safe to run in any number of processes at once (docs/adr/0040):

1. *Claim* (one short transaction): due ``pending`` rows are selected ``FOR UPDATE SKIP
   LOCKED`` on PostgreSQL (SQLite serialises the transaction with ``BEGIN IMMEDIATE``) and
   stamped with ``claimed_by`` and a lease, ``claimed_until``. A row under a live lease is not
   due for anyone else; if the claiming process dies, the lease runs out and another takes it.
   Quiet hours are applied here: a row that may not go out now gets ``next_attempt_at`` = the
   end of the window and is not claimed.
2. *Send*, outside any transaction, all claimed rows concurrently (``send_push``: TTL,
   Urgency, Topic per request, timeout, fresh VAPID claims per send, payload < 3 KB).
3. *Record* (one transaction): updates are conditional on ``claimed_by``, so a process whose
   lease ran out cannot overwrite the row another process now owns.

The lease is longer than one batch can take (every send is bounded by the push timeout), so a
live process never loses a claim; only a process killed between sending and recording can
cause a second send, after its lease, and the per-request Topic then replaces, on the phone,
the first copy with the second.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import exists, select, update
from sqlalchemy.orm import aliased
from sqlmodel import col

from server.db import Database
from server.dbtypes import rowcount, utcnow
from server.notify.models import PushMessage, PushSubscription
from server.notify.quiet_hours import QuietHours
from server.notify.service import forget_subscriptions, render_payload
from server.notify.webpush import SendResult, VapidKeys, backoff_seconds, push_topic, send_push
from server.photos.service import public_copies_coming, public_photo_url
from server.requests.models import ServiceRequest
from server.settings import Settings

log = logging.getLogger("tournee.push")

#: A completion push waiting for its photo's public copy is looked at again this often (at
#: most; the push job's own interval, TOURNEE_JOB_PUSH_SECONDS, is the floor).
PHOTO_WAIT_STEP = timedelta(seconds=1)


def worker_name() -> str:
    """Who holds a claim: host, process id, and a per-run suffix."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(3)}"


def lease_seconds(settings: Settings) -> float:
    """Longer than a batch can take: every send ends within the push timeout."""
    return settings.push_timeout_seconds * 2 + 30


@dataclass
class _Claimed:
    id: int
    subscription: dict[str, Any]
    endpoint_hash: str
    payload: dict[str, Any]
    urgency: str
    topic: str
    attempts: int


@dataclass
class DeliveryReport:
    delivered: int = 0
    retried: int = 0
    gone: int = 0
    failed: int = 0
    deferred: int = 0
    expired: int = 0
    waited_for_photo: int = 0
    lost_claims: int = 0
    batches: int = 0
    statuses: list[int | None] = field(default_factory=list)

    @property
    def sent(self) -> int:
        return self.delivered + self.retried + self.gone + self.failed


async def claim_due_messages(
    db: Database,
    settings: Settings,
    *,
    now: datetime,
    worker: str,
    limit: int,
    quiet: QuietHours | None,
    report: DeliveryReport,
) -> tuple[list[_Claimed], bool]:
    """Claim up to `limit` due rows; returns (claimed, whether any due row was seen)."""
    lease = timedelta(seconds=lease_seconds(settings))
    quiet_until = quiet.deferred_until(now) if quiet else None
    claimed: list[_Claimed] = []
    # A browser's rows go out oldest first, one at a time: a pending confirmation is never
    # overtaken by the status push enqueued after it (both carry the request's Topic).
    older = aliased(PushMessage)
    has_older = exists().where(
        col(older.subscription_id) == col(PushMessage.subscription_id),
        col(older.state) == "pending",
        col(older.id) < col(PushMessage.id),
    )
    async with db.transaction() as tx:
        rows = (
            await tx.execute(
                select(PushMessage, PushSubscription, col(ServiceRequest.tracking_token))
                .join(
                    PushSubscription, col(PushSubscription.id) == col(PushMessage.subscription_id)
                )
                .join(ServiceRequest, col(ServiceRequest.id) == col(PushMessage.request_id))
                .where(
                    col(PushMessage.state) == "pending",
                    col(PushMessage.next_attempt_at) <= now,
                    col(PushMessage.claimed_until).is_(None)
                    | (col(PushMessage.claimed_until) < now),
                    ~has_older,
                )
                .order_by(col(PushMessage.next_attempt_at), col(PushMessage.id))
                .limit(limit)
                .with_for_update(skip_locked=True, of=PushMessage)
            )
        ).all()
        for message, subscription, tracking_token in rows:
            assert message.id is not None
            if message.created_at + timedelta(seconds=settings.push_ttl_seconds) < now:
                message.state, message.finished_at = "expired", now
                message.claimed_until = None
                report.expired += 1
            elif quiet_until is not None and not message.quiet_exempt:
                message.next_attempt_at = quiet_until  # delayed, never dropped
                message.claimed_until = None
                report.deferred += 1
            else:
                image = None
                wo_id = message.params.get("work_order_id")
                if message.kind == "completed" and wo_id:
                    image = await public_photo_url(tx, int(wo_id), settings)
                    wait_until = message.created_at + timedelta(
                        seconds=settings.push_photo_wait_seconds
                    )
                    if (
                        image is None
                        and now < wait_until
                        and await public_copies_coming(tx, int(wo_id))
                    ):
                        # the photo's public copy is on its way: wait for it, a bounded time,
                        # then leave without it (docs/adr/0032)
                        message.next_attempt_at = min(wait_until, now + PHOTO_WAIT_STEP)
                        message.claimed_until = None
                        report.waited_for_photo += 1
                        tx.add(message)
                        continue
                message.claimed_until = now + lease
                message.claimed_by = worker
                claimed.append(
                    _Claimed(
                        id=message.id,
                        subscription=subscription.as_webpush(),
                        endpoint_hash=subscription.endpoint_hash,
                        payload=render_payload(message, tracking_token, settings, image),
                        urgency=message.urgency,
                        topic=push_topic(f"request:{message.request_id}"),
                        attempts=message.attempts,
                    )
                )
            tx.add(message)
    return claimed, bool(rows)


async def _send(claim: _Claimed, settings: Settings, vapid: VapidKeys) -> SendResult | str:
    try:
        return await send_push(
            claim.subscription,
            claim.payload,
            vapid=vapid,
            sub_claim=settings.vapid_subject,
            ttl=settings.push_ttl_seconds,
            urgency=claim.urgency,
            topic=claim.topic,
            timeout=settings.push_timeout_seconds,
        )
    except ValueError as exc:  # our own mistake (payload, configuration): do not retry
        return str(exc)


async def _record(
    db: Database,
    settings: Settings,
    worker: str,
    results: list[tuple[_Claimed, SendResult | str]],
    now: datetime,
    report: DeliveryReport,
) -> None:
    async with db.transaction() as tx:
        gone_endpoints: set[str] = set()
        for claim, result in results:
            mine = (
                col(PushMessage.id) == claim.id,
                col(PushMessage.claimed_by) == worker,
                col(PushMessage.state) == "pending",
            )
            attempts = claim.attempts + 1
            if isinstance(result, str):
                values: dict[str, Any] = {"state": "failed", "last_error": result[:500]}
                report.failed += 1
            elif result.delivered:
                values = {"state": "delivered", "delivered_by": worker, "last_error": None}
                report.delivered += 1
            elif result.gone:
                values = {"state": "gone", "last_error": result.reason[:500] or None}
                gone_endpoints.add(claim.endpoint_hash)
                report.gone += 1
            elif result.retry and attempts < settings.push_max_attempts:
                delay = backoff_seconds(attempts, result.retry_after)
                values = {
                    "next_attempt_at": now + timedelta(seconds=delay),
                    "last_error": result.reason[:500] or None,
                    "claimed_by": None,
                }
                report.retried += 1
            else:
                values = {"state": "failed", "last_error": result.reason[:500] or "gave up"}
                report.failed += 1
            if not isinstance(result, str):
                values["last_status"] = result.status_code
                report.statuses.append(result.status_code)
            if values.get("state"):
                values["finished_at"] = now
            values.update(attempts=attempts, claimed_until=None)
            outcome = await tx.execute(update(PushMessage).where(*mine).values(**values))
            if rowcount(outcome) == 0:
                report.lost_claims += 1
                log.warning("push %s: claim lost before the result was recorded", claim.id)
        if gone_endpoints:
            # The push service said this browser's subscription is dead: every request it
            # followed loses it.
            dead = (
                await tx.execute(
                    select(col(PushSubscription.id)).where(
                        col(PushSubscription.endpoint_hash).in_(gone_endpoints)
                    )
                )
            ).scalars()
            await forget_subscriptions(
                tx, [int(i) for i in dead if i is not None], final_state="gone"
            )


async def deliver_pushes(
    db: Database,
    settings: Settings,
    vapid: VapidKeys,
    *,
    now: datetime | None = None,
    worker: str | None = None,
    max_batches: int = 20,
    keep_going: Callable[[], bool] | None = None,
) -> DeliveryReport:
    """Send every due push (up to `max_batches` batches). `now` fixes the clock (tests).

    ``keep_going`` is asked before each claim: a process shutting down claims nothing more and
    finishes (sends and records) the batch it holds."""
    quiet = QuietHours.parse(settings.quiet_hours, settings.city_timezone)
    worker = worker or worker_name()
    report = DeliveryReport()
    for _ in range(max_batches):
        if keep_going is not None and not keep_going():
            break
        current = now or utcnow()
        claimed, seen = await claim_due_messages(
            db,
            settings,
            now=current,
            worker=worker,
            limit=settings.push_batch_size,
            quiet=quiet,
            report=report,
        )
        if not seen:
            break
        if not claimed:
            continue
        report.batches += 1
        results = await asyncio.gather(*(_send(c, settings, vapid) for c in claimed))
        await _record(db, settings, worker, list(zip(claimed, results, strict=True)),
                      now or utcnow(), report)  # fmt: skip
    return report
