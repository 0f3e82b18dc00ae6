"""The citizen's tracking page offers the public completion photo: the first "after" photo of
the linked work order, once its public copies are made (never the original, never crew data)."""

from __future__ import annotations

import io
from typing import Any
from urllib.parse import urlsplit

from PIL import Image

from tests.integration.test_photos_api import (
    NEAR,
    SITE,
    _jpeg,
    _sha,
    attach,
    run_photo_jobs,
    upload,
)
from tests.support.data import login


async def test_tracking_offers_the_public_completion_photo(client: Any) -> None:
    submitted = await client.post(
        "/api/v1/public/requests",
        json={
            "service_code": "illegal-dumping",
            "lat": SITE[0],
            "lon": SITE[1],
            "address": "100, rue Saint-Jean",
            "description": "Matelas sur le trottoir",
            "reporter_name": "Alex Citoyen",
            "reporter_email": "alex@example.org",
        },
    )
    assert submitted.status_code == 201, submitted.text
    tracking = f"/api/v1/public/requests/{submitted.json()['tracking_token']}"
    assert (await client.get(tracking)).json()["completion_photo"] is None

    dispatcher = await login(client, "repartiteur1", "dispatcher")
    queue = (await client.get("/api/v1/requests", headers=dispatcher)).json()["items"]
    crews = (await client.get("/api/v1/crews", headers=dispatcher, params={"kind": "waste"})).json()
    crew_id = next(c["id"] for c in crews if c["code"] == "waste-cite-limoilou-1")
    created = await client.post(
        "/api/v1/work-orders",
        json={"request_ids": [queue[0]["id"]], "crew_id": crew_id},
        headers=dispatcher,
    )
    assert created.status_code == 201, created.text
    wid = created.json()["id"]

    client.app.state.photo_copies.workers = 0  # here the photo job makes the copies
    crew = await login(client, "ngauthier", "crew", device_label="Téléphone suivi")
    before, after, later = _jpeg(seed=11), _jpeg(seed=12), _jpeg(seed=13)
    for data in (before, after, later):
        assert (await upload(client, crew, data)).status_code == 200
    await attach(wid, _sha(before), kind="before", lat_lon=NEAR)
    await attach(wid, _sha(after), kind="after", lat_lon=NEAR)
    await attach(wid, _sha(later), kind="after", lat_lon=NEAR)
    # attached, but the public copies are not made yet: nothing to show
    assert (await client.get(tracking)).json()["completion_photo"] is None

    assert await run_photo_jobs() >= 1
    status = (await client.get(tracking)).json()
    photo = status["completion_photo"]
    assert photo is not None
    assert set(photo) == {"display", "thumb"}
    assert _sha(after) in photo["display"] and _sha(after) in photo["thumb"]
    assert "original" not in photo["display"] + photo["thumb"]
    # the citizen's view holds no contact data and no crew
    text = str(status)
    assert "Alex" not in text and "alex@" not in text and "crew" not in text
    for url, width in ((photo["display"], 400), (photo["thumb"], 320)):
        served = await client.get(urlsplit(url).path)
        assert served.status_code == 200
        assert served.headers["content-type"] == "image/jpeg"
        image = Image.open(io.BytesIO(served.content))
        assert image.format == "JPEG" and image.width <= width
        assert served.content != after
