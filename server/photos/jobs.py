"""Photo jobs: public derivatives, missing-evidence flags, abandoned uploads.

Each function opens its own short transactions and is safe to run from any number of processes
at once: rows are claimed with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL (SQLite serialises
writers with ``BEGIN IMMEDIATE``), and a claimed derivatives job is leased by pushing its
``run_after`` forward, so a runner that dies mid-job only delays it by the lease.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, exists, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from server import events
from server.db import Database
from server.dbtypes import utcnow
from server.photos import imaging
from server.photos.evidence import missing_kinds
from server.photos.files import local_path, run_imaging
from server.photos.models import (
    Photo,
    PhotoJob,
    PhotoUpload,
    RequestPhoto,
    WorkOrderEvidence,
    WorkOrderPhoto,
)
from server.photos.store import (
    DISPLAY,
    THUMB,
    PhotoStore,
    derived_key,
    original_key,
    upload_key,
)
from server.requests.models import ServiceRequest
from server.settings import Settings
from server.workorders.models import WorkOrder

log = logging.getLogger("tournee.photos.jobs")

LEASE = timedelta(minutes=5)
ABANDONED_UPLOAD_AGE = timedelta(days=2)
ORPHAN_AGE = timedelta(days=7)
WITHDRAWN_SWEEP = timedelta(days=1)
PURGE_BATCH = 500
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
            col(PhotoJob.status) == "pending",
            col(PhotoJob.run_after) <= now,
        )
        if sha256 is not None:
            query = query.where(col(PhotoJob.sha256) == sha256)
        query = query.order_by(col(PhotoJob.id)).limit(limit)
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
            if await _finish(db, job_id, job_sha256, error=None, retry=False, attempts=attempts):
                for name in (DISPLAY, THUMB):
                    await store.delete(derived_key(job_sha256, name))
            else:
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
) -> bool:
    """Record a job's outcome; True when the photo was withdrawn meanwhile (drop its copies)."""
    now = utcnow()
    withdrawn = False
    async with db.transaction() as tx:
        job = await tx.get(PhotoJob, job_id)
        if job is None:
            return False
        if error is None:
            job.status = "done"
            job.finished_at = now
            job.last_error = None
            photo = await tx.get(Photo, sha256)
            if photo is not None and (photo.withdrawn_at or photo.purged_at):
                job.status = "withdrawn"  # withdrawn (or purged) while being made: not public
                withdrawn = True
            elif photo is not None:
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
    return withdrawn


async def check_missing_photos(db: Database, settings: Settings) -> int:
    """Flag completed work orders still missing required photo evidence after the delay
    (TOURNEE_PHOTO_MISSING_DELAY_MIN). Returns how many were flagged by this run."""
    now = utcnow()
    flagged = 0
    async with db.transaction() as tx:
        query = select(WorkOrderEvidence).where(
            col(WorkOrderEvidence.status) == "pending",
            col(WorkOrderEvidence.due_at) <= now,
        )
        for evidence in list((await tx.execute(_skip_locked(db, query))).scalars()):
            flagged += await _flag_if_missing(tx, evidence, now)
    return flagged


async def _flag_if_missing(tx: AsyncSession, evidence: WorkOrderEvidence, now: Any) -> int:
    missing = await missing_kinds(tx, evidence.work_order_id, list(evidence.required))
    evidence.missing = missing
    evidence.updated_at = now
    if missing:
        evidence.status = "flagged"
        evidence.flagged_at = now
        await events.emit(events.DeskItemChanged(tx, "evidence_flagged", evidence.work_order_id))
    else:
        evidence.status = "complete"
        evidence.resolved_at = now
    tx.add(evidence)
    await tx.flush()
    return 1 if missing else 0


async def cleanup_abandoned_uploads(
    db: Database, store: PhotoStore, older_than: timedelta, *, now: datetime | None = None
) -> int:
    """Delete uploads untouched for ``older_than`` and their partial bytes; returns the count."""
    cutoff = (now or utcnow()) - older_than
    async with db.transaction() as tx:
        query = select(PhotoUpload).where(col(PhotoUpload.updated_at) < cutoff)
        uploads = list((await tx.execute(_skip_locked(db, query))).scalars())
        for upload in uploads:
            await tx.delete(upload)
    for upload in uploads:
        await store.delete(upload_key(upload.id))
    return len(uploads)


# --------------------------------------------------------------------------- life cycle


def _all_keys(sha256: str) -> list[str]:
    return [original_key(sha256), derived_key(sha256, DISPLAY), derived_key(sha256, THUMB)]


@dataclass
class PurgeReport:
    uploads: int = 0  # abandoned uploads (untouched for 2 days)
    orphans: int = 0  # photos nothing refers to, 7 days after their upload: row and bytes
    expired: int = 0  # originals of orders closed longer than the retention: bytes
    withdrawn: int = 0  # withdrawn photos whose public copies were deleted (again)


def _referenced_by_work_order() -> Any:
    return exists().where(col(WorkOrderPhoto.sha256) == col(Photo.sha256))


def _referenced_by_request() -> Any:
    return exists().where(col(RequestPhoto.sha256) == col(Photo.sha256))


