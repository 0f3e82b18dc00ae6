"""The console's export buttons download real files, in French and English, on a phone and on a
desk (screenshots under var/screenshots/)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from playwright.sync_api import expect

from tests.e2e.conftest import Api, Browsers, sign_in_console

SHOTS = Path("var/screenshots")


def test_console_downloads_the_requests_csv(browsers: Browsers, api: Api) -> None:
    dispatcher = api.login("repartiteur1", "repartition-demo")
    made = api.post(
        "/api/v1/requests",
        {
            "service_code": "bulky-items",
            "lat": 46.8139,
            "lon": -71.208,
            "address": "7, rue Exportée",
            "reporter_name": "Léa Export",
        },
        dispatcher,
    )
    SHOTS.mkdir(parents=True, exist_ok=True)
    for width in (360, 1366):
        desk = browsers.context(
            f"exports-{width}", viewport={"width": width, "height": 900}, accept_downloads=True
        )
        page = desk.new_page()
        sign_in_console(page)
        button = page.locator("#export-requests-csv")
        expect(button).to_have_text("Requêtes (CSV)")
        page.locator("#exports").scroll_into_view_if_needed()
        page.screenshot(path=str(SHOTS / f"dispatch-exports-{width}-fr.png"))
        with page.expect_download() as info:
            button.click()
        download = info.value
        assert download.suggested_filename.startswith("tournee-requests-")
        text = Path(download.path()).read_text(encoding="utf-8-sig")
        rows = list(csv.DictReader(io.StringIO(text)))
        mine = [r for r in rows if int(r["id"]) == made["id"]]
        assert mine and mine[0]["reporter_name"] == "Léa Export"
        expect(page.locator("#export-status")).to_have_text("Fichier téléchargé.")
        page.click("#lang-switch")
        expect(button).to_have_text("Requests (CSV)")
        page.locator("#exports").scroll_into_view_if_needed()
        page.screenshot(path=str(SHOTS / f"dispatch-exports-{width}-en.png"))
        desk.close()
