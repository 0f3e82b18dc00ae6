"""Photo jobs: public derivatives, missing-evidence flags, abandoned uploads.

Each function opens its own short transactions and is safe to run from any number of processes
at once: rows are claimed with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL (SQLite serialises
writers with ``BEGIN IMMEDIATE``), and a claimed derivatives job is leased by pushing its
``run_after`` forward, so a runner that dies mid-job only delays it by the lease.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server import events
from server.db import Database
from server.dbtypes import utcnow
from server.photos import imaging
from server.photos.models import Photo, PhotoJob, PhotoUpload, WorkOrderEvidence
from server.photos.service import _missing, local_path, run_imaging
from server.photos.store import DISPLAY, THUMB, PhotoStore, derived_key, upload_key
from server.settings import Settings

log = logging.getLogger("tournee.photos.jobs")

LEASE = timedelta(minutes=5)
MAX_ATTEMPTS = 5
DISPLAY_PX = 1600
THUMB_PX = 320


def _skip_locked(db: Database, query: Any) -> Any:
    return query.with_for_update(skip_locked=True) if db.settings.is_postgres else query


async def process_pending_photo_jobs(db: Database, store: PhotoStore, limit: int = 10) -> int:
    """Make the public copies (display, thumbnail) of up to ``limit`` photos; returns how many
    were made. Failures are retried with back-off, then left ``failed`` with their error."""
    return await _run_jobs(db, store, limit=limit)


async def make_derivatives_now(db: Database, store: PhotoStore, sha256: str) -> int:
    """Make the public copies of one photo now, through its durable ``photo_job`` claim: the
    row is leased exactly as the scheduled job leases it, so two processes never both make it
    and a process that dies midway leaves it to the job after the lease. Returns 1 if made."""
    return await _run_jobs(db, store, limit=1, sha256=sha256)


async def _run_jobs(
    db: Database, store: PhotoStore, *, limit: int, sha256: str | None = None
) -> int:
    now = utcnow()
    async with db.transaction() as tx:
        query = select(PhotoJob).where(
            PhotoJob.status == "pending",  # type: ignore[arg-type]
            PhotoJob.run_after <= now,  # type: ignore[arg-type]
        )
        if sha256 is not None:
            query = query.where(PhotoJob.sha256 == sha256)  # type: ignore[arg-type]
        query = query.order_by(PhotoJob.id).limit(limit)  # type: ignore[arg-type]
        jobs = list((await tx.execute(_skip_locked(db, query))).scalars())
        claimed = []
        for job in jobs:
            job.attempts += 1
            job.run_after = now + LEASE
            tx.add(job)
            claimed.append((job.id, job.sha256, job.attempts))
    made = 0
    for job_id, job_sha256, attempts in claimed:
        try:
            await _make_derivatives(store, job_sha256, db.settings)
        except imaging.ImageRejected as exc:  # validated on upload: only a changed decoder
            await _finish(db, job_id, job_sha256, error=str(exc), retry=False, attempts=attempts)
        except Exception as exc:
            log.exception("derivatives of photo %s failed (attempt %d)", job_sha256, attempts)
            await _finish(db, job_id, job_sha256, error=repr(exc), retry=True, attempts=attempts)
        else:
            await _finish(db, job_id, job_sha256, error=None, retry=False, attempts=attempts)
            made += 1
    return made


class DerivativesNow:
    """Public copies made as soon as an upload completes, in this process (issue 17).

    At most ``workers`` photos at a time (their Pillow work also goes through the bounded
    imaging pool); more wait their turn, up to ``2 * workers + 16`` queued, beyond which the
    scheduled job takes them. Durability is the ``photo_job`` row written with the photo: this
    is only a fast path, and anything it does not finish (a crash, a shutdown, an error) the
    job does on its next run after the lease. ``workers = 0`` turns it off.
    """

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._slots: asyncio.Semaphore | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    def start(self, db: Database, store: PhotoStore, sha256: str) -> bool:
        """Schedule the public copies of ``sha256``; False when off or too many are queued."""
        if self.workers <= 0 or len(self._tasks) >= 2 * self.workers + 16:
            return False
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.workers)
        task = asyncio.get_running_loop().create_task(self._run(db, store, sha256))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return True

    async def _run(self, db: Database, store: PhotoStore, sha256: str) -> None:
        assert self._slots is not None
        async with self._slots:
            try:
                await make_derivatives_now(db, store, sha256)
            except Exception:  # the job retries after the lease
                log.exception("public copies of photo %s: left to the job", sha256)

    async def drain(self, timeout: float) -> None:
        """Wait (bounded) for the copies in progress; cancel the rest (the job redoes them)."""
        if not self._tasks:
            return
        _, pending = await asyncio.wait(set(self._tasks), timeout=timeout)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=5)


async def _make_derivatives(store: PhotoStore, sha256: str, settings: Settings) -> None:
    path, temporary = await local_path(store, sha256)
    try:
        display, thumb = await run_imaging(
            imaging.make_derivatives,
            path,
            display_px=DISPLAY_PX,
            thumb_px=THUMB_PX,
            max_pixels=settings.photo_max_pixels,
        )
    finally:
        if temporary:
            path.unlink(missing_ok=True)
    await store.put_bytes(derived_key(sha256, THUMB), thumb)
    await store.put_bytes(derived_key(sha256, DISPLAY), display)


async def _finish(
    db: Database, job_id: Any, sha256: str, *, error: str | None, retry: bool, attempts: int
) -> None:
    now = utcnow()
    async with db.transaction() as tx:
        job = await tx.get(PhotoJob, job_id)
        if job is None:
            return
        if error is None:
            job.status = "done"
            job.finished_at = now
            job.last_error = None
            photo = await tx.get(Photo, sha256)
            if photo is not None:
                photo.derivatives_at = now
                tx.add(photo)
        elif retry and attempts < MAX_ATTEMPTS:
            job.run_after = now + timedelta(minutes=2**attempts)
            job.last_error = error[:500]
        else:
            job.status = "failed"
            job.finished_at = now
            job.last_error = error[:500]
        tx.add(job)


async def check_missing_photos(db: Database, settings: Settings) -> int:
    """Flag completed work orders still missing required photo evidence after the delay
    (TOURNEE_PHOTO_MISSING_DELAY_MIN). Returns how many were flagged by this run."""
    now = utcnow()
    flagged = 0
    async with db.transaction() as tx:
        query = select(WorkOrderEvidence).where(
            WorkOrderEvidence.status == "pending",  # type: ignore[arg-type]
            WorkOrderEvidence.due_at <= now,  # type: ignore[arg-type]
        )
        for evidence in list((await tx.execute(_skip_locked(db, query))).scalars()):
            flagged += await _flag_if_missing(tx, evidence, now)
    return flagged


async def _flag_if_missing(tx: AsyncSession, evidence: WorkOrderEvidence, now: Any) -> int:
    missing = await _missing(tx, evidence.work_order_id, list(evidence.required))
    evidence.missing = missing
    evidence.updated_at = now
    if missing:
        evidence.status = "flagged"
        evidence.flagged_at = now
        events.desk_item_changed(tx, "evidence_flagged", evidence.work_order_id)
    else:
        evidence.status = "complete"
        evidence.resolved_at = now
    tx.add(evidence)
    await tx.flush()
    return 1 if missing else 0


async def cleanup_abandoned_uploads(db: Database, store: PhotoStore, older_than: timedelta) -> int:
    """Delete uploads untouched for ``older_than`` and their partial bytes; returns the count."""
    cutoff = utcnow() - older_than
    async with db.transaction() as tx:
        query = select(PhotoUpload).where(PhotoUpload.updated_at < cutoff)  # type: ignore[arg-type]
        uploads = list((await tx.execute(_skip_locked(db, query))).scalars())
        for upload in uploads:
            await tx.delete(upload)
    for upload in uploads:
        await store.delete(upload_key(upload.id))
    return len(uploads)
