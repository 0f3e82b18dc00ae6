"""Photo routes: resumable uploads (crews and dispatchers), originals and evidence (dispatchers),
public metadata-free copies (everyone)."""

from __future__ import annotations

import tempfile
from typing import Annotated, Any

from litestar import Controller, Request, Response, delete, get, head, patch, post
from litestar.exceptions import InternalServerException
from litestar.params import HeaderParameter, JSONBody, Parameter

from server.accounts.auth import CurrentActor, any_user_guard, dispatcher_guard, public_guard
from server.errors import DomainError, NotFound, problem
from server.i18n import negotiate
from server.params import AppSettings, Db, DbId, Tx
from server.photos import evidence, service, uploads
from server.photos.models import (
    PhotoPublic,
    PhotoVerification,
    UploadCreate,
    UploadStatus,
    WithdrawBody,
    WorkOrderEvidencePublic,
)
from server.photos.store import DISPLAY, THUMB, PhotoStore, Store, derived_key
from server.workorders import service as workorders

Sha256 = Annotated[
    str, Parameter(pattern=r"^[0-9a-f]{64}$", min_length=64, max_length=64, description="SHA-256")
]
UploadId = Annotated[str, Parameter(pattern=r"^[0-9a-f]{32}$", min_length=32, max_length=32)]
UploadOffset = Annotated[
    int, HeaderParameter(name="Upload-Offset", ge=0, le=2**40, description="Offset of this chunk")
]

#: Hard ceiling of one PATCH body; the real limit (what is left of the declared length, itself
#: at most TOURNEE_PHOTO_MAX_BYTES) is enforced by the handler before and while reading.
MAX_CHUNK_BYTES = 64 * 1024 * 1024

NO_STORE = {"Cache-Control": "no-store"}


def _upload_headers(status: UploadStatus) -> dict[str, str]:
    return {
        "Upload-Offset": str(status.offset),
        "Upload-Length": str(status.length),
        **NO_STORE,
    }


def _content_length(request: Request[Any, Any, Any]) -> int | None:
    raw = request.headers.get("content-length")
    if raw is None:
        return None
    try:
        return int(raw)
    except ValueError:
        raise DomainError("bad_request", 400) from None


