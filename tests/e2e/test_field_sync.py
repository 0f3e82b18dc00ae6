"""A crew shift on a real network (issue 11): 20 jobs × 2 camera photos done offline, then Slow 3G.

Edits are acknowledged in < 10 s while the photo backlog is still minutes long; a note written
30 s into the backlog is acknowledged in < 5 s and a dispatcher's note reaches the phone in < 5 s;
a cut mid-photo resumes at the server's offset; the browser killed during the backlog loses
nothing; every photo on the server is ≤ 600 KB and carries the evidence the camera wrote.
And a cold start with a connected but silent network ("lie-fi") shows the work list in < 1 s.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import Api, Browsers
from tests.e2e.test_crew_offline import sign_in_crew, wait_controlled
from tests.support.field import (
    CITY_TZ,
    LIST_READY_MS,
    SLOW_3G,
    Gate,
    Photos,
    kill_browser,
    pending_count,
    throttle,
    wait_until,
    work_jobs_offline,
)
from tests.support.live_server import LiveServer

SNOW_1 = "snow-cite-limoilou-1"  # mtremblay's crew
JOBS = 20
FAR_FLAGS = {"exif_location_mismatch", "exif_time_mismatch", "taken_long_before_completion"}


@pytest.fixture
def gate(live: LiveServer) -> Iterator[Gate]:
    made = Gate(live.port)
    yield made
    made.close()


@pytest.fixture
def phones(playwright_driver: Any, gate: Gate, tmp_path: Path) -> Iterator[Browsers]:
    made = Browsers(playwright_driver, tmp_path, gate.url)
    yield made
    made.close_all()
    made.assert_no_csp_violation()


def _photos_waiting(page: Any) -> int:
    return int(page.get_attribute("#photos-waiting", "data-count") or -1)


def test_shift_of_photos_never_holds_up_an_edit(phones: Browsers, api: Api, tmp_path: Path) -> None:
    dispatcher = api.login("repartiteur1", "repartition-demo")
    ids = [api.assigned_work_order(dispatcher, SNOW_1)["id"] for _ in range(JOBS)]
    photos = Photos()

    # Chrome grants Background Sync by default; Playwright denies what it is not told to grant
    phone_permissions = ["geolocation", "background-sync"]
    context = phones.context("phone", permissions=phone_permissions)
    page = context.new_page()
    sign_in_crew(page)
    wait_controlled(page)
    expect(page.locator(f'.work-item[data-work-order="{ids[-1]}"]')).to_be_visible()
    cdp = context.new_cdp_session(page)

    page.evaluate(
        """() => { window.bgSyncRelayed = 0;
          navigator.serviceWorker.addEventListener('message', (e) => {
            if (e.data?.type === 'sync') window.bgSyncRelayed += 1; }); }"""
    )

    # ---- the shift, offline: every job on site, two photos, completed
    throttle(cdp, None, offline=True)
    work_jobs_offline(page, ids, photos)
    page.goto("/#/equipe")
    expect(page.locator("#pending-count")).to_have_attribute("data-count", str(JOBS * 4))
    expect(page.locator("#photos-waiting")).to_have_attribute("data-count", str(JOBS * 2))
    # Background Sync: the app asked for it and the worker relayed it to the page (Chromium
    # fires it at once: the browser itself is online, only this page is emulated offline)
    assert page.evaluate("window.bgSyncRelayed") > 0
    # a thumbnail from the phone's own copy, offline
    page.goto(f"/#/equipe/bt/{ids[0]}")
    expect(page.locator("#photo-list img.thumb")).to_have_count(2)
    assert page.eval_on_selector("#photo-list img.thumb", "img => img.naturalWidth") > 0

    patches: list[tuple[str, int, int]] = []  # (upload id, offset, status), in order

    def on_response(response: Any) -> None:
        request = response.request
        if request.method == "PATCH" and "/api/v1/photos/uploads/" in request.url:
            offset = int(request.headers.get("upload-offset", "-1"))
            patches.append((request.url.rsplit("/", 1)[1], offset, response.status))

    page.on("response", on_response)

    # ---- back on Slow 3G: every edit acknowledged in < 10 s, photos still going
    throttle(cdp, SLOW_3G)
    reconnected = time.monotonic()
    edits_s = wait_until(lambda: pending_count(page) == 0, timeout=10, page=page)
    assert edits_s < 10
    for wid in ids:
        assert api.get(f"/api/v1/sync/work-orders/{wid}", dispatcher)["status"] == "completed"

    # ---- 30 s into the backlog, a note: acknowledged in < 5 s
    page.wait_for_timeout(max(0.0, 30 - (time.monotonic() - reconnected)) * 1000)
    assert _photos_waiting(page) > 10, "the backlog must still be there for this to mean anything"
    expect(page.locator("#photo-sending")).to_be_visible()
    page.goto(f"/#/equipe/bt/{ids[0]}")
    page.fill("#note-body", "Bac renversé, remis en place")
    written = time.monotonic()
    page.click("#act-add-note")
    expect(page.locator("#note-list")).to_contain_text("Bac renversé")  # on the phone at once

    def acknowledged() -> bool:
        if pending_count(page) != 0:
            return False
        notes = api.get(f"/api/v1/sync/work-orders/{ids[0]}", dispatcher)["notes"]
        return "Bac renversé, remis en place" in [n["body"] for n in notes]

    wait_until(acknowledged, timeout=5, step=0.1, page=page)
    note_s = time.monotonic() - written
    assert note_s < 5

    # ---- a dispatcher's note reaches the phone in < 5 s, during the backlog
    page.goto(f"/#/equipe/bt/{ids[1]}")
    page.wait_for_selector(f'#work-order-detail[data-work-order="{ids[1]}"]')
    body = f"Attention au chien du voisin {uuid.uuid4().hex[:6]}"
    api.post(f"/api/v1/work-orders/{ids[1]}/notes", {"body": body}, dispatcher)
    written = time.monotonic()
    expect(page.locator("#note-list")).to_contain_text(body, timeout=5_000)
    dispatch_s = time.monotonic() - written
    assert dispatch_s < 5
    assert _photos_waiting(page) > 0

    # ---- a cut in the middle of a photo: it resumes at the server's offset
    def mid_photo() -> bool:  # a chunk of this photo is in, and more than 100 KB are left
        got = page.evaluate(
            "() => { const p = document.getElementById('photo-progress');"
            " return p ? [p.value, p.max] : null; }"
        )
        return bool(got) and got[0] > 0 and got[1] - got[0] > 100_000 and bool(patches)

    wait_until(mid_photo, timeout=30, page=page)
    throttle(cdp, None, offline=True)
    page.wait_for_timeout(1500)  # the chunk in flight fails; its events are delivered
    upload_id = patches[-1][0]
    before_cut = len(patches)
    head = api.http.head(f"/api/v1/photos/uploads/{upload_id}", headers=dispatcher)
    assert head.status_code == 200, head.status_code
    server_offset = int(head.headers["upload-offset"])
    assert server_offset > 0
    throttle(cdp, SLOW_3G)
    wait_until(
        lambda: any(u == upload_id and s == 200 for u, _, s in patches[before_cut:]), 30, page=page
    )
    resumed = [(o, s) for u, o, s in patches[before_cut:] if u == upload_id]
    first_accepted = next(o for o, s in resumed if s == 200)
    assert first_accepted == server_offset, resumed
    assert all(o >= server_offset or s == 409 for o, s in resumed), resumed
    print(
        f"\nfield e2e: edits {edits_s:.1f} s, note {note_s:.1f} s, office note {dispatch_s:.1f} s"
    )

    # ---- the browser killed during the backlog: nothing is lost
    assert _photos_waiting(page) > 0
    kill_browser(tmp_path / "phone")
    phones.open.remove(context)
    context = phones.context("phone", permissions=phone_permissions)  # no throttling: short CI
    page = context.pages[0] if context.pages else context.new_page()
    page.goto("/#/equipe")
    expect(page.locator("#photos-waiting")).to_have_attribute("data-count", "0", timeout=90_000)
    expect(page.locator("#pending-count")).to_have_attribute("data-count", "0")

    # ---- on the server: everything, small, with the evidence the camera wrote
    for n, wid in enumerate(ids):
        value = api.get(f"/api/v1/sync/work-orders/{wid}", dispatcher)
        assert value["status"] == "completed"
        assert len(value["photos"]) == 2 and all(p["received"] for p in value["photos"])
        evidence = api.get(f"/api/v1/work-orders/{wid}/photos", dispatcher)
        by_kind: dict[str, Any] = {}
        for item in evidence["photos"]:
            meta = item["photo"]
            assert meta["size_bytes"] <= 600 * 1024, meta
            assert max(meta["width"], meta["height"]) <= 2048
            assert meta["orientation"] == 1
            kind = "far" if meta["exif_lat"] and meta["exif_lat"] > 46.82 else "site"
            by_kind[kind] = item
        assert set(by_kind) == {"site", "far"}
        # the camera's facts (what the server would read from the original)
        for kind, item in by_kind.items():
            original = photos.make(kind, n)
            facts = camera_facts(original, tmp_path / f"orig-{n}-{kind}.jpg")
            meta = item["photo"]
            assert (meta["exif_lat"], meta["exif_lon"]) == pytest.approx(facts["gps"], abs=1e-5)
            taken = datetime.fromisoformat(meta["exif_taken_at"].replace("Z", "+00:00"))
            assert taken == facts["taken"], (meta, facts)
        assert set(by_kind["site"]["flags"]) == set()
        assert set(by_kind["far"]["flags"]) == FAR_FLAGS


def camera_facts(data: bytes, path: Path) -> dict[str, Any]:
    """What the server's own reader finds in the camera's original file."""
    from server.photos import imaging

    path.write_bytes(data)
    info = imaging.inspect(path, max_pixels=64_000_000)
    assert info.taken_at is not None and info.gps is not None
    # EXIF times carry no offset: the server reads them in the city's time zone
    return {"gps": info.gps, "taken": info.taken_at.replace(tzinfo=CITY_TZ)}


def test_cold_start_on_lie_fi_shows_the_work_list_at_once(
    phones: Browsers, api: Api, gate: Gate
) -> None:
    dispatcher = api.login("repartiteur1", "repartition-demo")
    wid = api.assigned_work_order(dispatcher, SNOW_1)["id"]
    context = phones.context("phone")
    page = context.new_page()
    sign_in_crew(page)
    wait_controlled(page)
    expect(page.locator(f'.work-item[data-work-order="{wid}"]')).to_be_visible()
    context.close()
    phones.open.remove(context)

    gate.hang()  # connected, but nothing ever answers
    context = phones.context("phone")
    page = context.pages[0] if context.pages else context.new_page()
    page.goto("/#/equipe", wait_until="commit", timeout=5_000)
    page.wait_for_function(
        f"() => ({LIST_READY_MS})() !== null", timeout=5_000
    )  # a function: a string is eval-ed, which the CSP refuses
    ready_ms = page.evaluate(LIST_READY_MS)
    assert page.evaluate("navigator.onLine") is True
    expect(page.locator(f'.work-item[data-work-order="{wid}"]')).to_be_visible()
    assert ready_ms < 1000, ready_ms
    # usable: a job opens, from the phone's replica
    page.click(f'.work-item[data-work-order="{wid}"]')
    expect(page.locator(f'#work-order-detail[data-work-order="{wid}"]')).to_be_visible(
        timeout=1_000
    )
    print(f"\ncold start under lie-fi: work list in {ready_ms:.0f} ms")
