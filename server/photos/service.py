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
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import os
import tempfile
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from server.accounts.auth import Actor
from server.db import Database
from server.dbtypes import utcnow
from server.errors import Conflict, DomainError, NotFound
from server.geo import haversine_m
from server.i18n import translate
from server.photos import imaging
from server.photos.models import (
    EvidencePhoto,
    Photo,
    PhotoJob,
    PhotoPublic,
    PhotoUpload,
    PhotoUrls,
    PhotoVerification,
    RequestPhoto,
    UploadStatus,
    WorkOrderEvidence,
    WorkOrderEvidencePublic,
    WorkOrderPhoto,
)
from server.photos.store import (
    DISPLAY,
    THUMB,
    LocalPhotoStore,
    PhotoNotFoundError,
    PhotoStore,
    derived_key,
    upload_key,
)
from server.requests.models import ServiceType
from server.settings import Settings, get_settings
from server.workorders.models import WorkOrder

log = logging.getLogger("tournee.photos")

T = TypeVar("T")

# Pillow work runs here: a bounded pool per process, so a burst of uploads cannot decode twenty
# 64 MP images at once (each can take ~200 MB). A pool is a process resource, not shared data.
IMAGING_WORKERS = max(1, min(2, os.cpu_count() or 1))
_IMAGING_POOL = ThreadPoolExecutor(max_workers=IMAGING_WORKERS, thread_name_prefix="photo")

_HASH_CHUNK = 1 << 20
SPOOL_IN_MEMORY = 1 << 20  # chunk bodies above 1 MiB spill to a temporary file


# --------------------------------------------------------------------------- errors


class PhotoRejected(DomainError):
    """The bytes are not an acceptable image (415 for the type, 422 otherwise)."""

    def __init__(self, exc: imaging.ImageRejected) -> None:
        super().__init__(f"photo_{exc.code}", exc.status)


class PhotoTooLarge(DomainError):
    def __init__(self, settings: Settings) -> None:
        super().__init__(
            "photo_too_large",
            413,
            max_bytes=settings.photo_max_bytes,
            max_mb=round(settings.photo_max_bytes / 1_000_000, 1),
        )


class OffsetMismatch(Conflict):
    def __init__(self, offset: int) -> None:
        super().__init__("upload_offset_mismatch", offset=offset)
        self.offset = offset


# --------------------------------------------------------------------------- helpers


def make_photo_store(settings: Settings) -> PhotoStore:
    """The configured store: files under TOURNEE_PHOTO_DIR, or an S3-compatible bucket
    (TOURNEE_PHOTO_STORE=s3, docs/adr/0034)."""
    if settings.photo_store == "s3":
        from server.photos.s3store import S3PhotoStore

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


