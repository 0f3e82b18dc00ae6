"""Dispatcher actions through HTTP, each with its audit entry."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.data import login

pytestmark = pytest.mark.anyio if False else []

CITY = {"lat": 46.8139, "lon": -71.2080}


async def _dispatcher(client: Any) -> dict[str, str]:
    return await login(client, "repartiteur1", "dispatcher")


async def _new_request(client: Any, headers: dict[str, str], **over: Any) -> dict[str, Any]:
    body = {
        "service_code": "bulky-items",
        "description": "Vieux divan sur le trottoir",
        "address": "100, rue Saint-Jean",
        **CITY,
        **over,
    }
    response = await client.post("/api/v1/requests", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


async def test_health(client: Any) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"
    assert response.json()["database"] in ("sqlite", "postgresql")


async def _crew_id(client: Any, headers: dict[str, str], kind: str = "waste") -> int:
    crews = (await client.get("/api/v1/crews", headers=headers, params={"kind": kind})).json()
    return int(crews[0]["id"])


async def _history_actions(client: Any, headers: dict[str, str], wo_id: int) -> list[str]:
    detail = (await client.get(f"/api/v1/work-orders/{wo_id}", headers=headers)).json()
    return [event["action"] for event in detail["history"]]


async def test_request_to_work_order_to_assignment(client: Any) -> None:
    headers = await _dispatcher(client)
    request = await _new_request(client, headers)
    assert request["status"] == "received"
    assert "tracking_token" in request
    response = await client.post(
        "/api/v1/work-orders", json={"request_ids": [request["id"]]}, headers=headers
    )
    assert response.status_code == 201, response.text
    wo = response.json()
    assert wo["status"] == "new"
    assert wo["request_count"] == 1
    assert wo["service_code"] == "bulky-items"
    crew_id = await _crew_id(client, headers)
    load_before = (await client.get(f"/api/v1/crews/{crew_id}", headers=headers)).json()
    response = await client.post(
        f"/api/v1/work-orders/{wo['id']}/assign",
        json={"crew_id": crew_id, "expected_version": wo["version"]},
        headers=headers,
    )
    assert response.status_code == 200, response.text
    assigned = response.json()
    assert assigned["status"] == "assigned"
    # the crews' open load (work orders answer it, server/app.py crew_load) counts the new one
    crew = (await client.get(f"/api/v1/crews/{crew_id}", headers=headers)).json()
    assert crew["open_work_orders"] == load_before["open_work_orders"] + 1
    listed = (await client.get("/api/v1/crews", headers=headers)).json()
    assert [c["open_work_orders"] for c in listed if c["id"] == crew_id] == [
        crew["open_work_orders"]
    ]
    assert assigned["crew_id"] == crew_id
    assert assigned["version"] == wo["version"] + 1
    detail = (await client.get(f"/api/v1/work-orders/{wo['id']}", headers=headers)).json()
    assert [e["action"] for e in detail["history"]] == ["created", "assigned"]
    event = detail["history"][-1]
    assert event["changes"]["status"] == ["new", "assigned"]
    assert event["changes"]["crew_id"] == [None, crew_id]
    assert event["actor_role"] == "dispatcher"
    assert detail["requests"][0]["status"] == "scheduled"
    assert (
        detail["requests"][0]["reporter_name"] is None or "reporter_name" in detail["requests"][0]
    )


async def test_stale_version_is_refused_and_nothing_written(client: Any) -> None:
    headers = await _dispatcher(client)
    request = await _new_request(client, headers)
    wo = (
        await client.post(
            "/api/v1/work-orders", json={"request_ids": [request["id"]]}, headers=headers
        )
    ).json()
    response = await client.post(
        f"/api/v1/work-orders/{wo['id']}/priority",
        json={"priority": 1, "expected_version": wo["version"] + 5},
        headers=headers,
    )
    assert response.status_code == 409
    assert response.json()["code"] == "version_conflict"
    assert await _history_actions(client, headers, wo["id"]) == ["created"]


async def test_reprioritise_cancel_and_reopen(client: Any) -> None:
    headers = await _dispatcher(client)
    request = await _new_request(client, headers)
    wo = (
        await client.post(
            "/api/v1/work-orders", json={"request_ids": [request["id"]]}, headers=headers
        )
    ).json()
    r = await client.post(
        f"/api/v1/work-orders/{wo['id']}/priority", json={"priority": 1}, headers=headers
    )
    assert r.status_code == 200 and r.json()["priority"] == 1
    r = await client.post(
        f"/api/v1/work-orders/{wo['id']}/cancel", json={"reason": "  "}, headers=headers
    )
    assert r.status_code == 409 and r.json()["code"] == "reason_required"
    r = await client.post(
        f"/api/v1/work-orders/{wo['id']}/cancel",
        json={"reason": "Citoyen a rappelé"},
        headers=headers,
    )
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    assert r.json()["cancel_reason"] == "Citoyen a rappelé"
    req = (await client.get(f"/api/v1/requests/{request['id']}", headers=headers)).json()
    assert req["status"] == "closed"
    r = await client.post(
        f"/api/v1/work-orders/{wo['id']}/priority", json={"priority": 2}, headers=headers
    )
    assert r.status_code == 409
    r = await client.post(
        f"/api/v1/work-orders/{wo['id']}/transition", json={"action": "reopen"}, headers=headers
    )
    assert r.status_code == 200 and r.json()["status"] == "new"
    assert await _history_actions(client, headers, wo["id"]) == [
        "created",
        "reprioritised",
        "cancel",
        "reopen",
    ]


async def test_bulk_assign_is_all_or_nothing(client: Any) -> None:
    headers = await _dispatcher(client)
    ids = []
    for i in range(3):
        request = await _new_request(client, headers, lat=46.81 + i * 0.01)
        wo = (
            await client.post(
                "/api/v1/work-orders", json={"request_ids": [request["id"]]}, headers=headers
            )
        ).json()
        ids.append(wo["id"])
    crew_id = await _crew_id(client, headers)
    r = await client.post(
        "/api/v1/work-orders/bulk-assign",
        json={"work_order_ids": [*ids, 999_999], "crew_id": crew_id},
        headers=headers,
    )
    assert r.status_code == 404
    listing = (
        await client.get("/api/v1/work-orders", params={"crew_id": crew_id}, headers=headers)
    ).json()
    assert listing["total"] == 0, "a failed bulk assignment must leave nothing half-written"
    r = await client.post(
        "/api/v1/work-orders/bulk-assign",
        json={"work_order_ids": ids, "crew_id": crew_id},
        headers=headers,
    )
    assert r.status_code == 200, r.text
    assert sorted(r.json()["updated"]) == sorted(ids)
    for wo_id in ids:
        assert (await _history_actions(client, headers, wo_id))[-1] == "assigned"


async def test_duplicates_suggested_and_merged(client: Any) -> None:
    headers = await _dispatcher(client)
    first = await _new_request(client, headers)
    near = await _new_request(client, headers, lat=CITY["lat"] + 0.0002)  # ~22 m north
    far = await _new_request(client, headers, lat=CITY["lat"] + 0.002)  # ~220 m
    other_type = await _new_request(client, headers, service_code="waste-missed-garbage")
    assert [d["request_id"] for d in near["duplicates"]] == [first["id"]]
    suggestions = (
        await client.get(f"/api/v1/requests/{first['id']}/duplicates", headers=headers)
    ).json()
    ids = [s["request_id"] for s in suggestions]
    assert near["id"] in ids and far["id"] not in ids and other_type["id"] not in ids
    wo1 = (
        await client.post(
            "/api/v1/work-orders", json={"request_ids": [first["id"]]}, headers=headers
        )
    ).json()
    wo2 = (
        await client.post(
            "/api/v1/work-orders", json={"request_ids": [near["id"]]}, headers=headers
        )
    ).json()
    r = await client.post(
        f"/api/v1/work-orders/{wo1['id']}/merge",
        json={"request_ids": [near["id"]]},
        headers=headers,
    )
    assert r.status_code == 200, r.text
    merged = r.json()
    assert sorted(q["id"] for q in merged["requests"]) == sorted([first["id"], near["id"]])
    assert merged["request_count"] == 2
    emptied = (await client.get(f"/api/v1/work-orders/{wo2['id']}", headers=headers)).json()
    assert emptied["status"] == "cancelled"
    assert emptied["outcome"] == "duplicate"
    r = await client.post(
        f"/api/v1/work-orders/{wo1['id']}/merge",
        json={"request_ids": [other_type["id"]]},
        headers=headers,
    )
    assert r.status_code == 422 and r.json()["code"] == "request_type_mismatch"


async def test_filters_and_overdue(client: Any) -> None:
    headers = await _dispatcher(client)
    request = await _new_request(client, headers)
    wo = (
        await client.post(
            "/api/v1/work-orders", json={"request_ids": [request["id"]]}, headers=headers
        )
    ).json()
    listing = (
        await client.get("/api/v1/work-orders", params={"status": "new"}, headers=headers)
    ).json()
    assert wo["id"] in [i["id"] for i in listing["items"]]
    assert wo["overdue"] is False
    listing = (
        await client.get("/api/v1/work-orders", params={"overdue": "true"}, headers=headers)
    ).json()
    assert wo["id"] not in [i["id"] for i in listing["items"]]
    box = "-71.22,46.80,-71.20,46.82"
    listing = (
        await client.get("/api/v1/work-orders", params={"bbox": box}, headers=headers)
    ).json()
    assert wo["id"] in [i["id"] for i in listing["items"]]
    listing = (
        await client.get(
            "/api/v1/work-orders", params={"bbox": "-71.0,47.5,-70.9,47.6"}, headers=headers
        )
    ).json()
    assert listing["total"] == 0
    r = await client.get("/api/v1/work-orders", params={"bbox": "nonsense"}, headers=headers)
    assert r.status_code == 422 and r.json()["code"] == "bbox_invalid"
    r = await client.get("/api/v1/work-orders", params={"limit": 0}, headers=headers)
    assert r.status_code == 400
    due = [
        i["due_at"]
        for i in (await client.get("/api/v1/work-orders", headers=headers)).json()["items"]
    ]
    assert due == sorted(due)


async def test_bad_input_is_4xx_problem(client: Any) -> None:
    headers = await _dispatcher(client)
    cases = [
        ("POST", "/api/v1/work-orders/1/assign", {"crew_id": "abc"}, 400),
        ("POST", "/api/v1/work-orders/999999/assign", {"crew_id": 1}, 404),
        ("POST", "/api/v1/work-orders", {"request_ids": [999999]}, 404),
        ("POST", "/api/v1/work-orders", {"service_code": "bulky-items"}, 422),
        ("POST", "/api/v1/requests", {"service_code": "nope", "lat": 46.81, "lon": -71.2}, 422),
        (
            "POST",
            "/api/v1/requests",
            {"service_code": "bulky-items", "lat": 45.5, "lon": -73.5},
            422,
        ),
        ("POST", "/api/v1/requests", {"service_code": "bulky-items", "lat": 999, "lon": 0}, 400),
    ]
    for method, path, body, status in cases:
        response = await client.request(method, path, json=body, headers=headers)
        assert response.status_code == status, (path, body, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["code"]
    big = {"description": "x" * 2_000_000}
    response = await client.post("/api/v1/requests", json=big, headers=headers)
    assert response.status_code == 413


async def test_crew_sees_only_its_orders_and_no_reporter_contact(client: Any) -> None:
    headers = await _dispatcher(client)
    request = await _new_request(
        client, headers, reporter_name="Jeanne Citoyenne", reporter_phone="418-555-0199"
    )
    wo = (
        await client.post(
            "/api/v1/work-orders", json={"request_ids": [request["id"]]}, headers=headers
        )
    ).json()
    crew_headers = await login(client, "mtremblay", "crew", device_label="Téléphone")
    me = (await client.get("/api/v1/auth/me", headers=crew_headers)).json()
    r = await client.get(f"/api/v1/crew/work-orders/{wo['id']}", headers=crew_headers)
    assert r.status_code == 403 and r.json()["code"] == "not_your_crew"
    await client.post(
        f"/api/v1/work-orders/{wo['id']}/assign", json={"crew_id": me["crew_id"]}, headers=headers
    )
    r = await client.get(f"/api/v1/crew/work-orders/{wo['id']}", headers=crew_headers)
    assert r.status_code == 200
    assert "Jeanne" not in r.text and "418-555-0199" not in r.text
    mine = (await client.get("/api/v1/crew/work-orders", headers=crew_headers)).json()
    assert [i["id"] for i in mine["items"]] == [wo["id"]]
    for action in ("start_route", "arrive", "hold", "resume"):
        r = await client.post(
            f"/api/v1/crew/work-orders/{wo['id']}/transition",
            json={"action": action},
            headers=crew_headers,
        )
        assert r.status_code == 200, r.text
    r = await client.post(
        f"/api/v1/crew/work-orders/{wo['id']}/transition",
        json={"action": "complete"},
        headers=crew_headers,
    )
    assert r.status_code == 409 and r.json()["code"] == "outcome_required"
    r = await client.post(
        f"/api/v1/crew/work-orders/{wo['id']}/transition",
        json={"action": "cancel", "reason": "x"},
        headers=crew_headers,
    )
    assert r.status_code == 409 and r.json()["code"] == "role_not_allowed"
    r = await client.post(
        f"/api/v1/crew/work-orders/{wo['id']}/transition",
        json={"action": "complete", "outcome": "fixed", "note": "Divan ramassé"},
        headers=crew_headers,
    )
    assert r.status_code == 200 and r.json()["status"] == "completed"
    detail = (await client.get(f"/api/v1/work-orders/{wo['id']}", headers=headers)).json()
    last = detail["history"][-1]
    assert last["action"] == "complete" and last["device_id"] is not None
    assert last["changes"]["status"] == ["on_site", "completed"]
