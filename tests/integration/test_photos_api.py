"""Photo evidence through HTTP: uploads, validation, public copies, evidence flags.

Every image is generated here with Pillow (or built by hand when malformed): no binary fixtures.
Attachments (WorkOrderPhoto) are created the way the sync engine does: a row in a transaction,
then emits ``PhotoAttached``.
"""

from __future__ import annotations

import hashlib
import io
import struct
import uuid
import zipfile
import zlib
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import select, update

from server import events
from server.db import Database
from server.dbtypes import utcnow
from server.errors import DomainError
from server.photos import jobs, service, uploads
from server.photos.events import PhotoAttached
from server.photos.models import Photo, PhotoJob, WorkOrderEvidence, WorkOrderPhoto
from server.photos.store import LocalPhotoStore, PhotoNotFoundError, original_key, upload_key
from server.settings import Settings, get_settings
from server.workorders.models import WorkOrder
from tests.support.data import login
from tests.support.images import encode, exif_block, photo

SITE = (46.8139, -71.2080)  # rue Saint-Jean, Québec
NEAR = (46.81395, -71.20805)  # ~7 m away
FAR = (46.8184, -71.2080)  # ~500 m north
UPLOADS = "/api/v1/photos/uploads"


# --------------------------------------------------------------------------- images


def _jpeg(seed: int = 0, **exif: Any) -> bytes:
    img = photo()
    img.putpixel((399, 299), (seed % 256, seed // 256 % 256, 7))  # distinct bytes per seed
    if "taken" in exif:
        exif.setdefault("offset", "-05:00")
    return encode(img, "JPEG", quality=90, exif=exif_block(**exif) if exif else b"")


def _png_chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))


def _png_huge(width: int, height: int) -> bytes:
    """A PNG header declaring enormous dimensions, in a few dozen bytes."""
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + _png_chunk(b"IEND", b"")
    )


def _jpeg_with_dims(width: int, height: int) -> bytes:
    data = bytearray(encode(photo((64, 48)), "JPEG"))
    i = 2
    while i + 4 <= len(data):
        marker, length = data[i + 1], int.from_bytes(data[i + 2 : i + 4], "big")
        if marker in (0xC0, 0xC1, 0xC2):
            data[i + 5 : i + 9] = struct.pack(">HH", height, width)
            return bytes(data)
        i += 2 + length
    raise AssertionError("no SOF")


def _zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("evil.html", "<script>alert('POLYGLOT-MARKER')</script>")
    return buf.getvalue()


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _is_red(pixel: tuple[int, ...]) -> bool:
    r, g, b = pixel[:3]
    return r > 180 and g < 80 and b < 80


# --------------------------------------------------------------------------- HTTP helpers


async def upload(client: Any, headers: dict[str, str], data: bytes, chunk: int = 1 << 20) -> Any:
    """Declare, then PATCH chunks; returns the last response."""
    response = await client.post(
        UPLOADS, json={"sha256": _sha(data), "length": len(data)}, headers=headers
    )
    if response.status_code not in (200, 201) or response.json()["complete"]:
        return response
    upload_id, offset = response.json()["id"], response.json()["offset"]
    while offset < len(data):
        response = await patch(client, headers, upload_id, offset, data[offset : offset + chunk])
        if response.status_code != 200:
            return response
        offset = response.json()["offset"]
    return response


async def patch(
    client: Any, headers: dict[str, str], upload_id: str, offset: int, body: bytes
) -> Any:
    return await client.patch(
        f"{UPLOADS}/{upload_id}",
        content=body,
        headers={
            **headers,
            "Upload-Offset": str(offset),
            "Content-Type": "application/offset+octet-stream",
        },
    )


def _db() -> Database:
    return Database(get_settings())


# --------------------------------------------------------------------------- the store, any backend


def _store() -> Any:
    return service.make_photo_store(get_settings())