class PhotoController(Controller):
    path = "/api/v1/photos"
    tags = ["photos"]

    @head(
        "/{sha256:str}",
        operation_id="photoExists",
        guards=[any_user_guard],
        summary="Does the server hold this photo? 200 yes, 404 no (then upload it)",
        status_code=200,
    )
    async def photo_exists(self, tx: Tx, sha256: Sha256) -> Response[None]:
        photo = await service.load_photo(tx, sha256)  # 404 problem+json (no body on HEAD)
        return Response(
            content=None,
            status_code=200,
            headers={"Upload-Length": str(photo.size_bytes), **NO_STORE},
        )

    @get(
        "/{sha256:str}",
        operation_id="getPhoto",
        guards=[dispatcher_guard],
        summary="A photo's metadata (EXIF position and time, size, public copies)",
    )
    async def get_photo(self, tx: Tx, settings: AppSettings, sha256: Sha256) -> PhotoPublic:
        return service.to_public(await service.load_photo(tx, sha256), settings)

    @get(
        "/{sha256:str}/original",
        operation_id="getPhotoOriginal",
        guards=[dispatcher_guard],
        summary="The original bytes, re-hashed on every read (409 if they no longer match)",
        media_type="application/octet-stream",
    )
    async def get_original(self, tx: Tx, photo_store: Store, sha256: Sha256) -> Response[bytes]:
        photo, data, actual = await service.read_original(tx, photo_store, sha256)
        if actual != sha256:
            service.log.error("photo %s: stored bytes hash to %s (tampered?)", sha256, actual)
            raise DomainError("photo_integrity_failed", 409)
        extension = photo.mime.rsplit("/", 1)[-1]
        return Response(
            content=data,
            media_type=photo.mime,
            headers={
                "X-Content-Type-Options": "nosniff",
                "Content-Security-Policy": "sandbox; default-src 'none'",
                "Content-Disposition": f'inline; filename="{sha256}.{extension}"',
                "Cache-Control": "private, no-store",
                "Digest": f"sha-256={sha256}",
            },
        )

    @post(
        "/{sha256:str}/withdraw",
        operation_id="withdrawPhotoPublicCopies",
        guards=[dispatcher_guard],
        status_code=200,
        summary="Withdraw a photo's public copies (a face, a licence plate): gone from the "
        "tracking page, Open311 and the store; the original stays; audited",
    )
    async def withdraw(
        self,
        db: Db,
        settings: AppSettings,
        photo_store: Store,
        actor: CurrentActor,
        sha256: Sha256,
        data: JSONBody[WithdrawBody],
    ) -> PhotoPublic:
        async with db.transaction() as tx:
            photo, keys = await service.withdraw_public_copies(tx, sha256, data.reason, actor)
            public = service.to_public(photo, settings)
        for key in keys:  # after commit; the purge job deletes them again on its next run
            await photo_store.delete(key)
        return public

    @get(
        "/{sha256:str}/verify",
        operation_id="verifyPhoto",
        guards=[dispatcher_guard],
        summary="Re-hash the stored original and compare with its recorded sha256",
    )
    async def verify(self, tx: Tx, photo_store: Store, sha256: Sha256) -> PhotoVerification:
        return await service.verify_photo(tx, photo_store, sha256)

    @post(
        "/uploads",
        operation_id="createPhotoUpload",
        guards=[any_user_guard],
        summary="Declare a photo (sha256, length): an upload id and the offset to start at",
    )
    async def create_upload(
        self, tx: Tx, settings: AppSettings, actor: CurrentActor, data: JSONBody[UploadCreate]
    ) -> Response[UploadStatus]:
        status, created = await uploads.create_upload(
            tx, settings, data.sha256, data.length, actor.user_id
        )
        headers = _upload_headers(status)
        if status.id is not None:
            headers["Location"] = f"/api/v1/photos/uploads/{status.id}"
        return Response(content=status, status_code=201 if created else 200, headers=headers)

    @head(
        "/uploads/{upload_id:str}",
        operation_id="headPhotoUpload",
        guards=[any_user_guard],
        status_code=200,
        summary="The upload's current offset (Upload-Offset header)",
    )
    async def head_upload(self, tx: Tx, actor: CurrentActor, upload_id: UploadId) -> Response[None]:
        upload = await uploads.load_upload(tx, upload_id, actor)
        return Response(content=None, headers=_upload_headers(uploads.upload_status(upload)))

    @get(
        "/uploads/{upload_id:str}",
        operation_id="getPhotoUpload",
        guards=[any_user_guard],
        summary="The upload's current offset, as JSON",
    )
    async def get_upload(
        self, tx: Tx, actor: CurrentActor, upload_id: UploadId
    ) -> Response[UploadStatus]:
        status = uploads.upload_status(await uploads.load_upload(tx, upload_id, actor))
        return Response(content=status, headers=_upload_headers(status))

    @patch(
        "/uploads/{upload_id:str}",
        operation_id="appendPhotoUpload",
        guards=[any_user_guard],
        status_code=200,
        request_max_body_size=MAX_CHUNK_BYTES,
        summary="Append a chunk at Upload-Offset (raw bytes); completes when offset = length",
        description="The body is raw bytes (application/offset+octet-stream). A wrong offset "
        "answers 409 with the server's offset in Upload-Offset. A connection cut mid-chunk keeps "
        "the bytes received: ask HEAD for the offset and continue from there.",
    )
    async def append(
        self,
        request: Request[Any, Any, Any],
        db: Db,
        settings: AppSettings,
        photo_store: Store,
        actor: CurrentActor,
        upload_id: UploadId,
        upload_offset: UploadOffset,
    ) -> Response[Any]:
        async with db.transaction() as tx:  # cheap checks before reading any byte
            upload = await uploads.load_upload(tx, upload_id, actor)
        if upload_offset != upload.offset:
            return self._offset_conflict(request, upload.offset)
        remaining = upload.length - upload.offset
        announced = _content_length(request)
        if announced is not None and announced > remaining:
            raise DomainError("upload_overflow", 413, length=upload.length)
        with tempfile.SpooledTemporaryFile(max_size=uploads.SPOOL_IN_MEMORY) as spool:
            size = 0
            try:
                async for piece in request.stream():
                    size += len(piece)
                    if size > remaining:
                        raise DomainError("upload_overflow", 413, length=upload.length)
                    spool.write(piece)
            except InternalServerException:
                # The client went away mid-chunk: keep what arrived (tus semantics); nobody
                # reads this response, the device asks HEAD for the offset when it is back.
                service.log.info("upload %s cut after %d bytes of a chunk", upload_id, size)
            try:
                status = await uploads.append_chunk(
                    db, photo_store, settings, upload_id, upload_offset, spool, size, actor
                )
            except uploads.OffsetMismatch as exc:
                return self._offset_conflict(request, exc.offset)
        if status.complete:
            # the public copies now, not at the next job run: a completion push waits for them
            copies = getattr(request.app.state, "photo_copies", None)
            if copies is not None:
                copies.start(db, photo_store, status.sha256)
        return Response(content=status, headers=_upload_headers(status))

    @staticmethod
    def _offset_conflict(request: Request[Any, Any, Any], offset: int) -> Response[Any]:
        return problem(
            request,
            409,
            "upload_offset_mismatch",
            headers={"Upload-Offset": str(offset), **NO_STORE},
            extra={"offset": offset},
            offset=offset,
        )

    @delete(
        "/uploads/{upload_id:str}",
        operation_id="deletePhotoUpload",
        guards=[any_user_guard],
        summary="Abandon an upload in progress",
    )
    async def delete_upload(
        self, tx: Tx, photo_store: Store, actor: CurrentActor, upload_id: UploadId
    ) -> None:
        await uploads.delete_upload(tx, photo_store, upload_id, actor)


