"""The crew's list at 360 px: ≥ 4 jobs on a screen, nothing drawn over anything, a small status
area; notices with a real count that the crew can dismiss; status buttons from the server's
table."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import expect

from tests.e2e.conftest import Api, Browsers
from tests.e2e.test_crew_offline import sign_in_crew

SNOW_1 = "snow-cite-limoilou-1"

SUGGEST = """async (id) => {
  const { crewDatabase } = await import('/js/views/crew.js');
  const { enqueue } = await import('/js/outbox.js');
  const db = await crewDatabase();
  await enqueue(db, { name: 'workorder.set_field@1',
    args: { work_order_id: id, field: 'priority', value: 1 }, base_version: null });
}"""


def _box(page: Any, selector: str) -> dict[str, float]:
    box = page.locator(selector).bounding_box()
    assert box is not None, selector
    return dict(box)


def _overlap(a: dict[str, float], b: dict[str, float]) -> bool:
    return not (
        a["x"] + a["width"] <= b["x"]
        or b["x"] + b["width"] <= a["x"]
        or a["y"] + a["height"] <= b["y"]
        or b["y"] + b["height"] <= a["y"]
    )


def test_list_at_360_px_and_dismissable_notices(browsers: Browsers, api: Api) -> None:
    dispatcher = api.login("repartiteur1", "repartition-demo")
    ids = [
        api.assigned_work_order(dispatcher, SNOW_1, title="Trottoir glacé devant l'école " * 3)[
            "id"
        ]
        for _ in range(6)
    ]
    context = browsers.context("crew-360", viewport={"width": 360, "height": 740})
    page = context.new_page()
    sign_in_crew(page)
    expect(page.locator(f'.work-item[data-work-order="{ids[-1]}"]')).to_be_visible()

    status = _box(page, "#sync-status")
    assert status["height"] < 110, status
    visible = page.evaluate(
        """() => [...document.querySelectorAll('#work-list .work-item')]
          .filter((el) => el.getBoundingClientRect().bottom <= innerHeight).length"""
    )
    assert visible >= 4, visible
    # measured in one go in the page (the list may be redrawn by a sync between two calls)
    items = page.evaluate(
        """() => [...document.querySelectorAll('#work-list .work-item')].map((el) => {
          const box = (e) => { const r = e.getBoundingClientRect();
            return { x: r.x, y: r.y, width: r.width, height: r.height }; };
          return { item: box(el), title: box(el.querySelector('strong')),
            due: box(el.querySelector('.due')),
            texts: [...el.querySelectorAll('[data-data]')].map((e) => e.textContent) };
        })"""
    )
    assert len(items) == len(ids)
    for item in items:
        assert not _overlap(item["title"], item["due"]), item
        assert item["item"]["x"] + item["item"]["width"] <= 360, item
        assert len(item["texts"]) == len(set(item["texts"])), item  # no repeated title

    # a notice: its heading has a real count, and "OK" dismisses it
    page.evaluate(SUGGEST, ids[0])
    page.click("#sync-now")
    expect(page.locator("#notices summary")).to_be_visible()
    heading = page.inner_text("#notices summary")
    assert "{" not in heading and "(1)" in heading, heading
    page.click("#notices summary")
    page.click("#notices li button")
    expect(page.locator("#notices")).to_have_count(0)
    page.reload()
    expect(page.locator(f'.work-item[data-work-order="{ids[0]}"]')).to_be_visible()
    expect(page.locator("#notices")).to_have_count(0)


def test_no_en_route_on_an_order_on_hold(browsers: Browsers, api: Api) -> None:
    dispatcher = api.login("repartiteur1", "repartition-demo")
    wid = api.assigned_work_order(dispatcher, SNOW_1)["id"]
    for step in ({"action": "arrive"}, {"action": "hold", "reason": "Attente sableuse"}):
        api.post(f"/api/v1/work-orders/{wid}/transition", step, dispatcher)
    page = browsers.context("crew-hold").new_page()
    sign_in_crew(page)
    page.click(f'.work-item[data-work-order="{wid}"]')
    expect(page.locator("#work-order-detail .badge[data-status]").first).to_have_attribute(
        "data-status", "on_hold"
    )
    expect(page.locator("#act-on-site")).to_be_visible()  # resume
    expect(page.locator("#act-en-route")).to_have_count(0)
    expect(page.locator("#act-complete")).to_be_visible()