async def run_imaging(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a Pillow function in the bounded imaging pool."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_IMAGING_POOL, functools.partial(fn, *args, **kwargs))


def _hash_file(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with Path(path).open("rb") as fh:
        while chunk := fh.read(_HASH_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


async def hash_file(path: Path) -> tuple[str, int]:
    return await asyncio.to_thread(_hash_file, path)


async def local_path(store: PhotoStore, sha256: str) -> tuple[Path, bool]:
    """(path of the original, is_temporary): stores that return bytes are spilled to disk."""
    opened = await store.open(sha256)
    if isinstance(opened, Path):
        return opened, False
    fd, name = tempfile.mkstemp(prefix="tournee-photo-")
    with os.fdopen(fd, "wb") as fh:
        fh.write(opened)
    return Path(name), True


async def validate_file(path: Path, settings: Settings) -> imaging.ImageInfo:
    """Decode and check the file completely, in the imaging pool; PhotoRejected if unfit."""
    try:
        return await run_imaging(imaging.inspect, path, max_pixels=settings.photo_max_pixels)
    except imaging.ImageRejected as exc:
        raise PhotoRejected(exc) from exc


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
        select(WorkOrderPhoto.sha256)
        .join(Photo, Photo.sha256 == WorkOrderPhoto.sha256)  # type: ignore[arg-type]
        .where(
            WorkOrderPhoto.work_order_id == work_order_id,
            Photo.derivatives_at.is_not(None),  # type: ignore[union-attr]
        )
        .order_by(WorkOrderPhoto.created_at, WorkOrderPhoto.id)  # type: ignore[arg-type]
    )
    return [public_photo_urls(settings, sha) for sha in dict.fromkeys(rows.scalars())]


async def public_completion_photo(
    tx: AsyncSession, settings: Settings, work_order_id: int
) -> PhotoUrls | None:
    """The public copies of a work order's first "after" photo whose derivatives are made, or
    None: the completion photo on the citizen's tracking page (never the original)."""
    sha = (
        await tx.execute(
            select(WorkOrderPhoto.sha256)
            .join(Photo, Photo.sha256 == WorkOrderPhoto.sha256)  # type: ignore[arg-type]
            .where(
                WorkOrderPhoto.work_order_id == work_order_id,
                WorkOrderPhoto.kind == "after",
                Photo.derivatives_at.is_not(None),  # type: ignore[union-attr]
            )
            .order_by(WorkOrderPhoto.created_at, WorkOrderPhoto.id)  # type: ignore[arg-type]
            .limit(1)
        )
    ).scalar_one_or_none()
    return public_photo_urls(settings, sha) if sha else None


async def public_photo_url(tx: AsyncSession, work_order_id: int, settings: Settings) -> str | None:
    """The display URL of a work order's latest ready "after" photo (else any ready photo), or
    None: the image of the citizen's "completed" notification (server/notify/jobs.py)."""
    rows = await tx.execute(
        select(WorkOrderPhoto.sha256, WorkOrderPhoto.kind)
        .join(Photo, Photo.sha256 == WorkOrderPhoto.sha256)  # type: ignore[arg-type]
        .where(
            WorkOrderPhoto.work_order_id == work_order_id,
            Photo.derivatives_at.is_not(None),  # type: ignore[union-attr]
        )
        .order_by(WorkOrderPhoto.created_at.desc(), WorkOrderPhoto.id)  # type: ignore[attr-defined]
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
                select(WorkOrderPhoto.sha256).where(WorkOrderPhoto.work_order_id == work_order_id)
            )
        ).scalars()
    )
    if not shas:
        return False
    ready = (
        await tx.execute(
            select(Photo.sha256, Photo.derivatives_at).where(Photo.sha256.in_(shas))  # type: ignore[attr-defined]
        )
    ).all()
    held = {sha: at for sha, at in ready}
    if any(sha not in held for sha in shas):
        return True  # the bytes are still on their way
    making = [sha for sha, at in held.items() if at is None]
    if not making:
        return False
    found = await tx.execute(
        select(PhotoJob.id)
        .where(PhotoJob.sha256.in_(making), PhotoJob.status == "pending")  # type: ignore[attr-defined]
        .limit(1)
    )
    return found.first() is not None


def _insert(tx: AsyncSession) -> Any:
    assert tx.bind is not None
    return postgresql.insert if tx.bind.dialect.name == "postgresql" else sqlite.insert


def _naive_exif_time(taken: datetime | None, settings: Settings) -> datetime | None:
    """EXIF times without an offset are the camera's local time: the city's time zone."""
    if taken is None:
        return None
    if taken.tzinfo is None:
        try:
            taken = taken.replace(tzinfo=ZoneInfo(settings.city_timezone))
        except (KeyError, ValueError):  # unknown zone name: treat as UTC rather than fail
            taken = taken.replace(tzinfo=ZoneInfo("UTC"))
    return taken


# --------------------------------------------------------------------------- photos


async def get_photo(tx: AsyncSession, sha256: str) -> Photo | None:
    return await tx.get(Photo, sha256)


async def record_photo(
    tx: AsyncSession,
    sha256: str,
    size: int,
    info: imaging.ImageInfo,
    settings: Settings,
    user_id: int | None,
) -> Photo:
    """Insert the Photo row (idempotent), enqueue its derivatives, re-check its attachments."""
    values = {
        "sha256": sha256,
        "size_bytes": size,
        "mime": info.mime,
        "width": info.width,
        "height": info.height,
        "orientation": info.orientation,
        "exif_lat": info.lat,
        "exif_lon": info.lon,
        "exif_taken_at": _naive_exif_time(info.taken_at, settings),
        "uploaded_at": utcnow(),
        "uploaded_by": user_id,
    }
    insert = _insert(tx)
    result = await tx.execute(
        insert(Photo).values(**values).on_conflict_do_nothing(index_elements=["sha256"])
    )
    if getattr(result, "rowcount", 0) == 1:
        tx.add(PhotoJob(sha256=sha256))
        await tx.flush()
        await on_photo_stored(tx, sha256, settings)
    photo = await tx.get(Photo, sha256, populate_existing=True)
    assert photo is not None
    return photo


