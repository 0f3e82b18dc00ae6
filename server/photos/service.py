"""Photo evidence: uploads (content-addressed, resumable), validation, evidence checks.

The flow of one photo:

1. A crew device creates a ``WorkOrderPhoto`` (UUID → sha256) through a sync mutation; the sync
   engine calls ``events.photo_attached`` → :func:`on_photo_attached` (distance, flags).
2. Independently, before or after, the bytes arrive: ``POST /api/v1/photos/uploads`` declares
   (sha256, length), ``PATCH`` appends chunks at the offset the server holds (tus model). When
   the offset reaches the length the bytes are hashed, decoded (:func:`validate_file`), stored as
   the original and recorded as a :class:`Photo`; a :class:`PhotoJob` asks for the public
   derivatives and :func:`on_photo_stored` re-evaluates every attachment naming this hash.
3. ``events.work_order_changed`` → :func:`on_work_order_changed`: on completion, the evidence the
   service type requires is checked (:class:`WorkOrderEvidence`), the photos' time flags are
   recomputed; the ``check_missing_photos`` job flags what is still missing after a delay.

Upload chunks are spooled to a temporary file before any database work, so no transaction (and
on SQLite no write lock) is held while a phone trickles bytes over a weak link; the offset is
then checked and moved under a row lock in a short transaction (docs/adr/0030).

The modules: ``files`` (bytes: hashing, decoding, the imaging pool), ``uploads`` (upload
sessions, recording a photo), ``evidence`` (flags, required evidence, event hooks), ``jobs``
(derivatives, retention); this one reads photos and owns their public copies.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from server.audit import record
from server.dbtypes import utcnow
from server.errors import Conflict, DomainError, NotFound
from server.photos.files import hash_file
from server.photos.models import (
    Photo,
    PhotoJob,
    PhotoPublic,
    PhotoUrls,
    PhotoVerification,
    RequestPhoto,
    WorkOrderPhoto,
)
from server.photos.s3store import S3PhotoStore
from server.photos.store import (
    DISPLAY,
    THUMB,
    LocalPhotoStore,
    PhotoNotFoundError,
    PhotoStore,
    derived_key,
)
from server.settings import Settings

log = logging.getLogger("tournee.photos")


def make_photo_store(settings: Settings) -> PhotoStore:
    """The configured store: files under TOURNEE_PHOTO_DIR, or an S3-compatible bucket
    (TOURNEE_PHOTO_STORE=s3, docs/adr/0034)."""
    if settings.photo_store == "s3":
        if not settings.s3_bucket:
            raise ValueError("TOURNEE_PHOTO_STORE=s3 needs TOURNEE_S3_BUCKET")
        return S3PhotoStore(
            bucket=settings.s3_bucket,
            endpoint=settings.s3_endpoint or None,
            region=settings.s3_region,
            access_key_id=settings.s3_access_key_id or None,
            secret_access_key=settings.s3_secret_access_key or None,
            path_style=settings.s3_path_style,
            prefix=settings.s3_prefix,
        )
    if settings.photo_store != "file":
        raise ValueError(f"TOURNEE_PHOTO_STORE must be file or s3, not {settings.photo_store!r}")
    return LocalPhotoStore(settings.photo_dir)


def public_photo_urls(settings: Settings, sha256: str) -> PhotoUrls:
    """Public (metadata-free) copies of a photo: for Open311 ``media_url`` and citizen pages.

    They answer only once the photo is attached to a work order and its derivatives are made.
    """
    base = f"{settings.public_url.rstrip('/')}/media/photos/{sha256}"
    return PhotoUrls(display=f"{base}/display.jpg", thumb=f"{base}/thumb.jpg")


def original_url(settings: Settings, sha256: str) -> str:
    return f"{settings.public_url.rstrip('/')}/api/v1/photos/{sha256}/original"


async def public_photo_urls_for_work_order(
    tx: AsyncSession, settings: Settings, work_order_id: int
) -> list[PhotoUrls]:
    """Public copies of a work order's photos that are ready to serve, oldest first."""
    rows = await tx.execute(
        select(col(WorkOrderPhoto.sha256))
        .join(Photo, col(Photo.sha256) == col(WorkOrderPhoto.sha256))
        .where(
            col(WorkOrderPhoto.work_order_id) == work_order_id,
            col(Photo.derivatives_at).is_not(None),
        )
        .order_by(col(WorkOrderPhoto.created_at), col(WorkOrderPhoto.id))
    )
    return [public_photo_urls(settings, sha) for sha in dict.fromkeys(rows.scalars())]


