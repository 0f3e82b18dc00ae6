"""The citizen's completion push carries the completion photo (issue 17).

End to end through HTTP and the real push service (tests/support/push_service.py): a crew
uploads its photo and completes through the sync API; the public copies are made as the upload
completes (not at the next photo-job run); the completion push waits a bounded time for them
(TOURNEE_PUSH_PHOTO_WAIT_SECONDS) and the decrypted push names the public display copy. A photo
whose bytes never come does not hold the push longer than the wait. The fast path goes through
the durable ``photo_job`` claim: a copy it claimed and never finished (a crash) is made by the
job after the lease, and it never makes a copy the job holds.
"""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from PIL import Image
from sqlalchemy import select, update

from server.db import Database
from server.dbtypes import utcnow
from server.notify.service import load_vapid_keys
from server.photos import jobs, service
from server.photos.models import Photo, PhotoJob
from server.settings import Settings
from tests.integration.test_photos_api import NEAR, _jpeg, _sha, upload
from tests.support.notify import (
    dispatcher,
    new_request,
    payloads,
    push_app,
    push_settings,
    run_push_job,
    subscribe,
    work_order_for,
)
from tests.support.push_service import PushService
from tests.support.sync_helpers import Device, device, new_uuid

WAIT = 4.0


@pytest.fixture(name="settings")
def photo_push_settings(tmp_path: Path) -> Settings:
    return push_settings(tmp_path, push_photo_wait_seconds=WAIT, photo_dir=tmp_path / "photos")


PUSH_FIXTURES = (push_app,)  # this module's `app` (over the settings above)


@pytest.fixture
def push_service(settings: Settings) -> Iterator[PushService]:
    with PushService() as service_:
        service_.expect_application_server_key(load_vapid_keys(settings).public_key_b64url)
        yield service_


async def _order_on_the_crew(
    client: Any, push_service: PushService, settings: Settings
) -> tuple[int, Device, dict[str, str]]:
    """A citizen's request, subscribed; its work order assigned to ngauthier's crew; the
    confirmation and the scheduled push delivered, in that order (a confirmation is never
    superseded: docs/adr/0044). Returns (order id, phone, dispatcher)."""
    headers = await dispatcher(client)
    request = await new_request(client, headers)
    answer = await subscribe(client, request["tracking_token"], push_service.new_subscription())
    assert answer.status_code in (200, 201), answer.text
    wo_id = await work_order_for(client, headers, [request["id"]])
    phone = await device(client, "ngauthier")
    assigned = await client.post(
        f"/api/v1/work-orders/{wo_id}/assign", json={"crew_id": phone.crew_id}, headers=headers
    )
    assert assigned.status_code == 200, assigned.text
    await run_push_job(settings)
    assert [p["kind"] for p in payloads(push_service.received)] == ["received", "scheduled"]
    await phone.pull()
    return wo_id, phone, headers


async def _attach_and_complete(phone: Device, wo_id: int, sha256: str) -> None:
    version = phone.order(wo_id)["version"]
    answer = await phone.push(
        phone.mutation(
            "workorder.attach_photo@1",
            {
                "work_order_id": wo_id,
                "photo_id": new_uuid(),
                "sha256": sha256,
                "kind": "after",
                "lat": NEAR[0],
                "lon": NEAR[1],
            },
            version,
        ),
        phone.mutation(
            "workorder.complete@1", {"work_order_id": wo_id, "outcome": "fixed"}, version
        ),
    )
    assert [r["outcome"] for r in answer["results"]] == ["applied", "applied"], answer


async def test_the_completion_push_carries_the_photo(
    client: Any, settings: Settings, push_service: PushService
) -> None:
    wo_id, phone, _ = await _order_on_the_crew(client, push_service, settings)
    after = _jpeg(seed=41)
    uploaded = await upload(client, phone.headers, after)
    assert uploaded.status_code == 200 and uploaded.json()["complete"], uploaded.text
    await _attach_and_complete(phone, wo_id, _sha(after))
    completed_at = time.monotonic()

    # the push job as the scheduler runs it, only more often: no photo job is ever run here
    while len(push_service.received) < 3 and time.monotonic() - completed_at < WAIT + 3:
        await run_push_job(settings)
        await asyncio.sleep(0.2)
    took = time.monotonic() - completed_at
    sent = payloads(push_service.received)
    assert [p["kind"] for p in sent] == ["received", "scheduled", "completed"]
    assert took < WAIT + 2, took
    image = sent[2].get("image")
    assert image is not None, sent[2]
    assert image == service.public_photo_urls(settings, _sha(after)).display
    served = await client.get(urlsplit(image).path)
    assert served.status_code == 200
    assert served.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(served.content)).format == "JPEG"
    assert served.content != after
    assert push_service.rejections == []


