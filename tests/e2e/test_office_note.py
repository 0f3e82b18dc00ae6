"""A dispatcher sends a note from the console; the crew's phone shows it after its next sync."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.e2e.conftest import Api, Browsers, open_console
from tests.e2e.test_crew_offline import SNOW_1, sign_in_crew


def test_console_note_reaches_the_crew_phone(browsers: Browsers, api: Api) -> None:
    dispatcher = api.login("repartiteur1", "repartition-demo")
    wid = api.assigned_work_order(dispatcher, SNOW_1)["id"]

    crew = browsers.context("crew-note")
    phone = crew.new_page()
    sign_in_crew(phone)
    expect(phone.locator(f'.work-item[data-work-order="{wid}"]')).to_be_visible()

    console = open_console(browsers, "dispatch-note")
    row = console.locator(f'#order-list li[data-work-order="{wid}"]')
    row.locator(".office-note").fill("Code du portail : 1234")
    row.locator("button.add-note").click()
    expect(console.locator("#dispatch-message")).to_contain_text(str(wid))
    assert [n["body"] for n in api.get(f"/api/v1/work-orders/{wid}", dispatcher)["notes"]] == [
        "Code du portail : 1234"
    ]

    phone.click("#sync-now")
    phone.click(f'.work-item[data-work-order="{wid}"]')
    expect(phone.locator("#note-list")).to_contain_text("Code du portail : 1234")
    expect(phone.locator("#note-list")).to_contain_text("repartiteur1")
