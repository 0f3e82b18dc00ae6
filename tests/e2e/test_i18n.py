"""The UI in French (default) and in English: every text comes from the catalogue, nothing of
the other language shows, no raw key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from playwright.sync_api import expect

from tests.e2e.conftest import Api, Browsers, sign_in_console
from tests.e2e.test_crew_offline import SNOW_1, sign_in_crew

# Runs in the page: a list of problems (empty when the screen is clean).
CHECK = (Path(__file__).parent / "i18n_check.js").read_text(encoding="utf-8")


def screens_are_clean(page: Any, lang: str, routes: list[tuple[str, str]]) -> None:
    for route, ready in routes:
        page.goto(route)
        expect(page.locator(ready).first).to_be_attached()
        page.wait_for_function("() => document.body.dataset.ready === '1'")
        assert page.evaluate(CHECK, lang) == [], route


def test_french_by_default_english_one_tap_away(browsers: Browsers, api: Api) -> None:
    dispatcher = api.login("repartiteur1", "repartition-demo")
    wid = api.assigned_work_order(dispatcher, SNOW_1)["id"]
    token = api.post(
        "/api/v1/public/requests",
        {"service_code": "snow-sidewalk", "lat": 46.8139, "lon": -71.208, "address": "1, rue X"},
    )["tracking_token"]

    context = browsers.context("phone", locale="en-CA")  # French even for an English browser
    page = context.new_page()
    public = [("/#/", "#go-report"), ("/#/signaler", "#report-form option[value='snow-sidewalk']"),
              (f"/#/suivi/{token}", "#tracking"), ("/#/equipe", "#crew-signin"),
              ("/#/repartition", "#dispatch-signin")]  # fmt: skip
    page.goto("/#/")
    expect(page.locator("#lang-switch")).to_have_text("English")
    screens_are_clean(page, "fr", public)
    page.click("#lang-switch")
    expect(page.locator("#lang-switch")).to_have_text("Français")
    screens_are_clean(page, "en", public)

    sign_in_crew(page)
    crew = [("/#/equipe", f'.work-item[data-work-order="{wid}"]'),
            (f"/#/equipe/bt/{wid}", "#complete-form")]  # fmt: skip
    screens_are_clean(page, "en", crew)
    page.click("#lang-switch")
    screens_are_clean(page, "fr", crew)
    # A dispatcher console with data in it, in both languages.
    sign_in_console(page)
    desk = [("/#/repartition", f'#order-list li[data-work-order="{wid}"]')]
    screens_are_clean(page, "fr", desk)
    page.click("#lang-switch")
    screens_are_clean(page, "en", desk)