async def test_a_photo_that_never_comes_holds_the_push_only_the_wait(
    client: Any, settings: Settings, push_service: PushService
) -> None:
    wo_id, phone, _ = await _order_on_the_crew(client, push_service, settings)
    # attached, but its bytes are still on the phone
    await _attach_and_complete(phone, wo_id, _sha(_jpeg(seed=42)))

    report = await run_push_job(settings)
    assert report.waited_for_photo == 1 and report.sent == 0
    assert len(push_service.received) == 2

    report = await run_push_job(settings, now=utcnow() + timedelta(seconds=WAIT + 0.5))
    assert report.delivered == 1
    completed = payloads(push_service.received)[2]
    assert completed["kind"] == "completed" and "image" not in completed


async def test_without_a_photo_the_push_does_not_wait(
    client: Any, settings: Settings, push_service: PushService
) -> None:
    wo_id, phone, _ = await _order_on_the_crew(client, push_service, settings)
    version = phone.order(wo_id)["version"]
    await phone.push(
        phone.mutation(
            "workorder.complete@1", {"work_order_id": wo_id, "outcome": "fixed"}, version
        )
    )
    report = await run_push_job(settings)
    assert report.delivered == 1 and report.waited_for_photo == 0
    assert "image" not in payloads(push_service.received)[2]


async def test_a_failed_copy_does_not_hold_the_push(
    client: Any, settings: Settings, push_service: PushService
) -> None:
    wo_id, phone, _ = await _order_on_the_crew(client, push_service, settings)
    after = _jpeg(seed=43)
    assert (await upload(client, phone.headers, after)).json()["complete"]
    await client.app.state.photo_copies.drain(timeout=10)
    db = Database(settings)
    try:  # the copy failed for good (as after a decoder change): nothing is coming
        async with db.transaction() as tx:
            await tx.execute(
                update(PhotoJob).where(PhotoJob.sha256 == _sha(after)).values(status="failed")  # type: ignore[arg-type]
            )
            await tx.execute(
                update(Photo).where(Photo.sha256 == _sha(after)).values(derivatives_at=None)  # type: ignore[arg-type]
            )
    finally:
        await db.dispose()
    await _attach_and_complete(phone, wo_id, _sha(after))
    report = await run_push_job(settings)
    assert report.delivered == 1 and report.waited_for_photo == 0
    assert "image" not in payloads(push_service.received)[2]


async def _job(db: Database, sha256: str) -> tuple[PhotoJob, Photo]:
    async with db.transaction() as tx:
        job = (await tx.execute(select(PhotoJob).where(PhotoJob.sha256 == sha256))).scalar_one()
        photo = await tx.get(Photo, sha256)
        assert photo is not None
        return job, photo


async def test_copies_are_made_as_the_upload_completes(client: Any, settings: Settings) -> None:
    crew = (await device(client, "ngauthier")).headers
    data = _jpeg(seed=44)
    assert (await upload(client, crew, data)).json()["complete"]
    await client.app.state.photo_copies.drain(timeout=10)  # no photo job is run here
    db = Database(settings)
    try:
        job, photo = await _job(db, _sha(data))
        assert job.status == "done" and job.attempts == 1 and photo.derivatives_at is not None
    finally:
        await db.dispose()


async def test_a_claimed_copy_is_never_lost_nor_made_twice(client: Any, settings: Settings) -> None:
    client.app.state.photo_copies.workers = 0  # this process makes no copy at upload
    crew = (await device(client, "ngauthier")).headers
    data = _jpeg(seed=45)
    sha = _sha(data)
    assert (await upload(client, crew, data)).json()["complete"]
    db = Database(settings)
    store = service.make_photo_store(settings)
    try:
        # another process's fast path claimed the copy (its lease, as the claim writes it) and
        # died before making it
        async with db.transaction() as tx:
            await tx.execute(
                update(PhotoJob)
                .where(PhotoJob.sha256 == sha)  # type: ignore[arg-type]
                .values(attempts=1, run_after=utcnow() + jobs.LEASE)
            )
        assert await jobs.make_derivatives_now(db, store, sha) == 0  # held: not made twice
        assert await jobs.process_pending_photo_jobs(db, store) == 0
        job, photo = await _job(db, sha)
        assert job.status == "pending" and photo.derivatives_at is None
        async with db.transaction() as tx:  # the lease runs out
            await tx.execute(
                update(PhotoJob)
                .where(PhotoJob.sha256 == sha)  # type: ignore[arg-type]
                .values(run_after=utcnow() - timedelta(seconds=1))
            )
        assert await jobs.process_pending_photo_jobs(db, store) == 1
        job, photo = await _job(db, sha)
        assert job.status == "done" and job.attempts == 2 and photo.derivatives_at is not None
        assert await jobs.make_derivatives_now(db, store, sha) == 0
    finally:
        await db.dispose()