async def stored_original(sha256: str) -> bytes | None:
    """The original's bytes as the configured store holds them (file or S3), or None."""
    try:
        opened = await _store().open(sha256)
    except PhotoNotFoundError:
        return None
    return opened if isinstance(opened, bytes) else opened.read_bytes()


async def overwrite_original(sha256: str, data: bytes) -> None:
    """Change the stored original behind the app's back (tamper tests)."""
    store = _store()
    if isinstance(store, LocalPhotoStore):
        store.path_for(original_key(sha256)).write_bytes(data)
    else:
        await store.put_raw(original_key(sha256), data)


async def original_names() -> list[str]:
    store = _store()
    if isinstance(store, LocalPhotoStore):
        root = store.path_for(original_key("0" * 64)).parents[2]
        return [p.name for p in root.rglob("*") if p.is_file()] if root.exists() else []
    return [key.rsplit("/", 1)[-1] for key in await store.list_keys("originals/")]


async def staged_keys() -> set[str]:
    """Everything the store holds for uploads in progress."""
    store = _store()
    if isinstance(store, LocalPhotoStore):
        root = store.path_for(upload_key("0" * 32)).parent
        return {p.name for p in root.glob("*")} if root.exists() else set()
    return set(await store.list_keys("uploads/"))


async def staged_bytes(upload_id: str) -> int:
    """How many bytes of an upload in progress the store holds (0 if none)."""
    store = _store()
    if isinstance(store, LocalPhotoStore):
        path = store.path_for(upload_key(upload_id))
        return path.stat().st_size if path.exists() else 0
    total = 0
    for name, _ in await store._parts(upload_id):
        data = await store._get(name[len(store.prefix) :])
        total += len(data or b"")
    return total


async def _new_work_order(client: Any, service_code: str = "illegal-dumping") -> dict[str, Any]:
    """A work order at SITE assigned to ngauthier's crew (waste-cite-limoilou-1)."""
    dispatcher = await login(client, "repartiteur1", "dispatcher")
    crews = (await client.get("/api/v1/crews", headers=dispatcher, params={"kind": "waste"})).json()
    crew = next(c for c in crews if c["code"] == "waste-cite-limoilou-1")
    response = await client.post(
        "/api/v1/work-orders",
        json={
            "service_code": service_code,
            "lat": SITE[0],
            "lon": SITE[1],
            "address": "100, rue Saint-Jean",
            "crew_id": crew["id"],
        },
        headers=dispatcher,
    )
    assert response.status_code == 201, response.text
    return response.json()


async def _complete(client: Any, crew: dict[str, str], wo_id: int) -> None:
    for action in ("start_route", "arrive", "complete"):
        body: dict[str, Any] = {"action": action}
        if action == "complete":
            body["outcome"] = "fixed"
        response = await client.post(
            f"/api/v1/crew/work-orders/{wo_id}/transition", json=body, headers=crew
        )
        assert response.status_code == 200, response.text


async def attach(
    wo_id: int,
    sha256: str,
    kind: str = "after",
    lat_lon: tuple[float, float] | None = None,
    captured_ago: timedelta | None = timedelta(minutes=1),
) -> str:
    """Create a WorkOrderPhoto the way the sync engine does, then emit PhotoAttached."""
    db = _db()
    attachment_id = str(uuid.uuid4())
    try:
        async with db.transaction() as tx:
            wo = await tx.get(WorkOrder, wo_id)
            assert wo is not None
            attachment = WorkOrderPhoto(
                id=attachment_id,
                work_order_id=wo_id,
                sha256=sha256,
                kind=kind,
                captured_at=utcnow() - captured_ago if captured_ago is not None else None,
                captured_lat=lat_lon[0] if lat_lon else None,
                captured_lon=lat_lon[1] if lat_lon else None,
                captured_accuracy_m=8.0 if lat_lon else None,
            )
            tx.add(attachment)
            await tx.flush()
            await events.emit(PhotoAttached(tx, attachment, wo))
    finally:
        await db.dispose()
    return attachment_id


