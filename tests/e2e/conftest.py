"""End-to-end fixtures: a real server (uvicorn in a thread over the test database) and Debian's
Chromium driven by Playwright (never `playwright install`). Tests are sync functions: the
Playwright sync API must not run inside pytest-asyncio's loop."""

from __future__ import annotations

import contextlib
import io
import os
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.live_server import LiveServer, free_port

CHROMIUM = os.environ.get("TOURNEE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
CITY = {"latitude": 46.8139, "longitude": -71.2080}  # rue Saint-Jean, Québec

# Every page reports Content-Security-Policy violations (server/security_headers.py): the
# `securitypolicyviolation` event, and Chromium's own "Refused to …" console errors (which also
# cover workers). Any one fails the test that caused it, in the `browsers` fixture's teardown.
CSP_REPORTER = """
document.addEventListener("securitypolicyviolation", (e) => {
  console.error(`CSP violation: ${e.effectiveDirective} blocked ${e.blockedURI || "inline"} `
    + `at ${e.sourceFile}:${e.lineNumber}`);
});
"""


@pytest.fixture
def live_port() -> int:
    return free_port()


@pytest.fixture(autouse=True)
def _public_url_is_the_live_server(
    live_port: int, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """TOURNEE_PUBLIC_URL at the live server's address, as in an installation: the absolute links
    the server makes (public photo copies) are then same-origin, which the CSP requires."""
    from server.settings import get_settings

    monkeypatch.setenv("TOURNEE_PUBLIC_URL", f"http://127.0.0.1:{live_port}")
    get_settings.cache_clear()
    yield
    monkeypatch.undo()
    get_settings.cache_clear()


@pytest.fixture
def live(app: Any, live_port: int) -> Iterator[LiveServer]:
    with LiveServer(app, port=live_port) as server:
        yield server


@pytest.fixture
def playwright_driver(live: LiveServer) -> Iterator[Any]:
    # Function scope, started after the app's async fixtures: the sync API keeps an event loop
    # running in this thread, which pytest-asyncio's fixtures cannot share.
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium (see .ci/run)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        yield driver


class Browsers:
    """Persistent contexts (a user-data-dir per device: the browser can be closed and reopened
    with its IndexedDB and service-worker cache intact)."""

    def __init__(self, driver: Any, root: Path, base_url: str) -> None:
        self.driver = driver
        self.root = root
        self.base_url = base_url
        self.open: list[Any] = []
        self.csp_violations: list[str] = []

    def _watch_csp(self, context: Any) -> None:
        context.add_init_script(CSP_REPORTER)

        def on_console(message: Any) -> None:
            text = message.text
            if "CSP violation" in text or "Content Security Policy" in text:
                self.csp_violations.append(f"{message.page.url if message.page else '?'}: {text}")

        context.on("console", on_console)

    def context(self, name: str, **options: Any) -> Any:
        options.setdefault("geolocation", CITY)
        options.setdefault("permissions", ["geolocation"])
        options.setdefault("viewport", {"width": 360, "height": 740})
        context = self.driver.chromium.launch_persistent_context(
            str(self.root / name),
            executable_path=CHROMIUM,
            args=CHROMIUM_ARGS,
            headless=True,
            base_url=self.base_url,
            **options,
        )
        context.set_default_timeout(15_000)
        self._watch_csp(context)
        self.open.append(context)
        return context

    def assert_no_csp_violation(self) -> None:
        assert not self.csp_violations, "Content-Security-Policy violations:\n" + "\n".join(
            self.csp_violations
        )

    def close_all(self) -> None:
        for context in self.open:
            with contextlib.suppress(Exception):  # already closed by the test
                context.close()


@pytest.fixture
def browsers(playwright_driver: Any, live: LiveServer, tmp_path: Path) -> Iterator[Browsers]:
    made = Browsers(playwright_driver, tmp_path, live.url)
    yield made
    made.close_all()
    made.assert_no_csp_violation()


class Api:
    """Plain HTTP against the live server, for setting up and checking what the UI did."""

    def __init__(self, base_url: str) -> None:
        self.http = httpx.Client(base_url=base_url, timeout=15)

    def login(self, username: str, password: str, **extra: Any) -> dict[str, str]:
        answer = self.http.post(
            "/api/v1/auth/login", json={"username": username, "password": password, **extra}
        )
        assert answer.status_code == 200, answer.text
        return {"Authorization": f"Bearer {answer.json()['token']}"}

    def get(self, path: str, headers: dict[str, str] | None = None) -> Any:
        answer = self.http.get(path, headers=headers)
        assert answer.status_code == 200, answer.text
        return answer.json()

    def post(self, path: str, body: Any, headers: dict[str, str] | None = None) -> Any:
        answer = self.http.post(path, json=body, headers=headers)
        assert answer.status_code in (200, 201), answer.text
        return answer.json()

    def crew_id(self, dispatcher: dict[str, str], code: str) -> int:
        return next(c["id"] for c in self.get("/api/v1/crews", dispatcher) if c["code"] == code)

    def assigned_work_order(self, dispatcher: dict[str, str], crew_code: str, **over: Any) -> Any:
        body = {
            "service_code": "snow-sidewalk",
            "address": "100, rue Saint-Jean",
            "title": "Trottoir glacé",
            "lat": CITY["latitude"],
            "lon": CITY["longitude"],
            "crew_id": self.crew_id(dispatcher, crew_code),
            **over,
        }
        return self.post("/api/v1/work-orders", body, dispatcher)


@pytest.fixture
def api(live: LiveServer) -> Iterator[Api]:
    client = Api(live.url)
    yield client
    client.http.close()


def jpeg_bytes(width: int = 900, height: int = 700, seed: int = 7) -> bytes:
    """A noisy JPEG (a few hundred KB: several upload chunks)."""
    from PIL import Image

    rng = random.Random(seed)
    image = Image.frombytes("RGB", (width, height), rng.randbytes(width * height * 3))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90)
    return out.getvalue()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The browser tests take about two minutes: they run with `make test-e2e` (part of
    `make test`), or when asked for by path or TOURNEE_E2E=1, not in every plain pytest run."""
    if os.environ.get("TOURNEE_E2E") == "1" or any("e2e" in str(arg) for arg in config.args):
        return
    here = Path(__file__).resolve().parent
    chosen = [item for item in items if here not in Path(str(item.fspath)).resolve().parents]
    if len(chosen) != len(items):
        config.hook.pytest_deselected(items=[item for item in items if item not in chosen])
        items[:] = chosen


def open_console(browsers: Browsers, name: str, *, init_script: str | None = None) -> Any:
    """A dispatcher's console (1280×900) signed in as repartiteur1."""
    desk = browsers.context(name, viewport={"width": 1280, "height": 900})
    if init_script:
        desk.add_init_script(init_script)
    console = desk.new_page()
    sign_in_console(console)
    return console


def sign_in_console(page: Any, username: str = "repartiteur1") -> None:
    page.goto("/#/repartition")
    page.fill("#dispatch-username", username)
    page.fill("#dispatch-password", "repartition-demo")
    page.click("#dispatch-signin button[type=submit]")
