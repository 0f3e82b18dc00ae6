"""A picture an Open311 client linked (media_url) is shown to dispatchers as an outside link, in
French and English, on a phone and on a desk (screenshots under var/screenshots/)."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import expect

from tests.e2e.conftest import CITY, Api, Browsers, sign_in_console

SHOTS = Path("var/screenshots")
PICTURE = "https://photos.example.org/u/42/divan.jpg"


def test_dispatcher_sees_the_reporters_media_link(browsers: Browsers, api: Api) -> None:
    admin = api.login("admin", "admin-demo")
    key = api.post("/api/v1/open311-keys", {"name": "FixMyStreet"}, admin)["api_key"]
    filed = api.http.post(
        "/open311/v2/requests.json",
        data={
            "api_key": key,
            "service_code": "pothole",
            "lat": str(CITY["latitude"]),
            "long": str(CITY["longitude"]),
            "address_string": "12, rue des Jardins",
            "description": "Nid-de-poule profond",
            "media_url": PICTURE,
        },
    )
    assert filed.status_code == 201, filed.text
    request_id = filed.json()[0]["service_request_id"]
    SHOTS.mkdir(parents=True, exist_ok=True)
    for width in (360, 1366):
        desk = browsers.context(f"desk-{width}", viewport={"width": width, "height": 900})
        page = desk.new_page()
        sign_in_console(page)
        row = page.locator(f'#request-list li[data-request="{request_id}"]')
        link = row.locator("a.media-link")
        expect(link).to_have_attribute("href", PICTURE)
        expect(link).to_have_attribute("rel", "noopener noreferrer nofollow")
        expect(link).to_have_text("Photo envoyée par le demandeur (site externe)")
        # one atomic step: a live redraw may replace the row between a locator's checks
        page.evaluate(
            "(id) => document.querySelector(`#request-list li[data-request='${id}']`)"
            "?.scrollIntoView({block: 'center'})",
            request_id,
        )
        page.screenshot(path=str(SHOTS / f"dispatch-media-link-{width}-fr.png"))
        page.click("#lang-switch")
        expect(link).to_have_text("Photo sent by the reporter (external site)")
        page.screenshot(path=str(SHOTS / f"dispatch-media-link-{width}-en.png"))
        desk.close()