async def copies_made(client: Any) -> None:
    """Wait for the public copies the app started as uploads completed (docs/adr/0032)."""
    await client.app.state.photo_copies.drain(timeout=30)


async def run_photo_jobs() -> int:
    db = _db()
    try:
        return await jobs.process_pending_photo_jobs(db, service.make_photo_store(db.settings), 10)
    finally:
        await db.dispose()


@pytest.fixture
async def crew(client: Any) -> dict[str, str]:
    return await login(client, "ngauthier", "crew", device_label="Téléphone photos")


# --------------------------------------------------------------------------- uploads


async def test_upload_in_chunks_then_head_knows_it(client: Any, crew: dict[str, str]) -> None:
    data = _jpeg(gps=SITE)
    sha = _sha(data)
    assert (await client.head(f"/api/v1/photos/{sha}", headers=crew)).status_code == 404
    created = await client.post(UPLOADS, json={"sha256": sha, "length": len(data)}, headers=crew)
    assert created.status_code == 201, created.text
    body = created.json()
    assert body == {"id": body["id"], "sha256": sha, "length": len(data), "offset": 0,
                    "complete": False}  # fmt: skip
    assert created.headers["location"] == f"{UPLOADS}/{body['id']}"
    # declaring it again (a device that lost the answer) gives the same upload back
    again = await client.post(UPLOADS, json={"sha256": sha, "length": len(data)}, headers=crew)
    assert again.status_code == 200 and again.json()["id"] == body["id"]

    first = await patch(client, crew, body["id"], 0, data[:5000])
    assert first.status_code == 200, first.text
    assert first.json()["offset"] == 5000 and first.headers["upload-offset"] == "5000"
    state = await client.head(f"{UPLOADS}/{body['id']}", headers=crew)
    assert state.status_code == 200
    assert state.headers["upload-offset"] == "5000"
    assert state.headers["upload-length"] == str(len(data))
    assert state.headers["cache-control"] == "no-store"
    assert (await client.get(f"{UPLOADS}/{body['id']}", headers=crew)).json()["offset"] == 5000

    # a chunk at a stale offset is refused with the server's offset
    stale = await patch(client, crew, body["id"], 0, data[:5000])
    assert stale.status_code == 409
    assert stale.headers["upload-offset"] == "5000"
    assert stale.json()["code"] == "upload_offset_mismatch"
    assert stale.json()["offset"] == 5000

    # more bytes than declared: refused, nothing written
    over = await patch(client, crew, body["id"], 5000, data[5000:] + b"extra")
    assert over.status_code == 413 and over.json()["code"] == "upload_overflow"

    done = await patch(client, crew, body["id"], 5000, data[5000:])
    assert done.status_code == 200, done.text
    assert done.json()["complete"] is True and done.json()["offset"] == len(data)
    exists = await client.head(f"/api/v1/photos/{sha}", headers=crew)
    assert exists.status_code == 200 and exists.headers["upload-length"] == str(len(data))
    # the upload is over: its id is gone, the photo is known
    assert (await client.head(f"{UPLOADS}/{body['id']}", headers=crew)).status_code == 404
    skip = await client.post(UPLOADS, json={"sha256": sha, "length": len(data)}, headers=crew)
    assert skip.status_code == 200
    assert skip.json() == {"id": None, "sha256": sha, "length": len(data),
                           "offset": len(data), "complete": True}  # fmt: skip


async def test_same_bytes_twice_store_one_object(
    client: Any, crew: dict[str, str], dispatcher: dict[str, str]
) -> None:
    data = _jpeg(seed=2)
    first = await upload(client, crew, data, chunk=4096)
    assert first.json()["complete"] is True
    second = await upload(client, dispatcher, data)
    assert second.status_code == 200 and second.json()["id"] is None
    assert (await original_names()).count(_sha(data)) == 1
    assert await stored_original(_sha(data)) == data
    db = _db()
    try:
        async with db.transaction() as tx:
            queued = (
                await tx.execute(select(PhotoJob).where(PhotoJob.sha256 == _sha(data)))
            ).scalars()
            assert len(list(queued)) == 1  # one derivatives job, not two
    finally:
        await db.dispose()