async def purge_photos(
    db: Database,
    store: PhotoStore,
    settings: Settings,
    *,
    now: datetime | None = None,
    batch: int = PURGE_BATCH,
    max_batches: int = 20,
) -> PurgeReport:
    """The life cycle of photo files (docs/adr/0033); safe on any number of processes.

    * uploads untouched for 2 days: row and partial bytes;
    * orphans — a photo no work order and no Open311 request refers to, 7 days after upload:
      marked ``purged_at`` (claimed, ``SKIP LOCKED``), bytes deleted, then the row deleted in a
      second transaction *only if still unreferenced* (a reference that arrived meanwhile keeps
      the tombstone); a process dying in between leaves a tombstone the next run finishes;
    * originals whose every reference is an order (and request) closed more than
      ``TOURNEE_PHOTO_RETENTION_DAYS`` ago: marked ``purged_at``, bytes deleted, row kept as the
      record of the evidence; an open or recently closed reference keeps them;
    * public copies of photos withdrawn in the last day: deleted again (idempotent), so a
      withdrawal is complete within one job interval even if the withdrawing process died.
    """
    now = now or utcnow()
    report = PurgeReport()
    report.uploads = await cleanup_abandoned_uploads(db, store, ABANDONED_UPLOAD_AGE, now=now)
    async with db.transaction() as tx:
        withdrawn = list(
            (
                await tx.execute(
                    select(col(Photo.sha256)).where(
                        col(Photo.withdrawn_at) >= now - WITHDRAWN_SWEEP
                    )
                )
            ).scalars()
        )
    for sha256 in withdrawn:
        for name in (DISPLAY, THUMB):
            await store.delete(derived_key(sha256, name))
    report.withdrawn = len(withdrawn)
    for _ in range(max_batches):
        done = await _purge_orphans(db, store, now=now, batch=batch)
        report.orphans += done
        if done < batch:
            break
    cutoff = now - timedelta(days=settings.photo_retention_days)
    for _ in range(max_batches):
        done = await _purge_expired(db, store, cutoff=cutoff, now=now, batch=batch)
        report.expired += done
        if done < batch:
            break
    return report


async def _purge_orphans(db: Database, store: PhotoStore, *, now: datetime, batch: int) -> int:
    unreferenced = (~_referenced_by_work_order(), ~_referenced_by_request())
    async with db.transaction() as tx:
        query = (
            select(Photo)
            .where(
                col(Photo.uploaded_at) < now - ORPHAN_AGE,
                # a tombstone left by a process that died mid-purge is taken after the lease
                col(Photo.purged_at).is_(None) | (col(Photo.purged_at) < now - LEASE),
                *unreferenced,
            )
            .order_by(col(Photo.uploaded_at))
            .limit(batch)
        )
        photos = list((await tx.execute(_skip_locked(db, query))).scalars())
        shas = [p.sha256 for p in photos]
        if shas:
            await tx.execute(
                update(Photo)
                .where(col(Photo.sha256).in_(shas), col(Photo.purged_at).is_(None))
                .values(purged_at=now, derivatives_at=None)
            )
    for sha256 in shas:
        for key in _all_keys(sha256):
            await store.delete(key)
    if not shas:
        return 0
    async with db.transaction() as tx:
        gone = list(
            (
                await tx.execute(
                    select(col(Photo.sha256)).where(col(Photo.sha256).in_(shas), *unreferenced)
                )
            ).scalars()
        )
        if gone:
            await tx.execute(delete(PhotoJob).where(col(PhotoJob.sha256).in_(gone)))
            await tx.execute(delete(Photo).where(col(Photo.sha256).in_(gone)))
    return len(shas)


async def _purge_expired(
    db: Database, store: PhotoStore, *, cutoff: datetime, now: datetime, batch: int
) -> int:
    live_order = (
        exists()
        .where(col(WorkOrderPhoto.sha256) == col(Photo.sha256))
        .where(col(WorkOrder.id) == col(WorkOrderPhoto.work_order_id))
        .where(col(WorkOrder.closed_at).is_(None) | (col(WorkOrder.closed_at) >= cutoff))
    )
    live_request = (
        exists()
        .where(col(RequestPhoto.sha256) == col(Photo.sha256))
        .where(col(ServiceRequest.id) == col(RequestPhoto.service_request_id))
        .where(col(ServiceRequest.closed_at).is_(None) | (col(ServiceRequest.closed_at) >= cutoff))
    )
    async with db.transaction() as tx:
        query = (
            select(Photo)
            .where(
                col(Photo.purged_at).is_(None),
                col(Photo.uploaded_at) < cutoff,
                _referenced_by_work_order() | _referenced_by_request(),
                ~live_order,
                ~live_request,
            )
            .order_by(col(Photo.uploaded_at))
            .limit(batch)
        )
        photos = list((await tx.execute(_skip_locked(db, query))).scalars())
        for photo in photos:
            photo.purged_at = now
            photo.derivatives_at = None
            tx.add(photo)
    for photo in photos:
        for key in _all_keys(photo.sha256):
            await store.delete(key)
    return len(photos)