async def ingest_photo_bytes(
    tx: AsyncSession, store: PhotoStore, data: bytes, settings: Settings
) -> str:
    """Validate, store and record a whole photo given as bytes (e.g. an Open311 multipart part).

    Returns its sha256. Raises PhotoTooLarge (413) or PhotoRejected (415/422). The derivatives
    are enqueued (a ``photo_job`` row in ``tx``); nothing is committed here.
    """
    if len(data) > settings.photo_max_bytes:
        raise PhotoTooLarge(settings)
    if not data:
        raise PhotoRejected(imaging.ImageRejected("empty"))
    sha256 = hashlib.sha256(data).hexdigest()
    if await get_photo(tx, sha256) is not None:
        return sha256
    fd, name = tempfile.mkstemp(prefix="tournee-ingest-")
    path = Path(name)
    try:
        with os.fdopen(fd, "wb") as fh:
            await asyncio.to_thread(fh.write, data)
        info = await validate_file(path, settings)
        await store.put_file(sha256, path)
    finally:
        path.unlink(missing_ok=True)
    await record_photo(tx, sha256, len(data), info, settings, user_id=None)
    return sha256


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
        select(WorkOrderPhoto.id).where(WorkOrderPhoto.sha256 == sha256).limit(1)
    )
    if found.first() is not None:
        return True
    found = await tx.execute(select(RequestPhoto.id).where(RequestPhoto.sha256 == sha256).limit(1))
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
    from server.audit import record

    photo = (
        await tx.execute(select(Photo).where(Photo.sha256 == sha256).with_for_update())
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
        .where(PhotoJob.sha256 == sha256, PhotoJob.status == "pending")  # type: ignore[arg-type]
        .values(status="withdrawn", finished_at=now)
    )
    changes = {"photo_withdrawn": [None, sha256]}
    orders = select(WorkOrderPhoto.work_order_id).where(WorkOrderPhoto.sha256 == sha256)
    requests = select(RequestPhoto.service_request_id).where(RequestPhoto.sha256 == sha256)
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


# --------------------------------------------------------------------------- uploads


def _status(upload: PhotoUpload) -> UploadStatus:
    return UploadStatus(
        id=upload.id,
        sha256=upload.sha256,
        length=upload.length,
        offset=upload.offset,
        complete=False,
    )


async def create_upload(
    tx: AsyncSession, settings: Settings, sha256: str, length: int, user_id: int | None
) -> tuple[UploadStatus, bool]:
    """(status, created). The server already holding the photo answers complete, no id."""
    if length > settings.photo_max_bytes:
        raise PhotoTooLarge(settings)
    photo = await get_photo(tx, sha256)
    if photo is not None:
        return UploadStatus(
            id=None, sha256=sha256, length=photo.size_bytes, offset=photo.size_bytes, complete=True
        ), False
    existing = await _upload_by_sha(tx, sha256, user_id)
    if existing is None:
        upload = PhotoUpload(id=uuid.uuid4().hex, sha256=sha256, length=length, user_id=user_id)
        try:
            async with tx.begin_nested():
                tx.add(upload)
                await tx.flush()
            return _status(upload), True
        except IntegrityError:  # another device declared the same photo at the same moment
            existing = await _upload_by_sha(tx, sha256, user_id)
            if existing is None:
                raise
    if existing.length != length:
        raise Conflict("upload_length_mismatch", length=existing.length)
    return _status(existing), False


async def _upload_by_sha(tx: AsyncSession, sha256: str, user_id: int | None) -> PhotoUpload | None:
    owner = PhotoUpload.user_id.is_(None) if user_id is None else PhotoUpload.user_id == user_id  # type: ignore[union-attr]
    return (
        await tx.execute(select(PhotoUpload).where(PhotoUpload.sha256 == sha256, owner))
    ).scalar_one_or_none()


async def load_upload(
    tx: AsyncSession, upload_id: str, actor: Actor, *, for_update: bool = False
) -> PhotoUpload:
    """The upload, if ``actor`` may touch it: its uploader or a dispatcher. Anyone else gets the
    same 404 as for an unknown id (an upload id says nothing about whose it is)."""
    query = select(PhotoUpload).where(PhotoUpload.id == upload_id)
    if for_update:
        query = query.with_for_update()
    upload = (await tx.execute(query)).scalar_one_or_none()
    if upload is None or not (actor.is_dispatcher or upload.user_id == actor.user_id):
        raise NotFound("photo_upload", upload_id)
    return upload


