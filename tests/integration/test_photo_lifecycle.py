"""A life cycle for every photo file (issue 17): retention per kind, a purge job safe on several
processes that never deletes what a live row refers to, and a dispatcher's withdrawal of a
photo's public copies. The clock is a parameter (``now``): nothing sleeps, nothing is patched."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select, update

from server.db import Database
from server.dbtypes import utcnow
from server.jobs import run_photo_jobs
from server.photos import jobs, service
from server.photos.models import Photo, PhotoJob, PhotoUpload, RequestPhoto
from server.photos.store import DISPLAY, derived_key, upload_key
from server.settings import get_settings
from server.workorders.models import WorkOrder
from tests.integration.test_open311 import V2, bulky, json_of, new_key
from tests.integration.test_open311 import _jpeg as small_jpeg
from tests.integration.test_photos_api import (
    NEAR,
    UPLOADS,
    _complete,
    _jpeg,
    _new_work_order,
    _sha,
    attach,
    copies_made,
    patch,
    upload,
)
from tests.support.data import login

DAY = timedelta(days=1)


@pytest.fixture
async def crew(client: Any) -> dict[str, str]:
    return await login(client, "ngauthier", "crew", device_label="Téléphone cycle de vie")


async def _photo(db: Database, sha256: str) -> Photo | None:
    async with db.transaction() as tx:
        return await tx.get(Photo, sha256)


async def _history(client: Any, dispatcher: dict[str, str], wo_id: int) -> list[dict[str, Any]]:
    detail = (await client.get(f"/api/v1/work-orders/{wo_id}", headers=dispatcher)).json()
    return list(detail["history"])


async def test_withdrawn_copies_leave_the_store_the_tracking_page_and_open311(
    client: Any, crew: dict[str, str], dispatcher: dict[str, str]
) -> None:
    settings = get_settings()
    db = Database(settings)
    store = service.make_photo_store(settings)
    try:
        # a citizen's request through Open311 with a photo, and its work order's "after" photo
        key = await new_key(client)
        sent = await client.post(
            f"{V2}/requests.json",
            data=bulky(key),
            files={"media": ("divan.jpg", small_jpeg(), "image/jpeg")},
        )
        request_id = int(json_of(sent, 201)[0]["service_request_id"])
        async with db.transaction() as tx:
            citizen_sha = (
                await tx.execute(
                    select(RequestPhoto.sha256).where(RequestPhoto.service_request_id == request_id)
                )
            ).scalar_one()
        wo = await _new_work_order(client)
        after = _jpeg(seed=60)
        assert (await upload(client, crew, after)).json()["complete"]
        await attach(wo["id"], _sha(after), lat_lon=NEAR)
        await _complete(client, crew, wo["id"])
        await copies_made(client)
        assert await jobs.process_pending_photo_jobs(db, store) == 1  # the Open311 photo
        display = service.public_photo_urls(settings, _sha(after)).display
        assert (await client.get(urlsplit(display).path)).status_code == 200
        document = json_of(await client.get(f"{V2}/requests/{request_id}.json"))[0]
        assert document["media_url"].endswith(f"/media/photos/{citizen_sha}/display.jpg")

        # a face in shot: the dispatcher withdraws both
        for sha in (_sha(after), citizen_sha):
            refused = await client.post(
                f"/api/v1/photos/{sha}/withdraw", json={"reason": "visage"}, headers=crew
            )
            assert refused.status_code == 403
            empty = await client.post(
                f"/api/v1/photos/{sha}/withdraw", json={"reason": ""}, headers=dispatcher
            )
            assert empty.status_code == 400
            done = await client.post(
                f"/api/v1/photos/{sha}/withdraw",
                json={"reason": "Visage reconnaissable"},
                headers=dispatcher,
            )
            assert done.status_code == 200, done.text
            body = done.json()
            assert body["withdrawn_at"] and body["withdrawn_reason"] == "Visage reconnaissable"
            assert body["derivatives_ready"] is False
            assert await store.get_bytes(derived_key(sha, DISPLAY)) is None
            assert await store.has(sha)  # the original stays, for dispatchers
        again = await client.post(
            f"/api/v1/photos/{citizen_sha}/withdraw", json={"reason": "x"}, headers=dispatcher
        )
        assert again.status_code == 200  # idempotent

        assert (await client.get(urlsplit(display).path)).status_code == 404
        document = json_of(await client.get(f"{V2}/requests/{request_id}.json"))[0]
        assert document["media_url"] is None
        history = await _history(client, dispatcher, wo["id"])
        withdrawn = [e for e in history if e["action"] == "photo_withdrawn"]
        assert len(withdrawn) == 1 and withdrawn[0]["reason"] == "Visage reconnaissable"
        original = await client.get(f"/api/v1/photos/{_sha(after)}/original", headers=dispatcher)
        assert original.status_code == 200 and original.content == after

        # a copy being made when the withdrawal lands is not published, and is removed
        async with db.transaction() as tx:
            await tx.execute(
                update(PhotoJob)
                .where(PhotoJob.sha256 == _sha(after))  # type: ignore[arg-type]
                .values(status="pending", run_after=utcnow() - DAY)
            )
        assert await jobs.process_pending_photo_jobs(db, store) == 0
        assert await store.get_bytes(derived_key(_sha(after), DISPLAY)) is None
        photo = await _photo(db, _sha(after))
        assert photo is not None and photo.derivatives_at is None

        # a process that died before deleting the copies: the next job run deletes them
        await store.put_bytes(derived_key(citizen_sha, DISPLAY), b"left behind")
        report = await run_photo_jobs(db, settings)
        assert report["withdrawn"] == 2
        assert await store.get_bytes(derived_key(citizen_sha, DISPLAY)) is None
    finally:
        await db.dispose()


async def test_orphans_and_abandoned_uploads_are_purged_on_time(
    client: Any, crew: dict[str, str]
) -> None:
    settings = get_settings()
    db = Database(settings)
    store = service.make_photo_store(settings)
    try:
        orphan, kept = _jpeg(seed=61), _jpeg(seed=62)
        for data in (orphan, kept):
            assert (await upload(client, crew, data)).json()["complete"]
        wo = await _new_work_order(client)
        await attach(wo["id"], _sha(kept))
        # an upload cut halfway
        cut = _jpeg(seed=63)
        created = await client.post(
            UPLOADS, json={"sha256": _sha(cut), "length": len(cut)}, headers=crew
        )
        upload_id = created.json()["id"]
        assert (await patch(client, crew, upload_id, 0, cut[:100])).status_code == 200
        await copies_made(client)
        now = utcnow()

        report = await jobs.purge_photos(db, store, settings, now=now + 1 * DAY)
        assert (report.orphans, report.uploads) == (0, 0)
        report = await jobs.purge_photos(
            db, store, settings, now=now + 2 * DAY + timedelta(hours=1)
        )
        assert (report.orphans, report.uploads) == (0, 1)
        async with db.transaction() as tx:
            assert await tx.get(PhotoUpload, upload_id) is None
        assert await store.get_bytes(upload_key(upload_id)) is None

        report = await jobs.purge_photos(
            db, store, settings, now=now + 7 * DAY + timedelta(hours=1)
        )
        assert report.orphans == 1
        assert await _photo(db, _sha(orphan)) is None
        assert not await store.has(_sha(orphan))
        assert await store.get_bytes(derived_key(_sha(orphan), DISPLAY)) is None
        assert (
            await client.head(f"/api/v1/photos/{_sha(orphan)}", headers=crew)
        ).status_code == 404
        # the referenced photo stays, bytes and copies
        assert await _photo(db, _sha(kept)) is not None and await store.has(_sha(kept))
        assert await store.get_bytes(derived_key(_sha(kept), DISPLAY)) is not None
        # an orphan can come back: uploaded again, it is whole again
        assert (await upload(client, crew, orphan)).json()["complete"]
        assert await store.has(_sha(orphan))
    finally:
        await db.dispose()


async def test_originals_of_orders_closed_past_the_retention_are_deleted(
    client: Any, crew: dict[str, str], dispatcher: dict[str, str]
) -> None:
    settings = get_settings()
    db = Database(settings)
    store = service.make_photo_store(settings)
    try:
        closed, shared, still_open = _jpeg(seed=64), _jpeg(seed=65), _jpeg(seed=66)
        for data in (closed, shared, still_open):
            assert (await upload(client, crew, data)).json()["complete"]
        old = await _new_work_order(client)
        await attach(old["id"], _sha(closed))
        await attach(old["id"], _sha(shared))
        await _complete(client, crew, old["id"])
        current = await _new_work_order(client)
        await attach(current["id"], _sha(shared))  # also evidence on an order still open
        await attach(current["id"], _sha(still_open))
        await copies_made(client)
        now = utcnow()
        retention = timedelta(days=settings.photo_retention_days)
        assert settings.photo_retention_days == 730

        report = await jobs.purge_photos(db, store, settings, now=now + retention - DAY)
        assert report.expired == 0
        report = await jobs.purge_photos(db, store, settings, now=now + retention + DAY)
        assert report.expired == 1  # only `closed`: `shared` is also on an open order
        photo = await _photo(db, _sha(closed))
        assert photo is not None and photo.purged_at is not None  # the record stays
        assert not await store.has(_sha(closed))
        gone = await client.get(f"/api/v1/photos/{_sha(closed)}/original", headers=dispatcher)
        assert gone.status_code == 410 and gone.json()["code"] == "photo_purged"
        public = service.public_photo_urls(settings, _sha(closed)).display
        assert (await client.get(urlsplit(public).path)).status_code == 404
        for sha in (_sha(shared), _sha(still_open)):
            assert await store.has(sha)
        # closing the other order starts its photos' retention from its own closing time
        async with db.transaction() as tx:
            await tx.execute(
                update(WorkOrder)
                .where(WorkOrder.id == current["id"])  # type: ignore[arg-type]
                .values(status="cancelled", closed_at=now + DAY)
            )
        report = await jobs.purge_photos(db, store, settings, now=now + retention + DAY)
        assert report.expired == 0
        report = await jobs.purge_photos(db, store, settings, now=now + retention + 3 * DAY)
        assert report.expired == 2
    finally:
        await db.dispose()


async def test_concurrent_purges_delete_each_file_once(client: Any, crew: dict[str, str]) -> None:
    settings = get_settings()
    store = service.make_photo_store(settings)
    photos = [_jpeg(seed=70 + i) for i in range(6)]
    for data in photos:
        assert (await upload(client, crew, data)).json()["complete"]
    await copies_made(client)
    later = utcnow() + 8 * DAY
    dbs = [Database(settings) for _ in range(3)]
    try:
        reports = await asyncio.gather(
            *(jobs.purge_photos(db, store, settings, now=later, batch=2) for db in dbs)
        )
        assert sum(r.orphans for r in reports) == len(photos)
        for data in photos:
            assert await _photo(dbs[0], _sha(data)) is None
            assert not await store.has(_sha(data))
    finally:
        for db in dbs:
            await db.dispose()