async def public_completion_photo(
    tx: AsyncSession, settings: Settings, work_order_id: int
) -> PhotoUrls | None:
    """The public copies of a work order's first "after" photo whose derivatives are made, or
    None: the completion photo on the citizen's tracking page (never the original)."""
    sha = (
        await tx.execute(
            select(col(WorkOrderPhoto.sha256))
            .join(Photo, col(Photo.sha256) == col(WorkOrderPhoto.sha256))
            .where(
                col(WorkOrderPhoto.work_order_id) == work_order_id,
                col(WorkOrderPhoto.kind) == "after",
                col(Photo.derivatives_at).is_not(None),
            )
            .order_by(col(WorkOrderPhoto.created_at), col(WorkOrderPhoto.id))
            .limit(1)
        )
    ).scalar_one_or_none()
    return public_photo_urls(settings, sha) if sha else None


async def public_photo_url(tx: AsyncSession, work_order_id: int, settings: Settings) -> str | None:
    """The display URL of a work order's latest ready "after" photo (else any ready photo), or
    None: the image of the citizen's "completed" notification (server/notify/jobs.py)."""
    rows = await tx.execute(
        select(col(WorkOrderPhoto.sha256), col(WorkOrderPhoto.kind))
        .join(Photo, col(Photo.sha256) == col(WorkOrderPhoto.sha256))
        .where(
            col(WorkOrderPhoto.work_order_id) == work_order_id,
            col(Photo.derivatives_at).is_not(None),
        )
        .order_by(col(WorkOrderPhoto.created_at).desc(), col(WorkOrderPhoto.id))
    )
    ready = rows.all()
    chosen = next((sha for sha, kind in ready if kind == "after"), None) or next(
        (sha for sha, _ in ready), None
    )
    return public_photo_urls(settings, chosen).display if chosen else None


async def public_copies_coming(tx: AsyncSession, work_order_id: int) -> bool:
    """Whether a photo attached to this work order has no public copy yet but may soon: its
    bytes are still to arrive, or its copies are being made (a ``photo_job`` not ``failed``).
    A completion push waits a little for it (TOURNEE_PUSH_PHOTO_WAIT_SECONDS)."""
    shas = set(
        (
            await tx.execute(
                select(col(WorkOrderPhoto.sha256)).where(
                    col(WorkOrderPhoto.work_order_id) == work_order_id
                )
            )
        ).scalars()
    )
    if not shas:
        return False
    ready = (
        await tx.execute(
            select(col(Photo.sha256), col(Photo.derivatives_at)).where(col(Photo.sha256).in_(shas))
        )
    ).all()
    held = {sha: at for sha, at in ready}
    if any(sha not in held for sha in shas):
        return True  # the bytes are still on their way
    making = [sha for sha, at in held.items() if at is None]
    if not making:
        return False
    found = await tx.execute(
        select(col(PhotoJob.id))
        .where(col(PhotoJob.sha256).in_(making), col(PhotoJob.status) == "pending")
        .limit(1)
    )
    return found.first() is not None


async def get_photo(tx: AsyncSession, sha256: str) -> Photo | None:
    return await tx.get(Photo, sha256)


def to_public(photo: Photo, settings: Settings) -> PhotoPublic:
    return PhotoPublic(
        **photo.model_dump(exclude={"uploaded_by", "derivatives_at", "withdrawn_by"}),
        derivatives_ready=photo.derivatives_at is not None,
        urls=public_photo_urls(settings, photo.sha256),
    )


async def load_photo(tx: AsyncSession, sha256: str) -> Photo:
    photo = await get_photo(tx, sha256)
    if photo is None:
        raise NotFound("photo", sha256)
    return photo


