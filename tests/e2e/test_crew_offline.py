"""A crew phone works a whole job with no network, survives a browser restart, then syncs."""

from __future__ import annotations

import hashlib
from typing import Any

from playwright.sync_api import expect

from tests.e2e.conftest import Api, Browsers, jpeg_bytes

SNOW_1 = "snow-cite-limoilou-1"  # mtremblay's crew


DETAIL_CACHED = """(id) => new Promise((resolve) => {
  const open = indexedDB.open("tournee");
  open.onerror = () => resolve(false);
  open.onsuccess = () => {
    const db = open.result;
    const read = db.transaction("details").objectStore("details").get(id);
    read.onsuccess = () => { resolve(Boolean(read.result)); db.close(); };
    read.onerror = () => { resolve(false); db.close(); };
  };
})"""


def sign_in_crew(page: Any, username: str = "mtremblay") -> None:
    page.goto("/#/equipe")
    page.fill("#crew-username", username)
    page.fill("#crew-password", "equipe-demo")
    page.click("#crew-signin button[type=submit]")
    expect(page.locator("#sync-state")).to_have_attribute("data-state", "idle")


def wait_controlled(page: Any) -> None:
    """The service worker controls the page (its cache holds the shell)."""
    page.wait_for_function("() => navigator.serviceWorker.controller !== null")


def test_offline_shift_with_restart_then_sync(browsers: Browsers, api: Api) -> None:
    dispatcher = api.login("repartiteur1", "repartition-demo")
    order = api.assigned_work_order(dispatcher, SNOW_1)
    wid = order["id"]

    context = browsers.context("crew-phone")
    page = context.new_page()
    sign_in_crew(page)
    expect(page.locator(f'.work-item[data-work-order="{wid}"]')).to_be_visible()
    wait_controlled(page)
    # The order's history is fetched after the pull, without the crew opening it online.
    page.wait_for_function(DETAIL_CACHED, arg=wid)

    # No network from here on: a reload renders from the worker's cache and IndexedDB.
    context.set_offline(True)
    page.reload()
    expect(page.locator("#net-state")).to_have_attribute("data-i18n", "status_offline")
    page.click(f'.work-item[data-work-order="{wid}"]')
    expect(page.locator("#order-detail-online li").first).to_be_visible()
    page.click("#act-on-site")
    expect(page.locator("#work-order-detail .badge[data-status]").first).to_have_attribute(
        "data-status", "on_site"
    )
    page.fill("#note-body", "Glace cassée, abrasif épandu")
    page.click("#act-add-note")
    expect(page.locator("#note-list li")).to_have_count(1)
    photo = jpeg_bytes()
    sha = hashlib.sha256(photo).hexdigest()
    page.set_input_files(
        "#photo-input", files=[{"name": "chantier.jpg", "mimeType": "image/jpeg", "buffer": photo}]
    )
    expect(page.locator("#photo-list li")).to_have_count(1)
    page.select_option("#complete-outcome", "fixed")
    page.click("#act-complete")
    expect(page.locator("#pending-count")).to_have_attribute("data-count", "4")
    context.close()

    # The browser is reopened, still offline: the outbox is intact.
    context = browsers.context("crew-phone", offline=True)
    page = context.pages[0] if context.pages else context.new_page()
    page.goto("/#/equipe")
    expect(page.locator("#pending-count")).to_have_attribute("data-count", "4")
    expect(page.locator(f'.work-item[data-work-order="{wid}"] [data-status]')).to_have_attribute(
        "data-status", "completed"
    )

    # Back online: the app syncs by itself (the "online" event).
    context.set_offline(False)
    expect(page.locator("#pending-count")).to_have_attribute("data-count", "0", timeout=20_000)
    page.click(f'.work-item[data-work-order="{wid}"]')
    expect(page.locator("#photo-list li")).to_have_attribute("data-state", "confirmed")

    value = api.get(f"/api/v1/sync/work-orders/{wid}", dispatcher)
    assert value["status"] == "completed"
    assert value["outcome"] == "fixed"
    assert [n["body"] for n in value["notes"]] == ["Glace cassée, abrasif épandu"]
    assert [p["sha256"] for p in value["photos"]] == [sha]
    assert value["photos"][0]["received"] is True
    original = api.http.get(f"/api/v1/photos/{sha}/original", headers=dispatcher)
    assert original.status_code == 200
    assert hashlib.sha256(original.content).hexdigest() == sha
