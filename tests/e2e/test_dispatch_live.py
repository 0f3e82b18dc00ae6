"""The dispatcher console follows changes made elsewhere over SSE (/api/v1/live/events), without a
reload and well before its 15 s poll (disabled here, so only the stream can refresh the page)."""

from __future__ import annotations

import time

from playwright.sync_api import expect

from tests.e2e.conftest import CITY, Api, Browsers
from tests.e2e.test_crew_offline import SNOW_1

# The console's fallback poll is a 15 s setInterval: drop it, so what arrives came by the stream.
NO_POLL = """
const realSetInterval = window.setInterval;
window.setInterval = (fn, ms, ...args) => (ms === 15000 ? 0 : realSetInterval(fn, ms, ...args));
"""
LIVE_S = 5


def test_console_follows_changes_made_by_another_dispatcher(browsers: Browsers, api: Api) -> None:
    desk = browsers.context("dispatch-live", viewport={"width": 1280, "height": 900})
    desk.add_init_script(NO_POLL)
    console = desk.new_page()
    console.goto("/#/repartition")
    console.fill("#dispatch-username", "repartiteur1")
    console.fill("#dispatch-password", "repartition-demo")
    console.click("#dispatch-signin button[type=submit]")
    expect(console.locator("#live-state")).to_have_attribute("data-i18n", "live_connected")
    expect(console.locator("#orders h2")).to_be_visible()

    other = api.login("repartiteur2", "repartition-demo")
    order = api.post(
        "/api/v1/work-orders",
        {
            "service_code": "snow-sidewalk",
            "address": "200, rue Saint-Jean",
            "lat": CITY["latitude"],
            "lon": CITY["longitude"],
        },
        other,
    )
    row = console.locator(f'#order-list li[data-work-order="{order["id"]}"]')
    expect(row).to_have_attribute("data-crew", "", timeout=LIVE_S * 1000)

    crew_id = api.crew_id(other, SNOW_1)
    started = time.monotonic()
    api.post(f"/api/v1/work-orders/{order['id']}/assign", {"crew_id": crew_id}, other)
    expect(row).to_have_attribute("data-crew", str(crew_id), timeout=LIVE_S * 1000)
    expect(row).to_have_attribute("data-status", "assigned")
    assert time.monotonic() - started < LIVE_S

    # A citizen's report joins the queue the same way.
    api.post(
        "/api/v1/public/requests",
        {
            "service_code": "pothole",
            "address": "300, rue Saint-Jean",
            "description": "Nid-de-poule",
            "lat": CITY["latitude"],
            "lon": CITY["longitude"],
        },
    )
    queued = api.get("/api/v1/requests?status=received&unassigned=true", other)["items"]
    request_id = next(r["id"] for r in queued if r["address"] == "300, rue Saint-Jean")
    expect(console.locator(f'#request-list li[data-request="{request_id}"]')).to_be_visible(
        timeout=LIVE_S * 1000
    )