async def test_hash_mismatch_ends_the_upload(client: Any, crew: dict[str, str]) -> None:
    data = _jpeg(seed=3)
    other = data[:-100] + bytes([data[-100] ^ 0x55]) + data[-99:]  # same length, one byte off
    created = (
        await client.post(UPLOADS, json={"sha256": _sha(data), "length": len(data)}, headers=crew)
    ).json()
    response = await patch(client, crew, created["id"], 0, other)
    assert response.status_code == 422
    assert response.json()["code"] == "photo_hash_mismatch"
    assert (await client.head(f"{UPLOADS}/{created['id']}", headers=crew)).status_code == 404
    assert (await client.head(f"/api/v1/photos/{_sha(data)}", headers=crew)).status_code == 404
    assert await staged_bytes(created["id"]) == 0
    # and the device can start again with the right bytes
    assert (await upload(client, crew, data)).json()["complete"] is True


async def test_size_limit_is_413(client: Any, crew: dict[str, str]) -> None:
    too_big = get_settings().photo_max_bytes + 1
    response = await client.post(
        UPLOADS,
        json={"sha256": "a" * 64, "length": too_big},
        headers={**crew, "Accept-Language": "en"},
    )
    assert response.status_code == 413
    assert response.json()["code"] == "photo_too_large"
    assert "25" in response.json()["title"]


REJECTED = [
    ("garbage", lambda: b"\x00\x01garbage" * 100, 415, "photo_unsupported_type"),
    ("gif_named_jpeg", lambda: encode(photo(), "GIF"), 415, "photo_unsupported_type"),
    ("pdf", lambda: b"%PDF-1.4\n" + b"0" * 200, 415, "photo_unsupported_type"),
    ("truncated_jpeg", lambda: _jpeg(seed=9)[:3000], 422, "photo_truncated"),
    ("bomb_png", lambda: _png_huge(40_000, 40_000), 422, "photo_decompression_bomb"),
    ("huge_jpeg_tiny_file", lambda: _jpeg_with_dims(9_000, 9_000), 422, "photo_too_many_pixels"),
    ("one_byte", lambda: b"\xff", 415, "photo_unsupported_type"),
]


async def test_bad_content_is_4xx(client: Any, crew: dict[str, str]) -> None:
    headers = {**crew, "Accept-Language": "en"}
    before = await staged_keys()
    for name, make, status, code in REJECTED:
        data = make()
        response = await upload(client, headers, data)
        assert (response.status_code, response.json()["code"]) == (status, code), name
        assert response.headers["content-type"].startswith("application/problem+json")
        assert (await client.head(f"/api/v1/photos/{_sha(data)}", headers=crew)).status_code == 404
    assert await staged_keys() == before, "parts left behind"


async def test_unsupported_type_message_in_both_languages(
    client: Any, crew: dict[str, str]
) -> None:
    titles = {}
    for language in ("fr-CA", "en"):
        data = b"GIF89a" + bytes(range(256)) + language.encode()
        response = await upload(client, {**crew, "Accept-Language": language}, data)
        assert response.status_code == 415
        titles[language] = response.json()["title"]
    assert "JPEG, PNG, WebP ou HEIC" in titles["fr-CA"]
    assert "JPEG, PNG, WebP or HEIC" in titles["en"]