async def delete_upload(tx: AsyncSession, store: PhotoStore, upload_id: str, actor: Actor) -> None:
    upload = await load_upload(tx, upload_id, actor, for_update=True)
    await tx.delete(upload)
    await tx.flush()
    await store.delete(upload_key(upload_id))


async def append_chunk(
    db: Database,
    store: PhotoStore,
    settings: Settings,
    upload_id: str,
    offset: int,
    spool: IO[bytes],
    size: int,
    actor: Actor,
) -> UploadStatus:
    """Write a spooled chunk at ``offset`` (which must be the server's), then finish if whole.

    One short transaction moves the offset under a row lock; the bytes are durable in the store
    before it commits. A chunk whose offset was never recorded (a crash in between) is simply
    overwritten by the next one: the store drops everything beyond the offset it is given.
    """
    async with db.transaction() as tx:
        upload = await load_upload(tx, upload_id, actor, for_update=True)
        if offset != upload.offset:
            raise OffsetMismatch(upload.offset)
        if offset + size > upload.length:
            raise DomainError("upload_overflow", 413, length=upload.length)
        if size:
            spool.seek(0)
            written = await store.write_upload(upload_id, offset, spool)
            assert written == size, (written, size)
            upload.offset += size
            upload.updated_at = utcnow()
            tx.add(upload)
        status = _status(upload)
    if status.offset < status.length:
        return status
    return await finish_upload(db, store, settings, upload_id, status.sha256, actor.user_id)


async def finish_upload(
    db: Database,
    store: PhotoStore,
    settings: Settings,
    upload_id: str,
    sha256: str,
    user_id: int | None,
) -> UploadStatus:
    """Hash, decode and store a whole upload. A wrong hash or a bad image ends the upload."""
    try:
        path = await store.open_upload(upload_id)
        actual, size = await hash_file(path)
    except (PhotoNotFoundError, FileNotFoundError):
        # a concurrent finish (a retried last PATCH) got there first
        async with db.transaction() as tx:
            photo = await get_photo(tx, sha256)
        if photo is None:
            raise NotFound("photo_upload", upload_id) from None
        return UploadStatus(
            id=upload_id,
            sha256=sha256,
            length=photo.size_bytes,
            offset=photo.size_bytes,
            complete=True,
        )
    try:
        if actual != sha256:
            raise DomainError("photo_hash_mismatch", 422, sha256=sha256, actual=actual)
        info = await validate_file(path, settings)
        await store.put_file(sha256, path)
    except DomainError:
        await _abandon(db, store, upload_id)
        raise
    async with db.transaction() as tx:
        await record_photo(tx, sha256, size, info, settings, user_id)
        await tx.execute(delete(PhotoUpload).where(PhotoUpload.id == upload_id))  # type: ignore[arg-type]
    await store.delete(upload_key(upload_id))
    return UploadStatus(id=upload_id, sha256=sha256, length=size, offset=size, complete=True)


async def _abandon(db: Database, store: PhotoStore, upload_id: str) -> None:
    async with db.transaction() as tx:
        await tx.execute(delete(PhotoUpload).where(PhotoUpload.id == upload_id))  # type: ignore[arg-type]
    await store.delete(upload_key(upload_id))


# --------------------------------------------------------------------------- evidence

FLAG_FAR = "far_from_site"
FLAG_NO_LOCATION = "no_location"
FLAG_EXIF_FAR = "exif_location_mismatch"
FLAG_OLD = "taken_long_before_completion"
FLAG_EXIF_TIME = "exif_time_mismatch"
FLAG_AWAITING = "awaiting_upload"


