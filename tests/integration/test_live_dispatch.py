"""Dispatcher live updates: a change made through the API reaches a console's SSE stream, through
a real uvicorn (memory channels on SQLite, PostgreSQL LISTEN/NOTIFY on PostgreSQL)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from tests.integration.test_sync_api_events import _login, _next_event
from tests.support.live_server import LiveServer, stream_ticket

SSE = {"Accept": "text/event-stream"}


async def test_changes_reach_the_dispatch_console_stream(app: Any) -> None:
    from server.app import create_app
    from server.settings import get_settings

    with LiveServer(create_app(get_settings())) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=20) as http:
            console = await _login(http, "repartiteur1", "dispatcher")
            other = {"Authorization": f"Bearer {await _login(http, 'admin', 'admin')}"}
            phone = await _login(http, "mtremblay", "crew", device_label="Téléphone live")
            crews = {
                c["code"]: c["id"] for c in (await http.get("/api/v1/crews", headers=other)).json()
            }
            refused = await http.get(
                "/api/v1/live/events", params=await stream_ticket(http, console)
            )
            assert refused.status_code == 406
            assert refused.json()["code"] == "event_stream_required"
            crew = await http.get(
                "/api/v1/live/events", params=await stream_ticket(http, phone), headers=SSE
            )
            assert crew.status_code == 403
            anonymous = await http.get("/api/v1/live/events", headers=SSE)
            assert anonymous.status_code == 401

            unassigned = await http.post(
                "/api/v1/work-orders",
                json={"service_code": "snow-sidewalk", "lat": 46.81, "lon": -71.2},
                headers=other,
            )
            assert unassigned.status_code == 201, unassigned.text
            wid = unassigned.json()["id"]
            async with http.stream(
                "GET", "/api/v1/live/events", params=await stream_ticket(http, console), headers=SSE
            ) as stream:
                assert stream.status_code == 200
                assert stream.headers["content-type"].startswith("text/event-stream")
                lines = stream.aiter_lines()
                assert await _next_event(lines) == ("hello", {"channel": "dispatch"})

                # another user assigns the order: the console hears it, after commit
                assigned = await http.post(
                    f"/api/v1/work-orders/{wid}/assign",
                    json={"crew_id": crews["snow-cite-limoilou-1"]},
                    headers=other,
                )
                assert assigned.status_code == 200, assigned.text
                event, data = await asyncio.wait_for(_next_event(lines), 15)
                assert event == "work_order_changed"
                assert data == {
                    "id": wid,
                    "status": "assigned",
                    "version": assigned.json()["version"],
                    "ids": [wid],
                }

                # a refused change publishes nothing: the next event is the citizen's request
                stale = await http.post(
                    f"/api/v1/work-orders/{wid}/assign",
                    json={"crew_id": crews["snow-cite-limoilou-2"], "expected_version": 1},
                    headers=other,
                )
                assert stale.status_code == 409, stale.text
                submitted = await http.post(
                    "/api/v1/public/requests",
                    json={
                        "service_code": "pothole",
                        "lat": 46.8139,
                        "lon": -71.2080,
                        "address": "100, rue Saint-Jean",
                        "description": "Nid-de-poule profond",
                    },
                )
                assert submitted.status_code == 201, submitted.text
                event, data = await asyncio.wait_for(_next_event(lines), 15)
                assert event == "request_created"
                assert data["status"] == submitted.json()["status"]
                assert data["ids"] == [data["id"]]


async def test_conflicts_recorded_and_resolved_reach_the_console(app: Any) -> None:
    """A crew's completion of an order the office cancelled meanwhile records a conflict: the
    consoles hear it (their inbox refreshes), and hear its resolution by another dispatcher."""
    from server.app import create_app
    from server.settings import get_settings
    from tests.support.sync_helpers import SNOW_1, crew_ids, device, work_order

    async def until(lines: Any, wanted: str) -> dict[str, Any]:
        while True:
            event, data = await asyncio.wait_for(_next_event(lines), 15)
            if event == wanted:
                return data

    with LiveServer(create_app(get_settings())) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=20) as http:
            console = await _login(http, "repartiteur1", "dispatcher")
            other = {"Authorization": f"Bearer {await _login(http, 'repartiteur2', 'dispatcher')}"}
            phone = await device(http, "mtremblay")
            wo = await work_order(http, other, (await crew_ids(http, other))[SNOW_1])
            async with http.stream(
                "GET", "/api/v1/live/events", params=await stream_ticket(http, console), headers=SSE
            ) as stream:
                lines = stream.aiter_lines()
                assert await _next_event(lines) == ("hello", {"channel": "dispatch"})
                cancelled = await http.post(
                    f"/api/v1/work-orders/{wo['id']}/cancel", json={"reason": "x"}, headers=other
                )
                assert cancelled.status_code == 200, cancelled.text
                answer = await phone.push(
                    phone.mutation(
                        "workorder.complete@1",
                        {"work_order_id": wo["id"], "outcome": "fixed"},
                        wo["version"],
                    )
                )
                assert answer["results"][0]["conflict_id"] is not None, answer
                recorded = await until(lines, "conflict_recorded")
                assert recorded["id"] == wo["id"]

                conflict_id = answer["results"][0]["conflict_id"]
                resolved = await http.post(
                    f"/api/v1/sync/conflicts/{conflict_id}/resolve",
                    json={"resolution": "keep_cancellation", "note": ""},
                    headers=other,
                )
                assert resolved.status_code == 200, resolved.text
                assert (await until(lines, "conflict_resolved"))["id"] == wo["id"]