async def test_zero_bytes_and_bad_declarations_are_4xx(client: Any, crew: dict[str, str]) -> None:
    for body in (
        {"sha256": _sha(b""), "length": 0},
        {"sha256": "NOT-A-HASH", "length": 10},
        {"sha256": "a" * 63, "length": 10},
        {"sha256": "a" * 64, "length": -1},
    ):
        response = await client.post(UPLOADS, json=body, headers=crew)
        assert response.status_code == 400, (body, response.text)
    for path in (f"{UPLOADS}/not-an-id", f"{UPLOADS}/{'a' * 32}"):
        response = await patch(client, crew, path.rsplit("/", 1)[-1], 0, b"x")
        assert response.status_code in (400, 404)
    missing_header = await client.patch(f"{UPLOADS}/{'a' * 32}", content=b"x", headers=crew)
    assert missing_header.status_code == 400


async def test_abandon_and_cleanup(client: Any, crew: dict[str, str]) -> None:
    data = _jpeg(seed=11)
    created = (
        await client.post(UPLOADS, json={"sha256": _sha(data), "length": len(data)}, headers=crew)
    ).json()
    assert (await patch(client, crew, created["id"], 0, data[:1000])).status_code == 200
    assert await staged_bytes(created["id"]) == 1000
    db = _db()
    store = service.make_photo_store(db.settings)
    try:
        assert await jobs.cleanup_abandoned_uploads(db, store, timedelta(hours=1)) == 0
        assert await jobs.cleanup_abandoned_uploads(db, store, timedelta(0)) == 1
    finally:
        await db.dispose()
    assert await staged_bytes(created["id"]) == 0
    assert (await client.head(f"{UPLOADS}/{created['id']}", headers=crew)).status_code == 404
    # DELETE by the device itself
    created = (
        await client.post(UPLOADS, json={"sha256": _sha(data), "length": len(data)}, headers=crew)
    ).json()
    assert (await client.delete(f"{UPLOADS}/{created['id']}", headers=crew)).status_code == 204
    assert (await client.get(f"{UPLOADS}/{created['id']}", headers=crew)).status_code == 404


async def test_head_routes_are_guarded(client: Any, crew: dict[str, str]) -> None:
    sha = "b" * 64
    assert (await client.head(f"/api/v1/photos/{sha}")).status_code == 401
    assert (await client.head(f"{UPLOADS}/{'c' * 32}")).status_code == 401
    assert (await client.head(f"/api/v1/photos/{sha}", headers=crew)).status_code == 404
    assert (await client.head(f"{UPLOADS}/{'c' * 32}", headers=crew)).status_code == 404
    assert (await client.get(f"/api/v1/photos/{sha}", headers=crew)).status_code == 403
    assert (await client.get(f"/api/v1/photos/{sha}/original", headers=crew)).status_code == 403


# --------------------------------------------------------------------------- public copies