class WorkOrderPhotoController(Controller):
    path = "/api/v1/work-orders"
    guards = [dispatcher_guard]
    tags = ["photos", "work orders"]

    @get(
        "/{work_order_id:int}/photos",
        operation_id="listWorkOrderPhotos",
        summary="A work order's photo evidence: distance from the site, flags, what is missing",
    )
    async def list_photos(
        self,
        request: Request[Any, Any, Any],
        tx: Tx,
        settings: AppSettings,
        work_order_id: DbId,
    ) -> WorkOrderEvidencePublic:
        wo = await workorders.load(tx, work_order_id)
        language = negotiate(request.headers.get("accept-language"))
        return await evidence.work_order_evidence(tx, wo, settings, language)


async def _public_copy(
    request: Request[Any, Any, Any], tx: Tx, store: PhotoStore, sha256: str, name: str
) -> Response[bytes]:
    if not await service.is_public(tx, sha256):
        raise NotFound("photo", sha256)
    etag = f'"{sha256[:32]}-{name}"'
    headers = {
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "public, max-age=86400",
        "ETag": etag,
    }
    if request.headers.get("if-none-match") == etag:
        return Response(content=b"", status_code=304, headers=headers)
    data = await store.get_bytes(derived_key(sha256, name))
    if data is None:  # not made yet (the job runs shortly after the upload)
        raise NotFound("photo", sha256)
    return Response(content=data, media_type="image/jpeg", headers=headers)


class PublicPhotoController(Controller):
    """Metadata-free copies (orientation applied) for citizens and Open311 ``media_url``."""

    path = "/media/photos"
    guards = [public_guard]
    tags = ["photos"]

    @get(
        "/{sha256:str}/display.jpg",
        operation_id="getPublicPhotoDisplay",
        media_type="image/jpeg",
        summary="Display-size public copy (1600 px)",
    )
    async def display(
        self,
        request: Request[Any, Any, Any],
        tx: Tx,
        photo_store: Store,
        sha256: Sha256,
    ) -> Response[bytes]:
        return await _public_copy(request, tx, photo_store, sha256, DISPLAY)

    @get(
        "/{sha256:str}/thumb.jpg",
        operation_id="getPublicPhotoThumb",
        media_type="image/jpeg",
        summary="Thumbnail public copy (320 px)",
    )
    async def thumb(
        self,
        request: Request[Any, Any, Any],
        tx: Tx,
        photo_store: Store,
        sha256: Sha256,
    ) -> Response[bytes]:
        return await _public_copy(request, tx, photo_store, sha256, THUMB)
