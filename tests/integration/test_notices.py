"""Dispatcher notices (SLA escalations): listed for every console, acknowledged once by one
dispatcher, gone from the open list of all of them; crews and citizens cannot read them."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from server.db import Database
from server.jobs import escalate_overdue_work_orders
from server.settings import get_settings
from tests.support.data import login
from tests.support.notify import dispatcher, new_request, work_order_for


async def _overdue_notice(client: Any, headers: dict[str, str], n: int = 0) -> int:
    wo = await work_order_for(client, headers, [(await new_request(client, headers, n=n))["id"]])
    due_at = datetime.fromisoformat(
        (await client.get(f"/api/v1/work-orders/{wo}", headers=headers)).json()["due_at"]
    )
    settings = get_settings()
    db = Database(settings)
    try:
        assert await escalate_overdue_work_orders(
            db, settings, now=due_at + timedelta(minutes=45)
        ) == [wo]
    finally:
        await db.dispose()
    return wo


async def test_overdue_notice_listed_then_acknowledged_for_everyone(client: Any) -> None:
    first = await dispatcher(client)
    second = await login(client, "repartiteur2", "dispatcher")
    wo = await _overdue_notice(client, first)

    listed = (await client.get("/api/v1/notices", headers=second)).json()["items"]
    assert len(listed) == 1
    notice = listed[0]
    assert notice["kind"] == "sla_overdue"
    assert notice["work_order_id"] == wo
    assert notice["data"]["overdue_minutes"] == 45
    assert notice["acknowledged_at"] is None

    done = await client.post(f"/api/v1/notices/{notice['id']}/acknowledge", headers=first)
    assert done.status_code == 200, done.text
    assert done.json()["acknowledged_at"] is not None
    by = done.json()["acknowledged_by"]
    # Idempotent: a second dispatcher's click keeps the first acknowledgement.
    again = await client.post(f"/api/v1/notices/{notice['id']}/acknowledge", headers=second)
    assert again.status_code == 200
    assert again.json()["acknowledged_by"] == by
    assert again.json()["acknowledged_at"] == done.json()["acknowledged_at"]

    assert (await client.get("/api/v1/notices", headers=second)).json()["items"] == []
    history = (await client.get("/api/v1/notices?open=false", headers=second)).json()["items"]
    assert [n["id"] for n in history] == [notice["id"]]


async def test_notices_page_newest_first(client: Any) -> None:
    headers = await dispatcher(client)
    orders = [await _overdue_notice(client, headers, n=n) for n in range(3)]
    page = (await client.get("/api/v1/notices?limit=2", headers=headers)).json()["items"]
    assert [n["work_order_id"] for n in page] == [orders[2], orders[1]]
    rest = (
        await client.get(f"/api/v1/notices?limit=2&before_id={page[-1]['id']}", headers=headers)
    ).json()["items"]
    assert [n["work_order_id"] for n in rest] == [orders[0]]


async def test_unknown_notice_and_bad_parameters_are_4xx(client: Any) -> None:
    headers = await dispatcher(client)
    missing = await client.post("/api/v1/notices/999999/acknowledge", headers=headers)
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")
    for query in ("limit=0", "limit=501", "before_id=0", "open=maybe"):
        bad = await client.get(f"/api/v1/notices?{query}", headers=headers)
        assert bad.status_code == 400, (query, bad.text)
