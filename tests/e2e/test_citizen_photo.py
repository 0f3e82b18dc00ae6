"""The citizen's tracking page shows the public completion photo once the crew's "after" photo
has been uploaded, attached through sync and its public copies made."""

from __future__ import annotations

import asyncio
import hashlib
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

from playwright.sync_api import expect

from tests.e2e.conftest import CITY, Api, Browsers, jpeg_bytes
from tests.e2e.test_crew_offline import SNOW_1


async def _make_public_copies() -> int:
    from server.db import Database
    from server.photos import jobs, service
    from server.settings import get_settings

    db = Database(get_settings())
    try:
        return await jobs.process_pending_photo_jobs(db, service.make_photo_store(db.settings), 10)
    finally:
        await db.dispose()


def test_tracking_page_shows_the_completion_photo(browsers: Browsers, api: Api) -> None:
    token = api.post(
        "/api/v1/public/requests",
        {
            "service_code": "snow-sidewalk",
            "address": "40, rue Saint-Jean",
            "description": "Trottoir glacé",
            "lat": CITY["latitude"],
            "lon": CITY["longitude"],
        },
    )["tracking_token"]
    dispatcher = api.login("repartiteur1", "repartition-demo")
    queued = api.get("/api/v1/requests?status=received&unassigned=true", dispatcher)["items"]
    request_id = next(r["id"] for r in queued if r["address"] == "40, rue Saint-Jean")
    wid = api.post(
        "/api/v1/work-orders",
        {"request_ids": [request_id], "crew_id": api.crew_id(dispatcher, SNOW_1)},
        dispatcher,
    )["id"]

    phone = api.login("mtremblay", "equipe-demo", device_label="Téléphone photo citoyen")
    data = jpeg_bytes(640, 480)
    sha = hashlib.sha256(data).hexdigest()
    upload = api.post("/api/v1/photos/uploads", {"sha256": sha, "length": len(data)}, phone)
    patched = api.http.patch(
        f"/api/v1/photos/uploads/{upload['id']}",
        content=data,
        headers={
            **phone,
            "Upload-Offset": "0",
            "Content-Type": "application/offset+octet-stream",
        },
    )
    assert patched.status_code == 200, patched.text
    pushed = api.post(
        "/sync/v1/push",
        {
            "protocol": 1,
            "schema_version": 1,
            "client_id": "citizen-photo-phone",
            "mutations": [
                {
                    "id": 1,
                    "name": "workorder.attach_photo@1",
                    "args": {
                        "work_order_id": wid,
                        "photo_id": str(uuid.uuid4()),
                        "sha256": sha,
                        "kind": "after",
                    },
                }
            ],
        },
        phone,
    )
    assert pushed["results"][0]["outcome"] == "applied", pushed
    # The public copies are made as the upload completes (docs/adr/0032); the photo job is the
    # durable catch-up, run here in case the immediate copy has not finished yet.
    photo = None
    deadline = time.monotonic() + 15
    while not photo and time.monotonic() < deadline:
        with ThreadPoolExecutor(1) as pool:  # the Playwright sync API holds this thread's loop
            pool.submit(asyncio.run, _make_public_copies()).result()
        photo = api.get(f"/api/v1/public/requests/{token}")["completion_photo"]
        if not photo:
            time.sleep(0.2)
    assert photo and sha in photo["display"]

    page = browsers.context("citizen-photo").new_page()
    page.goto(f"/#/suivi/{token}")
    image = page.locator("#completion-photo")
    expect(image).to_have_attribute("src", photo["display"])
    expect(image).to_have_attribute("alt", "Photo des travaux terminés")
