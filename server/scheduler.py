"""The job registry and its APScheduler 3.11 ``AsyncIOScheduler``.

The scheduler runs inside the API process by default (``TOURNEE_SCHEDULER=1``, started in the
app's lifespan), or alone as ``tournee scheduler``. APScheduler 3 cannot share a job store
between processes, so each process keeps its own in-memory schedule and every job is written
to be run by several processes at once (server/jobs.py claims its work rows).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from server import jobs
from server.db import Database
from server.notify.quiet_hours import QuietHours
from server.notify.service import load_vapid_keys
from server.notify.webpush import VapidKeys
from server.settings import Settings
from server.wiring import wire

log = logging.getLogger("tournee.scheduler")


@dataclass(frozen=True)
class JobSpec:
    name: str
    seconds: float
    run: Callable[[], Awaitable[Any]]


def job_specs(
    db: Database,
    settings: Settings,
    vapid: VapidKeys,
    stopping: asyncio.Event | None = None,
) -> list[JobSpec]:
    """Every scheduled job with its interval (a non-positive interval disables the job).

    Once ``stopping`` is set, the push job claims no further batch (it finishes the one held)."""

    def keep_going() -> bool:
        return stopping is None or not stopping.is_set()

    async def push() -> Any:
        return await jobs.deliver_push_notifications(db, settings, vapid, keep_going=keep_going)

    async def sla() -> Any:
        return await jobs.escalate_overdue_work_orders(db, settings)

    async def photos() -> Any:
        return await jobs.run_photo_jobs(db, settings)

    async def prune() -> Any:
        return await jobs.prune_expired_data(db, settings)

    specs = [
        JobSpec("push_delivery", settings.job_push_seconds, push),
        JobSpec("sla_escalation", settings.job_sla_seconds, sla),
        JobSpec("prune_expired_data", settings.job_prune_seconds, prune),
        JobSpec("photo_jobs", settings.job_photos_seconds, photos),
    ]
    return [spec for spec in specs if spec.seconds > 0]


class JobScheduler:
    """An ``AsyncIOScheduler`` running every job, and a stop that lets running jobs finish.

    APScheduler's ``shutdown()`` does not wait for coroutine jobs, it cancels them; a job cut off
    mid-batch has sent pushes it has not recorded, so :meth:`stop` first stops new runs
    (``pause``) and new claims (the push job checks ``stopping`` before each batch), waits
    (bounded) for the jobs that are running to finish their current batch, then cancels what is
    left: a cancelled claim rolls back, and rows claimed but not recorded are retaken by another
    process when their lease runs out (server/notify/jobs.py).
    """

    def __init__(self, db: Database, settings: Settings, vapid: VapidKeys) -> None:
        QuietHours.parse(settings.quiet_hours, settings.city_timezone)  # fail at start-up
        self.settings = settings
        self.db = db
        self.scheduler = AsyncIOScheduler(timezone=UTC)
        self._running: set[asyncio.Task[Any]] = set()
        self.stopping = asyncio.Event()
        for spec in job_specs(db, settings, vapid, self.stopping):
            self.scheduler.add_job(
                self._tracked(spec.name, spec.run),
                "interval",
                seconds=spec.seconds,
                id=spec.name,
                name=spec.name,
                max_instances=1,  # per process; other processes are kept apart by row claims
                coalesce=True,
                misfire_grace_time=max(1, int(spec.seconds)),
                next_run_time=datetime.now(UTC),
            )

    def _tracked(
        self, name: str, run: Callable[[], Awaitable[Any]]
    ) -> Callable[[], Awaitable[Any]]:
        async def tracked() -> Any:
            task = asyncio.current_task()
            if task is not None:
                self._running.add(task)
            started = time.perf_counter()
            try:
                try:
                    result = await run()
                except Exception:
                    await self._count_run(name, time.perf_counter() - started, failed=True)
                    raise
                await self._count_run(name, time.perf_counter() - started, failed=False)
                return result  # a cancelled run (shutdown) is not counted
            finally:
                if task is not None:
                    self._running.discard(task)

        return tracked

    async def _count_run(self, name: str, seconds: float, *, failed: bool) -> None:
        """Runs and durations for /metrics (server/jobs.py JobRun); never fails the job."""
        try:
            await jobs.record_run(self.db, name, seconds, failed=failed)
        except Exception:  # a busy or unreachable database: the next run counts again
            log.debug("job %s: run not counted", name, exc_info=True)

    def start(self) -> None:
        """Call inside the running event loop."""
        self.scheduler.start()

    def get_jobs(self) -> list[Any]:
        return list(self.scheduler.get_jobs())

    async def stop(self) -> None:
        self.stopping.set()  # no new claims
        if self.scheduler.running:
            # No new runs. Not shutdown() yet: APScheduler's AsyncIOExecutor cancels the running
            # coroutine jobs on shutdown, which would cut a push batch between its sends and
            # their recording (sent again after the lease: a duplicate on the phone).
            self.scheduler.pause()
        if self._running:  # each batch is bounded by the push timeout
            await asyncio.wait(set(self._running), timeout=self.settings.push_timeout_seconds + 5)
        left = set(self._running)
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)  # cancels what is still running
        for task in left:
            task.cancel()
        if left:
            log.warning("%d job(s) cancelled at shutdown; their leases will expire", len(left))
            await asyncio.wait(left, timeout=5)


def build_scheduler(db: Database, settings: Settings, vapid: VapidKeys) -> JobScheduler:
    """Every job on an AsyncIOScheduler; ``start()`` it inside the running event loop."""
    wire()  # jobs change work orders and evidence: their listeners (server/wiring.py)
    return JobScheduler(db, settings, vapid)


async def run_scheduler(settings: Settings, stop: asyncio.Event | None = None) -> None:
    """Run the jobs until SIGTERM/SIGINT (or `stop` is set): the ``tournee scheduler`` process."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    db = Database(settings)
    vapid = load_vapid_keys(settings)
    scheduler = build_scheduler(db, settings, vapid)
    scheduler.start()
    names = ", ".join(job.id for job in scheduler.get_jobs())
    log.info("scheduler started (%s)", names)
    print(f"scheduler started: {names}", flush=True)
    try:
        await stop.wait()
    finally:
        await scheduler.stop()  # running jobs finish their current batch
        await db.dispose()
        print("scheduler stopped", flush=True)