async def test_public_copy_is_upright_stripped_and_only_when_attached(
    client: Any, crew: dict[str, str], dispatcher: dict[str, str]
) -> None:
    # stored landscape 400x300 with the red marker top-left; orientation 6 = portrait
    data = _jpeg(seed=20, orientation=6, gps=SITE, taken="2025:01:15 10:30:00")
    sha = _sha(data)
    assert (await upload(client, crew, data)).json()["complete"] is True
    await copies_made(client)  # made as the upload completed, not by the job
    assert await run_photo_jobs() == 0
    display_url = f"/media/photos/{sha}/display.jpg"
    assert (await client.get(display_url)).status_code == 404  # made, but not attached yet
    wo = await _new_work_order(client)
    await attach(wo["id"], sha, lat_lon=NEAR)

    for name, longest in (("display", 400), ("thumb", 320)):
        response = await client.get(f"/media/photos/{sha}/{name}.jpg")
        assert response.status_code == 200
        assert response.headers["content-type"] == "image/jpeg"
        assert response.headers["x-content-type-options"] == "nosniff"
        assert "max-age" in response.headers["cache-control"]
        img = Image.open(io.BytesIO(response.content))
        img.load()
        assert img.height > img.width and img.height == longest  # portrait, upright
        assert len(img.getexif()) == 0
        for key in ("exif", "icc_profile", "comment", "xmp"):
            assert key not in img.info
        # orientation 6 rotates 90° clockwise: the stored top-left marker is now top-right
        assert _is_red(img.getpixel((img.width - 3, 3)))
        assert not _is_red(img.getpixel((2, 2)))
        again = await client.get(
            f"/media/photos/{sha}/{name}.jpg", headers={"If-None-Match": response.headers["etag"]}
        )
        assert again.status_code == 304

    # the dispatcher gets the original, byte for byte (GPS and all), re-hashed on read
    original = await client.get(f"/api/v1/photos/{sha}/original", headers=dispatcher)
    assert original.status_code == 200
    assert original.content == data
    assert original.headers["content-type"] == "image/jpeg"
    assert original.headers["x-content-type-options"] == "nosniff"
    meta = (await client.get(f"/api/v1/photos/{sha}", headers=dispatcher)).json()
    assert meta["width"] == 300 and meta["height"] == 400 and meta["orientation"] == 6
    assert meta["exif_lat"] == pytest.approx(SITE[0], abs=1e-5)
    assert meta["exif_taken_at"].startswith("2025-01-15T15:30:00")  # -05:00 → UTC
    assert meta["derivatives_ready"] is True
    assert meta["urls"] == service.public_photo_urls(get_settings(), sha).model_dump()
    db = _db()
    try:
        async with db.transaction() as tx:
            urls = await service.public_photo_urls_for_work_order(tx, db.settings, wo["id"])
            single = await service.public_photo_url(tx, wo["id"], db.settings)
            assert await service.public_photo_url(tx, 999_999, db.settings) is None
    finally:
        await db.dispose()
    assert [u.display for u in urls] == [f"{get_settings().public_url}{display_url}"]
    assert single == urls[0].display


async def test_tampered_original_is_detected(
    client: Any, crew: dict[str, str], dispatcher: dict[str, str]
) -> None:
    data = _jpeg(seed=21)
    sha = _sha(data)
    await upload(client, crew, data)
    verified = await client.get(f"/api/v1/photos/{sha}/verify", headers=dispatcher)
    assert verified.json() == {"sha256": sha, "ok": True, "actual_sha256": sha,
                               "size_bytes": len(data)}  # fmt: skip
    tampered = bytearray(data)
    tampered[-10] ^= 0xFF
    await overwrite_original(sha, bytes(tampered))
    response = await client.get(f"/api/v1/photos/{sha}/original", headers=dispatcher)
    assert response.status_code == 409
    assert response.json()["code"] == "photo_integrity_failed"
    verified = (await client.get(f"/api/v1/photos/{sha}/verify", headers=dispatcher)).json()
    assert verified["ok"] is False and verified["actual_sha256"] == _sha(bytes(tampered))


@pytest.mark.skipif(
    not __import__("pillow_heif").libheif_info().get("HEIF"), reason="no HEVC encoder"
)
async def test_heic_round_trip(client: Any, crew: dict[str, str]) -> None:
    data = encode(photo((320, 240)), "HEIF", quality=80)
    sha = _sha(data)
    done = await upload(client, crew, data)
    assert done.status_code == 200 and done.json()["complete"] is True, done.text
    wo = await _new_work_order(client)
    await attach(wo["id"], sha)
    await copies_made(client)
    assert await run_photo_jobs() == 0
    response = await client.get(f"/media/photos/{sha}/display.jpg")
    assert response.status_code == 200
    img = Image.open(io.BytesIO(response.content))
    assert img.format == "JPEG" and img.size == (320, 240)
    assert _is_red(img.getpixel((3, 3)))


