"""A dispatcher cancels a job while the crew, offline, completes it: the conflict reaches the
console, the dispatcher resolves it there, and the crew sees what happened."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.e2e.conftest import Api, Browsers, open_console
from tests.e2e.test_crew_offline import SNOW_1, sign_in_crew, wait_controlled


def test_cancel_while_crew_offline_shows_conflict(browsers: Browsers, api: Api) -> None:
    dispatcher = api.login("repartiteur1", "repartition-demo")
    wid = api.assigned_work_order(dispatcher, SNOW_1)["id"]

    crew = browsers.context("crew-phone")
    phone = crew.new_page()
    sign_in_crew(phone)
    # The first pull has brought the order before the network goes (seen in CI: "idle" can be
    # read before the first pull has drawn the list).
    expect(phone.locator(f'.work-item[data-work-order="{wid}"]')).to_be_visible()
    wait_controlled(phone)
    crew.set_offline(True)
    phone.click(f'.work-item[data-work-order="{wid}"]')
    phone.select_option("#complete-outcome", "fixed")
    phone.fill("#complete-note", "Trottoir déglacé")
    phone.click("#act-complete")
    expect(phone.locator("#pending-count")).to_have_attribute("data-count", "1")

    console = open_console(browsers, "dispatch")
    row = console.locator(f'#order-list li[data-work-order="{wid}"]')
    row.locator(".cancel-reason").fill("Doublon signalé par le 311")
    row.locator("button.cancel").click()
    expect(row).to_have_count(0)

    crew.set_offline(False)
    expect(phone.locator("#pending-count")).to_have_attribute("data-count", "0")
    expect(phone.locator("#cancelled-notice")).to_have_attribute(
        "data-i18n", "crew_cancelled_work_performed"
    )
    expect(phone.locator('#notices li[data-code="completion_not_applied"]')).to_be_visible()

    console.click("#dispatch-refresh")
    conflict = console.locator(
        f'#conflict-list li[data-kind="completion_not_applied"][data-work-order="{wid}"]'
    )
    expect(conflict).to_be_visible()
    conflict.locator('button[data-resolution="accept_completion"]').click()
    expect(conflict).to_have_count(0)
    assert api.get(f"/api/v1/work-orders/{wid}", dispatcher)["status"] == "completed"

    # The crew's next sync brings the dispatcher's decision.
    phone.click("#sync-now")
    expect(
        phone.locator('#order-conflicts li[data-kind="completion_not_applied"]')
    ).to_have_attribute("data-state", "resolved")
    expect(phone.locator("#work-order-detail .badge[data-status]").first).to_have_attribute(
        "data-status", "completed"
    )
