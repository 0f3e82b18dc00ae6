"""The app shell is served cache-first and refreshed in the background; when a refreshed file
differs (a new release, or a city's own build under TOURNEE_PWA_DIR), the page announces the new
version and never reloads on its own (issue 11). This test found the refresh broken: the worker
cloned the cached response after handing it to the page, the clone threw, and neither the cache
nor the page ever heard of the new file."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import Browsers
from tests.e2e.test_crew_offline import wait_controlled

REPO_PWA = Path(__file__).resolve().parents[2] / "pwa"


@pytest.fixture(autouse=True)
def pwa_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The app serves a copy of pwa/ this test can release a new version into."""
    from server.settings import get_settings

    copy = tmp_path / "pwa"
    shutil.copytree(REPO_PWA, copy)
    monkeypatch.setenv("TOURNEE_PWA_DIR", str(copy))
    get_settings.cache_clear()
    yield copy
    get_settings.cache_clear()


def test_a_new_version_is_announced_not_forced(browsers: Browsers, pwa_copy: Path) -> None:
    crew = browsers.context("crew-update")
    page = crew.new_page()
    page.goto("/#/equipe")
    wait_controlled(page)
    page.reload()  # served by the worker from its cache, revalidated in the background
    expect(page.locator("#crew-username")).to_be_visible()
    # the worker's cache now holds the new file: offline, the new version is what opens
    has_new = """async () => {
        const response = await caches.match('/css/app.css');
        return !!response && (await response.text()).includes('the next release');
    }"""
    page.wait_for_function(has_new)
    page.wait_for_timeout(500)
    expect(page.locator("#update-ready")).to_have_count(0)  # nothing changed: nothing said

    css = pwa_copy / "css" / "app.css"
    css.write_text(css.read_text("utf-8") + "\n/* the next release */\n", "utf-8")
    page.reload()  # the cached shell at once; the worker fetches the new file behind it
    banner = page.locator("#update-ready")
    expect(banner).to_be_visible()
    expect(banner).to_have_attribute("role", "status")
    expect(banner.locator("span")).to_have_text("Nouvelle version prête.")
    with page.expect_navigation():
        banner.locator("button").click()  # only when the crew asks
    expect(page.locator("#crew-username")).to_be_visible()
    # the worker's cache now holds the new file: offline, the new version is what opens
    has_new = """async () => {
        const response = await caches.match('/css/app.css');
        return !!response && (await response.text()).includes('the next release');
    }"""
    page.wait_for_function(has_new)
