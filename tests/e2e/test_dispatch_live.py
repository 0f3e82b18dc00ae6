"""The dispatcher console follows changes made elsewhere over SSE (/api/v1/live/events), without a
reload and well before its 15 s poll (disabled here, so only the stream can refresh the page)."""

from __future__ import annotations

import time

from playwright.sync_api import expect

from tests.e2e.conftest import CITY, Api, Browsers, open_console
from tests.e2e.test_crew_offline import SNOW_1

# The console's fallback poll is a 15 s setInterval: drop it, so what arrives came by the stream.
NO_POLL = """
const realSetInterval = window.setInterval;
window.setInterval = (fn, ms, ...args) => (ms === 15000 ? 0 : realSetInterval(fn, ms, ...args));
"""
LIVE_S = 5


def test_console_follows_changes_made_by_another_dispatcher(browsers: Browsers, api: Api) -> None:
    console = open_console(browsers, "dispatch-live", init_script=NO_POLL)
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


def test_live_redraw_never_eats_a_press_or_a_typed_reason(browsers: Browsers, api: Api) -> None:
    """A change arriving while the dispatcher types a cancel reason, then while the Cancel button
    is held down, must neither wipe the reason nor replace the button under the pointer (the
    click would land on nothing and the cancellation would silently not happen)."""
    other = api.login("repartiteur2", "repartition-demo")
    target = api.assigned_work_order(other, SNOW_1)["id"]
    console = open_console(browsers, "dispatch-press", init_script=NO_POLL)
    expect(console.locator("#live-state")).to_have_attribute("data-i18n", "live_connected")
    row = console.locator(f'#order-list li[data-work-order="{target}"]')
    row.locator(".cancel-reason").fill("Doublon signalé par le 311")

    def change_elsewhere(address: str) -> int:
        made = api.post(
            "/api/v1/work-orders",
            {
                "service_code": "snow-sidewalk",
                "address": address,
                "lat": CITY["latitude"],
                "lon": CITY["longitude"],
            },
            other,
        )
        return int(made["id"])

    # While typing: the event is held back, the reason stays.
    typed_over = change_elsewhere("10, rue des Jardins")
    console.wait_for_timeout(1500)
    expect(row.locator(".cancel-reason")).to_have_value("Doublon signalé par le 311")

    # While the button is held down: still no redraw under the pointer.
    row.locator("button.cancel").scroll_into_view_if_needed()
    box = row.locator("button.cancel").bounding_box()
    assert box is not None
    console.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    console.mouse.down()
    pressed_over = change_elsewhere("12, rue des Jardins")
    console.wait_for_timeout(1500)
    console.mouse.up()

    expect(row).to_have_count(0)
    assert api.get(f"/api/v1/work-orders/{target}", other)["status"] == "cancelled"
    # What was held back is drawn once the press is over.
    for made in (typed_over, pressed_over):
        expect(console.locator(f'#order-list li[data-work-order="{made}"]')).to_be_visible(
            timeout=LIVE_S * 1000
        )


def test_overdue_notice_shown_and_acknowledged(browsers: Browsers, api: Api) -> None:
    """The SLA job's notice reaches the console; "Vu" takes it off (for every dispatcher)."""
    import asyncio
    import threading
    from datetime import datetime, timedelta

    from server.db import Database
    from server.jobs import escalate_overdue_work_orders
    from server.settings import get_settings

    dispatcher = api.login("repartiteur1", "repartition-demo")
    order = api.assigned_work_order(dispatcher, SNOW_1)
    due_at = datetime.fromisoformat(order["due_at"])

    console = open_console(browsers, "dispatch-notice")
    expect(console.locator("#notices h2")).to_be_visible()

    async def escalate() -> list[int]:
        settings = get_settings()
        db = Database(settings)
        try:
            return await escalate_overdue_work_orders(
                db, settings, now=due_at + timedelta(minutes=30)
            )
        finally:
            await db.dispose()

    escalated: list[int] = []
    worker = threading.Thread(target=lambda: escalated.extend(asyncio.run(escalate())))
    worker.start()
    worker.join()
    assert order["id"] in escalated

    console.click("#dispatch-refresh")  # (live delivery is the scheduler's: tested in integration)
    notice = console.locator(
        f'#notice-list li[data-kind="sla_overdue"][data-work-order="{order["id"]}"]'
    )
    expect(notice).to_contain_text("30 min")
    notice.locator("button.acknowledge").click()
    expect(notice).to_have_count(0)
    assert api.get("/api/v1/notices", dispatcher)["items"] == []