def evaluate(
    attachment: WorkOrderPhoto, photo: Photo | None, wo: WorkOrder, settings: Settings
) -> tuple[float | None, list[str]]:
    """(distance from the job site in metres, flags) for one attached photo.

    Position: the device's Geolocation at capture time, else EXIF GPS. Time: the earlier of the
    device's capture time and EXIF DateTimeOriginal. Both sources disagreeing is itself a flag
    (a photo picked from the gallery rather than taken on the spot).
    """
    flags: list[str] = []
    max_distance = settings.evidence_max_distance_m
    max_age = timedelta(hours=settings.evidence_max_age_h)
    device = (
        (attachment.captured_lat, attachment.captured_lon)
        if attachment.captured_lat is not None and attachment.captured_lon is not None
        else None
    )
    exif = (
        (photo.exif_lat, photo.exif_lon)
        if photo is not None and photo.exif_lat is not None and photo.exif_lon is not None
        else None
    )
    position = device or exif
    distance = haversine_m(wo.lat, wo.lon, *position) if position else None
    if photo is None:
        flags.append(FLAG_AWAITING)
    if distance is not None and distance > max_distance:
        flags.append(FLAG_FAR)
    if position is None and photo is not None:
        flags.append(FLAG_NO_LOCATION)
    if device and exif and haversine_m(*device, *exif) > max_distance:
        flags.append(FLAG_EXIF_FAR)
    exif_time = photo.exif_taken_at if photo is not None else None
    # the earliest credible time: a gallery photo attached today still shows its EXIF date
    taken = min((t for t in (attachment.captured_at, exif_time) if t is not None), default=None)
    if taken is not None and wo.completed_at is not None and taken < wo.completed_at - max_age:
        flags.append(FLAG_OLD)
    if attachment.captured_at and exif_time and abs(attachment.captured_at - exif_time) > max_age:
        flags.append(FLAG_EXIF_TIME)
    return (round(distance, 1) if distance is not None else None), flags


async def _reevaluate(
    tx: AsyncSession, attachments: Iterable[WorkOrderPhoto], wo: WorkOrder, settings: Settings
) -> None:
    for attachment in attachments:
        photo = await get_photo(tx, attachment.sha256)
        distance, flags = evaluate(attachment, photo, wo, settings)
        if attachment.distance_m != distance or list(attachment.flags or []) != flags:
            attachment.distance_m = distance
            attachment.flags = flags
            tx.add(attachment)
    await tx.flush()


async def _attachments_of(tx: AsyncSession, work_order_id: int) -> list[WorkOrderPhoto]:
    rows = await tx.execute(
        select(WorkOrderPhoto)
        .where(WorkOrderPhoto.work_order_id == work_order_id)
        .order_by(WorkOrderPhoto.created_at, WorkOrderPhoto.id)  # type: ignore[arg-type]
    )
    return list(rows.scalars())


async def present_kinds(tx: AsyncSession, work_order_id: int) -> set[str]:
    """Kinds of evidence whose bytes the server holds (an attachment alone is not evidence)."""
    rows = await tx.execute(
        select(WorkOrderPhoto.kind)
        .join(Photo, Photo.sha256 == WorkOrderPhoto.sha256)  # type: ignore[arg-type]
        .where(WorkOrderPhoto.work_order_id == work_order_id)
    )
    return set(rows.scalars())


async def _missing(tx: AsyncSession, work_order_id: int, required: list[str]) -> list[str]:
    present = await present_kinds(tx, work_order_id)
    return [kind for kind in required if kind not in present]


async def refresh_evidence(tx: AsyncSession, work_order_id: int) -> WorkOrderEvidence | None:
    """Re-check an open evidence record; it turns ``complete`` once nothing is missing."""
    evidence = await tx.get(WorkOrderEvidence, work_order_id)
    if evidence is None or evidence.status == "complete":
        return evidence
    missing = await _missing(tx, work_order_id, list(evidence.required))
    now = utcnow()
    if missing != list(evidence.missing):
        evidence.missing = missing
        evidence.updated_at = now
    if not missing:
        evidence.status = "complete"
        evidence.resolved_at = now
        evidence.updated_at = now
    tx.add(evidence)
    await tx.flush()
    return evidence


async def open_evidence(tx: AsyncSession, wo: WorkOrder, settings: Settings) -> None:
    """On completion: record what the service type requires and what is still missing."""
    assert wo.id is not None
    service_type = await tx.get(ServiceType, wo.service_type_id)
    required = [str(kind) for kind in (service_type.evidence_required if service_type else [])]
    evidence = await tx.get(WorkOrderEvidence, wo.id)
    if not required:
        if evidence is not None:
            await tx.delete(evidence)
            await tx.flush()
        return
    now = utcnow()
    missing = await _missing(tx, wo.id, required)
    if evidence is None:
        evidence = WorkOrderEvidence(work_order_id=wo.id, completed_at=now, due_at=now)
    evidence.required = required
    evidence.missing = missing
    evidence.completed_at = wo.completed_at or now
    # the delay runs from the completion's arrival: a device offline all day syncs its
    # completion and its photos together, and deserves the same grace
    evidence.due_at = now + timedelta(minutes=settings.photo_missing_delay_min)
    evidence.status = "pending" if missing else "complete"
    evidence.flagged_at = None
    evidence.resolved_at = None if missing else now
    evidence.updated_at = now
    tx.add(evidence)
    await tx.flush()


