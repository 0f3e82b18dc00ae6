"""Versioned rows and optimistic concurrency: two dispatchers act on one work order at once."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.support.data import login


async def _work_order(client: Any, headers: dict[str, str]) -> dict[str, Any]:
    request = await client.post(
        "/api/v1/requests",
        json={"service_code": "bulky-items", "lat": 46.81, "lon": -71.21, "address": "1, rue Test"},
        headers=headers,
    )
    assert request.status_code == 201, request.text
    wo = await client.post(
        "/api/v1/work-orders", json={"request_ids": [request.json()["id"]]}, headers=headers
    )
    assert wo.status_code == 201, wo.text
    return dict(wo.json())


async def test_two_writers_same_version_one_wins(client: Any) -> None:
    first = await login(client, "repartiteur1", "dispatcher")
    second = await login(client, "repartiteur2", "dispatcher")
    wo = await _work_order(client, first)
    crews = (await client.get("/api/v1/crews", params={"kind": "waste"}, headers=first)).json()
    a, b = crews[0]["id"], crews[1]["id"]
    for _ in range(5):
        results = await asyncio.gather(
            client.post(
                f"/api/v1/work-orders/{wo['id']}/assign",
                json={"crew_id": a, "expected_version": wo["version"]},
                headers=first,
            ),
            client.post(
                f"/api/v1/work-orders/{wo['id']}/assign",
                json={"crew_id": b, "expected_version": wo["version"]},
                headers=second,
            ),
        )
        statuses = sorted(r.status_code for r in results)
        assert statuses == [200, 409], [r.text for r in results]
        winner = next(r.json() for r in results if r.status_code == 200)
        loser = next(r.json() for r in results if r.status_code == 409)
        assert loser["code"] == "version_conflict"
        assert winner["version"] == wo["version"] + 1
        wo = (await client.get(f"/api/v1/work-orders/{wo['id']}", headers=first)).json()
        assert wo["crew_id"] == winner["crew_id"]
        assert wo["version"] == winner["version"]
    history = wo["history"]
    assert len(history) == 1 + 5, "exactly one audit row per successful write"


async def test_concurrent_writes_without_expected_version_serialise(client: Any) -> None:
    """Blind writers never lose an update: each bump is applied once, in some order."""
    headers = await login(client, "repartiteur1", "dispatcher")
    wo = await _work_order(client, headers)
    results = await asyncio.gather(
        *(
            client.post(
                f"/api/v1/work-orders/{wo['id']}/priority",
                json={"priority": 1 + i % 4},
                headers=headers,
            )
            for i in range(8)
        )
    )
    assert all(r.status_code == 200 for r in results), [r.text for r in results]
    final = (await client.get(f"/api/v1/work-orders/{wo['id']}", headers=headers)).json()
    assert final["version"] == wo["version"] + 8
    assert sorted(r.json()["version"] for r in results) == list(
        range(wo["version"] + 1, wo["version"] + 9)
    )
