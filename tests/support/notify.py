"""Helpers for the citizen-push and scheduler tests: settings that accept the local push
service, an app over them, and the HTTP steps a citizen and a dispatcher take."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from server.db import Database
from server.notify.jobs import DeliveryReport, deliver_pushes
from server.notify.service import load_vapid_keys
from server.settings import Settings, get_settings
from tests.support.data import login, reset_and_seed
from tests.support.push_service import Delivery

SUB = "mailto:dispatch@tournee.example"
CITY = {"lat": 46.8139, "lon": -71.2080}


def push_settings(tmp_path: Path, **over: Any) -> Settings:
    """The run's settings, with pushes allowed to 127.0.0.1 and a VAPID key under tmp_path."""
    values: dict[str, Any] = {
        "push_endpoint_hosts": ("127.0.0.1",),
        "vapid_private_key": str(tmp_path / "vapid" / "private.pem"),
        "vapid_subject": SUB,
        "quiet_hours": "off",
        "push_timeout_seconds": 5.0,
    }
    values.update(over)
    return dataclasses.replace(get_settings(), **values)


async def app_over(settings: Settings) -> AsyncIterator[Any]:
    from server.app import create_app

    application = create_app(settings)
    db = Database(settings)
    try:
        await reset_and_seed(db)
    finally:
        await db.dispose()
    yield application


@pytest.fixture(name="settings")
def push_settings_fixture(tmp_path: Path) -> Settings:
    """For push tests: import it (with :func:`push_app`) to override ``settings`` and ``app``."""
    return push_settings(tmp_path)


@pytest.fixture(name="app")
async def push_app(database_url: str, settings: Settings) -> AsyncIterator[Any]:
    """The app over the push settings (a clean, seeded database)."""
    async for application in app_over(settings):
        yield application


async def run_push_job(
    settings: Settings, now: datetime | None = None, worker: str | None = None
) -> DeliveryReport:
    db = Database(settings)
    try:
        return await deliver_pushes(db, settings, load_vapid_keys(settings), now=now, worker=worker)
    finally:
        await db.dispose()


async def dispatcher(client: Any) -> dict[str, str]:
    return await login(client, "repartiteur1", "dispatcher")


async def new_request(
    client: Any, headers: dict[str, str], n: int = 0, **over: Any
) -> dict[str, Any]:
    """A request taken by a 311 agent; `n` spreads locations so they are not duplicates."""
    body = {
        "service_code": "bulky-items",
        "description": "Vieux divan sur le trottoir",
        "address": f"{100 + n}, rue Saint-Jean",
        "lat": CITY["lat"] + n * 0.001,
        "lon": CITY["lon"],
        **over,
    }
    response = await client.post("/api/v1/requests", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def subscribe(
    client: Any, token: str, subscription: dict[str, Any], language: str | None = "fr"
) -> Any:
    body: dict[str, Any] = {"subscription": subscription}
    if language is not None:
        body["language"] = language
    return await client.post(f"/api/v1/public/requests/{token}/push-subscription", json=body)


async def work_order_for(client: Any, headers: dict[str, str], request_ids: list[int]) -> int:
    response = await client.post(
        "/api/v1/work-orders", json={"request_ids": request_ids}, headers=headers
    )
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


async def crew_id(client: Any, headers: dict[str, str], kind: str = "waste") -> int:
    crews = (await client.get("/api/v1/crews", headers=headers, params={"kind": kind})).json()
    return int(crews[0]["id"])


async def assign(client: Any, headers: dict[str, str], wo_id: int) -> None:
    crew = await crew_id(client, headers)
    response = await client.post(
        f"/api/v1/work-orders/{wo_id}/assign", json={"crew_id": crew}, headers=headers
    )
    assert response.status_code == 200, response.text


async def act(client: Any, headers: dict[str, str], wo_id: int, action: str, **body: Any) -> None:
    response = await client.post(
        f"/api/v1/work-orders/{wo_id}/transition", json={"action": action, **body}, headers=headers
    )
    assert response.status_code == 200, response.text


def payloads(deliveries: list[Delivery]) -> list[dict[str, Any]]:
    return [json.loads(d.payload) for d in deliveries]
