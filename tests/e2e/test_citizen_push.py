"""A citizen reports a problem, follows it and asks for notifications; when the job is completed
the service worker's push handler shows the server's notification.

Headless Chromium has no push service: pushManager.subscribe() never settles, so the page gives
up after a timeout with a clear message, and the push is delivered to the worker through the
DevTools protocol (ServiceWorker.deliverPushMessage) with the payload the server renders."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

from playwright.sync_api import expect

from tests.e2e.conftest import Api, Browsers
from tests.e2e.test_crew_offline import SNOW_1


def registration_id(cdp: Any) -> str:
    found: list[str] = []
    cdp.on(
        "ServiceWorker.workerRegistrationUpdated",
        lambda event: found.extend(r["registrationId"] for r in event["registrations"]),
    )
    cdp.send("ServiceWorker.enable")
    for _ in range(100):
        if found:
            return found[0]
        cdp.send("Runtime.evaluate", {"expression": "1"})  # lets events arrive
    raise AssertionError("no service worker registration")


def test_citizen_reports_follows_and_is_notified(browsers: Browsers, api: Api, live: Any) -> None:
    context = browsers.context("citizen", permissions=["geolocation", "notifications"])
    page = context.new_page()
    page.goto("/#/signaler")
    page.select_option("#report-service", "snow-sidewalk")
    page.fill("#report-address", "25, rue Saint-Jean")
    page.fill("#report-description", "Trottoir glacé devant l'école")
    page.click("#report-locate")
    expect(page.locator("#located")).to_have_attribute("data-i18n", "report_located")
    page.click("#report-submit")
    expect(page.locator("#tracking-status")).to_have_attribute("data-status", "received")
    token = page.evaluate("location.hash").split("/")[-1]
    page.wait_for_function("() => navigator.serviceWorker.controller !== null")

    page.click("#push-subscribe")
    expect(page.locator("#push-message")).to_have_attribute(
        "data-i18n", "push_no_service", timeout=15_000
    )

    # Dispatch makes a work order of the request; the crew completes it through sync.
    dispatcher = api.login("repartiteur1", "repartition-demo")
    queue = api.get("/api/v1/requests?status=received&unassigned=true", dispatcher)["items"]
    request_id = next(r["id"] for r in queue if r["address"] == "25, rue Saint-Jean")
    crew_id = api.crew_id(dispatcher, SNOW_1)
    wo = api.post(
        "/api/v1/work-orders", {"request_ids": [request_id], "crew_id": crew_id}, dispatcher
    )
    phone = api.login("mtremblay", "equipe-demo", device_label="Téléphone e2e")
    complete = {"work_order_id": wo["id"], "outcome": "fixed"}
    mutation = {"id": 1, "name": "workorder.complete@1", "base_version": None, "args": complete}
    envelope = {"protocol": 1, "schema_version": 1, "client_id": "e2e-citizen-push"}
    pushed = api.post("/sync/v1/push", {**envelope, "mutations": [mutation]}, phone)
    assert pushed["results"][0]["outcome"] == "applied"
    page.click("#tracking-refresh")
    expect(page.locator("#tracking-status")).to_have_attribute("data-status", "completed")

    # The payload the server sends for this completion (server/notify render_payload).
    from server.notify.service import render_payload
    from server.settings import get_settings

    message = SimpleNamespace(
        kind="completed", language="fr", request_id=request_id,
        params={"outcome": "fixed", "address": "25, rue Saint-Jean",
                "service_fr": "Trottoir non déneigé", "service_en": "Sidewalk not cleared"},
    )  # fmt: skip
    payload = render_payload(message, token, get_settings())  # type: ignore[arg-type]
    cdp = context.new_cdp_session(page)
    cdp.send(
        "ServiceWorker.deliverPushMessage",
        {"origin": live.url, "registrationId": registration_id(cdp), "data": json.dumps(payload)},
    )
    page.evaluate(
        """() => { window.shownNotifications = null;
            const look = () => navigator.serviceWorker.ready.then((r) => r.getNotifications())
              .then((list) => { if (list.length) window.shownNotifications = list.map((n) => (
                  {title: n.title, body: n.body, tag: n.tag, url: n.data.url}));
                else setTimeout(look, 50); });
            look(); }"""
    )
    shown = page.wait_for_function("() => window.shownNotifications").json_value()
    assert shown == [
        {"title": payload["title"], "body": payload["body"], "tag": payload["tag"],
         "url": payload["url"]}
    ]  # fmt: skip
    assert payload["url"].endswith(f"/#/suivi/{token}")