async def test_polyglot_keeps_nothing_appended(client: Any, crew: dict[str, str]) -> None:
    data = _jpeg(seed=22) + _zip()
    sha = _sha(data)
    assert (await upload(client, crew, data)).json()["complete"] is True
    wo = await _new_work_order(client)
    await attach(wo["id"], sha)
    await copies_made(client)
    await run_photo_jobs()
    for name in ("display", "thumb"):
        public = (await client.get(f"/media/photos/{sha}/{name}.jpg")).content
        assert b"POLYGLOT-MARKER" not in public and b"PK\x03\x04" not in public


async def test_ingest_photo_bytes_for_open311(client: Any) -> None:
    settings = get_settings()
    db = _db()
    store = service.make_photo_store(settings)
    data = _jpeg(seed=23, gps=SITE)
    try:
        async with db.transaction() as tx:
            sha = await uploads.ingest_photo_bytes(tx, store, data, settings)
        assert sha == _sha(data)
        async with db.transaction() as tx:
            assert await uploads.ingest_photo_bytes(tx, store, data, settings) == sha  # idempotent
            stored = await tx.get(Photo, sha)
            assert stored is not None and stored.exif_lat is not None
        assert await store.has(sha)
        for bad, status in ((b"", 422), (b"nope" * 10, 415), (data, 413)):
            limit = replace(settings, photo_max_bytes=100) if bad is data else settings
            with pytest.raises(DomainError) as caught:
                async with db.transaction() as tx:
                    await uploads.ingest_photo_bytes(tx, store, bad, limit)
            assert caught.value.status == status
    finally:
        await db.dispose()


# --------------------------------------------------------------------------- evidence


async def _evidence(client: Any, headers: dict[str, str], wo_id: int, language: str = "fr") -> Any:
    response = await client.get(
        f"/api/v1/work-orders/{wo_id}/photos", headers={**headers, "Accept-Language": language}
    )
    assert response.status_code == 200, response.text
    return response.json()


async def test_distance_and_time_flags(
    client: Any, crew: dict[str, str], dispatcher: dict[str, str]
) -> None:
    wo = await _new_work_order(client, "bulky-items")
    # 1. far from the site (device position), bytes not there yet
    far = _jpeg(seed=30)
    far_id = await attach(wo["id"], _sha(far), lat_lon=FAR)
    # 2. no device position; EXIF GPS near the site, shot three days before it was attached
    old = _jpeg(
        seed=31, gps=NEAR, taken=(utcnow() - timedelta(days=3)).strftime("%Y:%m:%d %H:%M:%S")
    )
    old_id = await attach(wo["id"], _sha(old), lat_lon=None, captured_ago=timedelta(minutes=2))
    # 3. device near the site but EXIF GPS far away
    liar = _jpeg(seed=32, gps=FAR)
    liar_id = await attach(wo["id"], _sha(liar), lat_lon=NEAR)

    body = await _evidence(client, dispatcher, wo["id"], "en")
    photos = {p["id"]: p for p in body["photos"]}
    assert photos[far_id]["distance_m"] == pytest.approx(500, abs=15)
    assert photos[far_id]["flags"] == ["awaiting_upload", "far_from_site"]
    assert photos[far_id]["uploaded"] is False and photos[far_id]["photo"] is None
    assert "from the job site" in photos[far_id]["flag_labels"][1]
    assert photos[old_id]["distance_m"] is None
    assert photos[old_id]["flags"] == ["awaiting_upload"]

    for data in (far, old, liar):  # the bytes arrive after the attachments
        assert (await upload(client, crew, data)).json()["complete"] is True
    body = await _evidence(client, dispatcher, wo["id"])
    photos = {p["id"]: p for p in body["photos"]}
    assert photos[far_id]["flags"] == ["far_from_site"]
    assert photos[far_id]["uploaded"] is True
    assert photos[old_id]["distance_m"] < 20  # from EXIF, now that the bytes are here
    assert photos[old_id]["flags"] == ["exif_time_mismatch"]
    assert photos[liar_id]["distance_m"] < 20
    assert photos[liar_id]["flags"] == ["exif_location_mismatch"]
    assert body["status"] == "open" and body["required"] == ["after"]

    # completion: the photo shot three days ago is now also "long before completion"
    await _complete(client, crew, wo["id"])
    body = await _evidence(client, dispatcher, wo["id"])
    photos = {p["id"]: p for p in body["photos"]}
    assert photos[old_id]["flags"] == ["taken_long_before_completion", "exif_time_mismatch"]
    assert body["status"] == "complete" and body["missing"] == []


