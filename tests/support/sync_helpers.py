"""Helpers for the sync API tests: devices, work orders in a crew's scope, push and pull."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from tests.support.data import login

CITY = {"lat": 46.8139, "lon": -71.2080}
SNOW_1 = "snow-cite-limoilou-1"  # mtremblay, sgagnon, sroy
SNOW_2 = "snow-cite-limoilou-2"  # icote, pbouchard


@dataclass
class Device:
    client: Any
    headers: dict[str, str]
    crew_id: int
    client_id: str = field(default_factory=lambda: f"dev-{uuid.uuid4().hex}")
    next_id: int = 1
    cookie: str | None = None
    replica: dict[str, Any] = field(default_factory=dict)

    def mutation(
        self, name: str, args: dict[str, Any], base_version: int | None, **extra: Any
    ) -> dict[str, Any]:
        m = {
            "id": self.next_id,
            "name": name,
            "base_version": base_version,
            "client_ts": "2025-01-15T09:00:00-05:00",
            "args": args,
            **extra,
        }
        self.next_id += 1
        return m

    async def push_raw(self, mutations: list[dict[str, Any]], **over: Any) -> Any:
        body = {
            "protocol": 1,
            "schema_version": 1,
            "client_id": self.client_id,
            "mutations": mutations,
            **over,
        }
        return await self.client.post("/sync/v1/push", json=body, headers=self.headers)

    async def push(self, *mutations: dict[str, Any]) -> dict[str, Any]:
        response = await self.push_raw(list(mutations))
        assert response.status_code == 200, response.text
        return dict(response.json())

    async def pull_raw(self, cookie: str | None, **over: Any) -> Any:
        body = {
            "protocol": 1,
            "schema_version": 1,
            "client_id": self.client_id,
            "cookie": cookie,
            **over,
        }
        return await self.client.post("/sync/v1/pull", json=body, headers=self.headers)

    async def pull(self, **over: Any) -> list[dict[str, Any]]:
        """Pull every page, apply to the replica; returns the pages."""
        pages = []
        cookie = self.cookie
        while True:
            response = await self.pull_raw(cookie, **over)
            assert response.status_code == 200, response.text
            page = response.json()
            pages.append(page)
            if page["reset"]:
                self.replica.clear()
            for op in page["patch"]:
                if op["op"] == "put":
                    self.replica[op["key"]] = op["value"]
                else:
                    self.replica.pop(op["key"], None)
            cookie = page["cookie"]
            if not page["has_more"]:
                break
        self.cookie = cookie
        return pages

    def order(self, wo_id: int) -> dict[str, Any]:
        return dict(self.replica[f"work_order/{wo_id}"])


async def crew_ids(client: Any, dispatcher: dict[str, str]) -> dict[str, int]:
    crews = (await client.get("/api/v1/crews", headers=dispatcher)).json()
    return {c["code"]: c["id"] for c in crews}


async def device(client: Any, username: str) -> Device:
    headers = await login(client, username, "crew", device_label=f"Téléphone {username}")
    me = (await client.get("/api/v1/auth/me", headers=headers)).json()
    return Device(client, headers, int(me["crew_id"]))


async def work_order(
    client: Any,
    dispatcher: dict[str, str],
    crew_id: int | None,
    service_code: str = "snow-sidewalk",
    **over: Any,
) -> dict[str, Any]:
    body = {"service_code": service_code, "address": "100, rue Saint-Jean", **CITY, **over}
    if crew_id is not None:
        body["crew_id"] = crew_id
    response = await client.post("/api/v1/work-orders", json=body, headers=dispatcher)
    assert response.status_code == 201, response.text
    wo = dict(response.json())
    if crew_id is not None:
        detail = (await client.get(f"/api/v1/work-orders/{wo['id']}", headers=dispatcher)).json()
        wo["version"] = detail["version"]
        wo["status"] = detail["status"]
    return wo


def new_uuid() -> str:
    return str(uuid.uuid4())
