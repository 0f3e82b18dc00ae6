"""Photo uploads: resumable upload sessions (tus model), whole photos given as bytes, and the
:class:`Photo` row recorded when the bytes are whole and valid (docs/adr/0030).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import tempfile
import uuid
from datetime import datetime
from pathlib import Path
from typing import IO, Any
from zoneinfo import ZoneInfo

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from server.accounts.auth import Actor
from server.db import Database
from server.dbtypes import dialect_name, utcnow
from server.errors import Conflict, DomainError, NotFound
from server.photos import imaging
from server.photos.evidence import on_photo_stored
from server.photos.files import PhotoRejected, hash_file, validate_file
from server.photos.models import (
    Photo,
    PhotoJob,
    PhotoUpload,
    UploadStatus,
)
from server.photos.service import get_photo
from server.photos.store import (
    PhotoNotFoundError,
    PhotoStore,
    upload_key,
)
from server.settings import Settings

SPOOL_IN_MEMORY = 1 << 20  # chunk bodies above 1 MiB spill to a temporary file


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


def _insert(tx: AsyncSession) -> Any:
    assert tx.bind is not None
    return postgresql.insert if dialect_name(tx) == "postgresql" else sqlite.insert


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


def upload_status(upload: PhotoUpload) -> UploadStatus:
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
            return upload_status(upload), True
        except IntegrityError:  # another device declared the same photo at the same moment
            existing = await _upload_by_sha(tx, sha256, user_id)
            if existing is None:
                raise
    if existing.length != length:
        raise Conflict("upload_length_mismatch", length=existing.length)
    return upload_status(existing), False


async def _upload_by_sha(tx: AsyncSession, sha256: str, user_id: int | None) -> PhotoUpload | None:
    user = col(PhotoUpload.user_id)
    owner = user.is_(None) if user_id is None else user == user_id
    return (
        await tx.execute(select(PhotoUpload).where(col(PhotoUpload.sha256) == sha256, owner))
    ).scalar_one_or_none()


async def load_upload(
    tx: AsyncSession, upload_id: str, actor: Actor, *, for_update: bool = False
) -> PhotoUpload:
    """The upload, if ``actor`` may touch it: its uploader or a dispatcher. Anyone else gets the
    same 404 as for an unknown id (an upload id says nothing about whose it is)."""
    query = select(PhotoUpload).where(col(PhotoUpload.id) == upload_id)
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
        status = upload_status(upload)
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
        await tx.execute(delete(PhotoUpload).where(col(PhotoUpload.id) == upload_id))
    await store.delete(upload_key(upload_id))
    return UploadStatus(id=upload_id, sha256=sha256, length=size, offset=size, complete=True)


async def _abandon(db: Database, store: PhotoStore, upload_id: str) -> None:
    async with db.transaction() as tx:
        await tx.execute(delete(PhotoUpload).where(col(PhotoUpload.id) == upload_id))
    await store.delete(upload_key(upload_id))