async def test_missing_evidence_lifecycle(
    client: Any, crew: dict[str, str], dispatcher: dict[str, str]
) -> None:
    wo = await _new_work_order(client, "illegal-dumping")  # requires before + after
    before = _jpeg(seed=40)
    await upload(client, crew, before)
    await attach(wo["id"], _sha(before), kind="before", lat_lon=NEAR)
    await _complete(client, crew, wo["id"])  # accepted without the "after" photo
    detail = await client.get(f"/api/v1/work-orders/{wo['id']}", headers=dispatcher)
    assert detail.json()["status"] == "completed"
    body = await _evidence(client, dispatcher, wo["id"])
    assert body["required"] == ["before", "after"]
    assert body["missing"] == ["after"] and body["status"] == "pending"

    settings = get_settings()
    db = _db()
    try:
        assert await jobs.check_missing_photos(db, settings) == 0  # still within the delay
        async with db.transaction() as tx:  # the delay passes
            await tx.execute(
                update(WorkOrderEvidence)
                .where(WorkOrderEvidence.work_order_id == wo["id"])
                .values(due_at=utcnow() - timedelta(minutes=1))
            )
        assert await jobs.check_missing_photos(db, settings) == 1
        assert await jobs.check_missing_photos(db, settings) == 0
        body = await _evidence(client, dispatcher, wo["id"])
        assert body["status"] == "flagged" and body["flagged_at"] is not None
        assert body["missing"] == ["after"]

        # the attachment arrives, the bytes not yet: still flagged
        after = _jpeg(seed=41)
        await attach(wo["id"], _sha(after), kind="after", lat_lon=NEAR)
        body = await _evidence(client, dispatcher, wo["id"])
        assert body["status"] == "flagged" and body["missing"] == ["after"]
        # the bytes arrive: resolved
        assert (await upload(client, crew, after)).json()["complete"] is True
        body = await _evidence(client, dispatcher, wo["id"])
        assert body["status"] == "complete" and body["missing"] == []
        assert await jobs.check_missing_photos(db, settings) == 0

        # reopening drops the record; completing again re-checks (now complete at once)
        reopen = await client.post(
            f"/api/v1/work-orders/{wo['id']}/transition",
            json={"action": "reopen", "reason": "mauvais endroit"},
            headers=dispatcher,
        )
        assert reopen.status_code == 200, reopen.text
        assert (await _evidence(client, dispatcher, wo["id"]))["status"] == "open"
        async with db.transaction() as tx:
            assert await tx.get(WorkOrderEvidence, wo["id"]) is None
    finally:
        await db.dispose()


async def test_evidence_not_required_and_unknown_order(
    client: Any, crew: dict[str, str], dispatcher: dict[str, str]
) -> None:
    wo = await _new_work_order(client, "damaged-bin")  # no evidence required
    await _complete(client, crew, wo["id"])
    body = await _evidence(client, dispatcher, wo["id"])
    assert body["status"] == "not_required" and body["missing"] == []
    assert (
        await client.get("/api/v1/work-orders/999999/photos", headers=dispatcher)
    ).status_code == 404
    assert (
        await client.get(f"/api/v1/work-orders/{wo['id']}/photos", headers=crew)
    ).status_code == 403


def test_settings_defaults() -> None:
    assert Settings.__dataclass_fields__["photo_max_bytes"].default == 25_000_000
    assert get_settings().photo_dir == Path(get_settings().var_dir / "photos")