async def read_original(
    tx: AsyncSession, store: PhotoStore, sha256: str
) -> tuple[Photo, bytes, str]:
    """(photo, bytes, actual sha256 of the bytes): re-hashed on every read (tamper evidence)."""
    photo = await load_photo(tx, sha256)
    if photo.purged_at is not None:
        raise DomainError("photo_purged", 410)
    try:
        opened = await store.open(sha256)
    except PhotoNotFoundError:
        log.error("photo %s is recorded but its original is missing from the store", sha256)
        raise Conflict("photo_integrity_failed") from None
    data = opened if isinstance(opened, bytes) else await asyncio.to_thread(opened.read_bytes)
    actual = await asyncio.to_thread(lambda: hashlib.sha256(data).hexdigest())
    return photo, data, actual


async def verify_photo(tx: AsyncSession, store: PhotoStore, sha256: str) -> PhotoVerification:
    await load_photo(tx, sha256)
    try:
        opened = await store.open(sha256)
    except PhotoNotFoundError:
        return PhotoVerification(sha256=sha256, ok=False, actual_sha256=None, size_bytes=None)
    if isinstance(opened, bytes):
        actual, size = hashlib.sha256(opened).hexdigest(), len(opened)
    else:
        actual, size = await hash_file(opened)
    if actual != sha256:
        log.error("photo %s failed verification: its bytes hash to %s", sha256, actual)
    return PhotoVerification(
        sha256=sha256, ok=actual == sha256, actual_sha256=actual, size_bytes=size
    )


async def is_public(tx: AsyncSession, sha256: str) -> bool:
    """Public copies are served only for photos attached to a work order, or sent by a citizen
    with an Open311 request (its ``media_url``); never for a hash nobody published, nor for a
    photo whose copies a dispatcher withdrew or whose retention ran out."""
    photo = await get_photo(tx, sha256)
    if photo is None or photo.withdrawn_at is not None or photo.purged_at is not None:
        return False
    found = await tx.execute(
        select(col(WorkOrderPhoto.id)).where(col(WorkOrderPhoto.sha256) == sha256).limit(1)
    )
    if found.first() is not None:
        return True
    found = await tx.execute(
        select(col(RequestPhoto.id)).where(col(RequestPhoto.sha256) == sha256).limit(1)
    )
    return found.first() is not None


async def withdraw_public_copies(
    tx: AsyncSession, sha256: str, reason: str, actor: Any
) -> tuple[Photo, list[str]]:
    """A dispatcher withdraws a photo's public copies (a face, a licence plate in shot).

    In ``tx``: the photo is marked withdrawn and loses ``derivatives_at`` — every public page
    (tracking, Open311 ``media_url``, the completion push) stops offering it at commit — its
    pending copy job is cancelled, and an audit row is written on every work order and request
    it belongs to. The original stays (evidence for dispatchers). Returns (photo, the store keys
    to delete after commit); the purge job deletes them again on its next run (idempotent), so
    the bytes are gone within one job interval even if this process dies first.
    """
    photo = (
        await tx.execute(select(Photo).where(col(Photo.sha256) == sha256).with_for_update())
    ).scalar_one_or_none()
    if photo is None:
        raise NotFound("photo", sha256)
    keys = [derived_key(sha256, DISPLAY), derived_key(sha256, THUMB)]
    if photo.withdrawn_at is not None:
        return photo, keys
    now = utcnow()
    photo.withdrawn_at = now
    photo.withdrawn_by = getattr(actor, "user_id", None)
    photo.withdrawn_reason = reason
    photo.derivatives_at = None
    tx.add(photo)
    await tx.execute(
        update(PhotoJob)
        .where(col(PhotoJob.sha256) == sha256, col(PhotoJob.status) == "pending")
        .values(status="withdrawn", finished_at=now)
    )
    changes = {"photo_withdrawn": [None, sha256]}
    orders = select(col(WorkOrderPhoto.work_order_id)).where(col(WorkOrderPhoto.sha256) == sha256)
    requests = select(col(RequestPhoto.service_request_id)).where(
        col(RequestPhoto.sha256) == sha256
    )
    for entity_type, query in (("work_order", orders), ("service_request", requests)):
        for entity_id in sorted(set((await tx.execute(query.distinct())).scalars())):
            await record(
                tx,
                entity_type=entity_type,
                entity_id=entity_id,
                action="photo_withdrawn",
                actor=actor,
                changes=changes,
                reason=reason,
            )
    await tx.flush()
    return photo, keys
