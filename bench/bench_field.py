"""A crew's full shift on Slow 3G, in Chromium (issue 11).

    .venv/bin/python bench/bench_field.py [--jobs 60] [--photos 2]

A real server (uvicorn, SQLite in a temporary directory), Debian's Chromium through Playwright,
the browser's traffic through a TCP gate on 127.0.0.1 (tests/support/field.py) that counts the
bytes the phone sends and can go silent ("lie-fi"). Steps:
1. cold start with the network off, then with it connected but silent: time until the work list
   is drawn (the app's `tournee:crew-list` performance mark, from navigation start);
2. the shift offline: every job on site, N camera-like photos (~1.4 MB, 4000×3000, EXIF),
   completed, through the app's UI;
3. back on DevTools Slow 3G (400 ms RTT, 400 kbit/s each way): seconds until every edit is
   acknowledged, seconds until the photo backlog is drained, bytes sent, bytes per photo.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=60)
    parser.add_argument("--photos", type=int, default=2, choices=(1, 2))
    parser.add_argument("--drain-timeout", type=float, default=3600)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="tournee-bench-field-"))
    os.environ.update(
        {
            "TOURNEE_DATABASE_URL": f"sqlite+aiosqlite:///{work / 'bench.db'}",
            "TOURNEE_VAR_DIR": str(work / "var"),
            "TOURNEE_PHOTO_DIR": str(work / "var" / "photos"),
            "TOURNEE_SCHEDULER": "0",
        }
    )

    from server.app import create_app
    from server.migrate import upgrade
    from server.settings import get_settings
    from tests.support.data import reset_and_seed_now
    from tests.support.live_server import LiveServer

    get_settings.cache_clear()
    upgrade()
    settings = get_settings()
    reset_and_seed_now(settings)
    with LiveServer(create_app(settings)) as live:
        return run(args, live, work)


def run(args: argparse.Namespace, live: object, work: Path) -> int:
    import httpx
    from playwright.sync_api import sync_playwright

    from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, CITY
    from tests.support.field import (
        LIST_READY_MS,
        SLOW_3G,
        Gate,
        Photos,
        pending_count,
        throttle,
        wait_until,
        work_jobs_offline,
    )

    gate = Gate(live.port)  # type: ignore[attr-defined]
    api = httpx.Client(base_url=live.url, timeout=30)  # type: ignore[attr-defined]
    token = api.post(
        "/api/v1/auth/login", json={"username": "repartiteur1", "password": "repartition-demo"}
    ).json()["token"]
    desk = {"Authorization": f"Bearer {token}"}
    crew = next(
        c["id"]
        for c in api.get("/api/v1/crews", headers=desk).json()
        if c["code"] == "snow-cite-limoilou-1"
    )
    ids = []
    for n in range(args.jobs):
        body = {
            "service_code": "snow-sidewalk",
            "address": f"{100 + n}, rue Saint-Jean",
            "lat": CITY["latitude"],
            "lon": CITY["longitude"],
            "crew_id": crew,
        }
        ids.append(api.post("/api/v1/work-orders", json=body, headers=desk).json()["id"])
    t = time.monotonic()
    photos = Photos()
    print(f"{args.jobs} jobs created; camera photos made in {time.monotonic() - t:.1f} s")

    profile = work / "phone"
    with sync_playwright() as driver:

        def phone(**options: object) -> object:
            context = driver.chromium.launch_persistent_context(
                str(profile),
                executable_path=CHROMIUM,
                args=CHROMIUM_ARGS,
                headless=True,
                base_url=gate.url,
                geolocation=CITY,
                permissions=["geolocation"],
                viewport={"width": 360, "height": 740},
                **options,
            )
            context.set_default_timeout(30_000)
            return context

        context = phone()
        page = context.new_page()
        page.goto("/#/equipe")
        page.fill("#crew-username", "mtremblay")
        page.fill("#crew-password", "equipe-demo")
        page.click("#crew-signin button[type=submit]")
        page.wait_for_selector(f'.work-item[data-work-order="{ids[-1]}"]')
        page.wait_for_function("() => navigator.serviceWorker.controller !== null")
        context.close()

        def cold_start(**options: object) -> float:
            context = phone(**options)
            page = context.pages[0] if context.pages else context.new_page()
            page.goto("/#/equipe", wait_until="commit")
            page.wait_for_function(f"() => ({LIST_READY_MS})() !== null")  # not eval: the CSP
            ms = float(page.evaluate(LIST_READY_MS))
            context.close()
            return ms

        cold_offline = cold_start(offline=True)
        gate.hang()
        cold_liefi = cold_start()
        gate.open()

        context = phone()
        page = context.pages[0] if context.pages else context.new_page()
        page.goto("/#/equipe")
        page.wait_for_selector(f'.work-item[data-work-order="{ids[-1]}"]')
        cdp = context.new_cdp_session(page)
        throttle(cdp, None, offline=True)
        t = time.monotonic()
        work_jobs_offline(page, ids, photos, kinds=("site", "far")[: args.photos])
        page.goto("/#/equipe")
        print(f"shift worked offline in {time.monotonic() - t:.0f} s; {pending_count(page)} edits")
        local_photo_bytes = page.evaluate(
            "() => Number(document.getElementById('photos-waiting').dataset.bytes)"
        )

        gate.bytes_up = 0
        throttle(cdp, SLOW_3G)
        t0 = time.monotonic()
        edits_s = wait_until(lambda: pending_count(page) == 0, 600, step=0.1, page=page)
        print(f"edits acknowledged in {edits_s:.1f} s; draining photos…", flush=True)
        drained_s = wait_until(
            lambda: page.get_attribute("#photos-waiting", "data-count") == "0",
            args.drain_timeout,
            step=1,
            page=page,
        )
        sent = gate.bytes_up
        context.close()

    count = len(ids) * args.photos
    load = os.getloadavg()
    print()
    print(f"| jobs × photos | {args.jobs} × {args.photos} |")
    print("|---|---|")
    print(f"| edits acknowledged (s) | {edits_s:.1f} |")
    print(f"| photo backlog drained (s) | {drained_s:.0f} ({drained_s / 60:.1f} min) |")
    print(f"| bytes sent | {sent / 1e6:.1f} MB |")
    print(f"| bytes per photo (uploaded copy) | {local_photo_bytes / count / 1024:.0f} KB |")
    print(f"| camera files | {photos_bytes(photos, args) / 1e6:.0f} MB |")
    print(f"| cold start offline (ms) | {cold_offline:.0f} |")
    print(f"| cold start lie-fi (ms) | {cold_liefi:.0f} |")
    print(f"| load average | {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} |")
    print(f"(started {t0:.0f}; work dir {work})")
    gate.close()
    return 0


def photos_bytes(photos: object, args: argparse.Namespace) -> int:
    kinds = ("site", "far")[: args.photos]
    return sum(len(photos.make(k, n)) for n in range(args.jobs) for k in kinds)  # type: ignore[attr-defined]


if __name__ == "__main__":
    raise SystemExit(main())
