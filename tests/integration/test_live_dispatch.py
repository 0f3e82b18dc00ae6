"""Dispatcher live updates: a change made through the API reaches a console's SSE stream, through
a real uvicorn (memory channels on SQLite, PostgreSQL LISTEN/NOTIFY on PostgreSQL)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from tests.integration.test_sync_api_events import _login, _next_event
from tests.support.live_server import LiveServer

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
            refused = await http.get("/api/v1/live/events", params={"access_token": console})
            assert refused.status_code == 406
            assert refused.json()["code"] == "event_stream_required"
            crew = await http.get(
                "/api/v1/live/events", params={"access_token": phone}, headers=SSE
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
                "GET", "/api/v1/live/events", params={"access_token": console}, headers=SSE
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
