"""Change hints over Server-Sent Events, through a real uvicorn (memory channels on SQLite,
PostgreSQL LISTEN/NOTIFY on PostgreSQL)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx

from tests.support.data import PASSWORDS
from tests.support.live_server import LiveServer, stream_ticket


async def _login(http: httpx.AsyncClient, username: str, role: str, **extra: Any) -> str:
    response = await http.post(
        "/api/v1/auth/login", json={"username": username, "password": PASSWORDS[role], **extra}
    )
    response.raise_for_status()
    return str(response.json()["token"])


async def _next_event(lines: Any) -> tuple[str, dict[str, Any]]:
    event = ""
    async for line in lines:
        if line.startswith("event: "):
            event = line[len("event: ") :]
        elif line.startswith("data: ") and event:
            return event, json.loads(line[len("data: ") :])
    raise AssertionError("stream ended")


async def test_a_committed_change_tells_the_crew_phones_to_pull(app: Any) -> None:
    from server.app import create_app
    from server.settings import get_settings

    with LiveServer(create_app(get_settings())) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=20) as http:
            phone = await _login(http, "mtremblay", "crew", device_label="Téléphone SSE")
            desk = {"Authorization": f"Bearer {await _login(http, 'repartiteur1', 'dispatcher')}"}
            crews = {
                c["code"]: c["id"] for c in (await http.get("/api/v1/crews", headers=desk)).json()
            }
            refused = await http.get("/sync/v1/events", params=await stream_ticket(http, phone))
            assert refused.status_code == 406
            async with http.stream(
                "GET",
                "/sync/v1/events",
                params=await stream_ticket(http, phone),
                headers={"Accept": "text/event-stream"},
            ) as stream:
                assert stream.status_code == 200
                assert stream.headers["content-type"].startswith("text/event-stream")
                lines = stream.aiter_lines()
                assert await _next_event(lines) == (
                    "hello",
                    {"crew_id": crews["snow-cite-limoilou-1"]},
                )
                # a change for another crew is not sent; one for this crew is, after commit
                other = await http.post(
                    "/api/v1/work-orders",
                    json={
                        "service_code": "snow-sidewalk",
                        "lat": 46.81,
                        "lon": -71.2,
                        "crew_id": crews["snow-cite-limoilou-2"],
                    },
                    headers=desk,
                )
                assert other.status_code == 201
                created = await http.post(
                    "/api/v1/work-orders",
                    json={
                        "service_code": "snow-sidewalk",
                        "lat": 46.81,
                        "lon": -71.2,
                        "crew_id": crews["snow-cite-limoilou-1"],
                    },
                    headers=desk,
                )
                assert created.status_code == 201
                event, data = await asyncio.wait_for(_next_event(lines), 15)
                assert event == "pull"
                assert data["work_order_ids"] == [created.json()["id"]]