# --------------------------------------------------------------------------- event hooks


async def on_photo_attached(
    tx: AsyncSession, attachment: WorkOrderPhoto, work_order: WorkOrder
) -> None:
    """events.photo_attached: flags of the new attachment, and the work order's evidence."""
    settings = get_settings()
    await _reevaluate(tx, [attachment], work_order, settings)
    assert work_order.id is not None
    await refresh_evidence(tx, work_order.id)


async def on_photo_stored(tx: AsyncSession, sha256: str, settings: Settings) -> None:
    """The bytes arrived: re-evaluate every attachment naming them (EXIF data is known now)."""
    attachments = list(
        (await tx.execute(select(WorkOrderPhoto).where(WorkOrderPhoto.sha256 == sha256))).scalars()
    )
    by_order: dict[int, list[WorkOrderPhoto]] = {}
    for attachment in attachments:
        by_order.setdefault(attachment.work_order_id, []).append(attachment)
    for work_order_id, group in by_order.items():
        wo = await tx.get(WorkOrder, work_order_id)
        if wo is None:
            continue
        await _reevaluate(tx, group, wo, settings)
        await refresh_evidence(tx, work_order_id)


async def on_work_order_changed(
    tx: AsyncSession, wo: WorkOrder, before: dict[str, Any], action: str, actor: Any
) -> None:
    """events.work_order_changed: completion opens the evidence check; reopening drops it."""
    if not before or wo.id is None:
        return
    was_completed = before.get("status") == "completed"
    is_completed = wo.status == "completed"
    moved = before.get("lat") != wo.lat or before.get("lon") != wo.lon
    settings = get_settings()
    if (is_completed and not was_completed) or moved:
        await _reevaluate(tx, await _attachments_of(tx, wo.id), wo, settings)
    if is_completed and not was_completed:
        await open_evidence(tx, wo, settings)
    elif was_completed and not is_completed:
        await tx.execute(delete(WorkOrderEvidence).where(WorkOrderEvidence.work_order_id == wo.id))  # type: ignore[arg-type]


# --------------------------------------------------------------------------- dispatcher view


def flag_label(flag: str, language: str, attachment: WorkOrderPhoto, settings: Settings) -> str:
    return translate(
        f"photo_flag_{flag}",
        language,
        distance=round(attachment.distance_m or 0),
        max_distance=round(settings.evidence_max_distance_m),
        max_age=settings.evidence_max_age_h,
    )


async def work_order_evidence(
    tx: AsyncSession, wo: WorkOrder, settings: Settings, language: str
) -> WorkOrderEvidencePublic:
    assert wo.id is not None
    attachments = await _attachments_of(tx, wo.id)
    photos: list[EvidencePhoto] = []
    for attachment in attachments:
        photo = await get_photo(tx, attachment.sha256)
        flags = [str(f) for f in attachment.flags or []]
        photos.append(
            EvidencePhoto(
                **attachment.model_dump(
                    include={
                        "id",
                        "sha256",
                        "kind",
                        "captured_at",
                        "captured_lat",
                        "captured_lon",
                        "captured_accuracy_m",
                        "created_at",
                        "distance_m",
                    }
                ),
                flags=flags,
                flag_labels=[flag_label(f, language, attachment, settings) for f in flags],
                uploaded=photo is not None,
                photo=to_public(photo, settings) if photo is not None else None,
                original_url=original_url(settings, attachment.sha256),
            )
        )
    evidence = await tx.get(WorkOrderEvidence, wo.id)
    if evidence is not None:
        required = [str(k) for k in evidence.required]
        status = evidence.status
    else:
        service_type = await tx.get(ServiceType, wo.service_type_id)
        required = [str(k) for k in (service_type.evidence_required if service_type else [])]
        status = "not_required" if not required else "open"
    missing = await _missing(tx, wo.id, required)
    return WorkOrderEvidencePublic(
        work_order_id=wo.id,
        required=required,
        missing=missing,
        status=status,
        flagged_at=evidence.flagged_at if evidence else None,
        due_at=evidence.due_at if evidence else None,
        photos=photos,
    )
