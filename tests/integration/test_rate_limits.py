"""Rate limits on the public writes and on sign-in, counted in the database (server/ratelimit.py):
two app instances over one database (two API processes) share one limit."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select

from server.app import create_app
from server.db import Database
from server.dbtypes import utcnow
from server.jobs import prune_expired_data
from server.ratelimit import RateLimitWindow
from server.requests.models import ServiceRequest
from server.settings import Settings, get_settings

CITY = {"lat": 46.8139, "lon": -71.2080}


def submission(n: int) -> dict[str, Any]:
    return {
        "service_code": "bulky-items",
        "address": f"{n}, rue Saint-Jean",
        "description": "Vieux divan sur le trottoir",
        **CITY,
    }


@pytest.fixture
def limited(app: Any) -> Settings:
    # `app` resets and seeds the database; the limited apps below are built over it.
    return dataclasses.replace(
        get_settings(), rate_limit_public=(3, 3600), rate_limit_login=(2, 900)
    )


@pytest.fixture
async def two_processes(limited: Settings) -> AsyncIterator[tuple[Any, Any]]:
    async with (
        AsyncTestClient(app=create_app(limited), raise_server_exceptions=False) as first,
        AsyncTestClient(app=create_app(limited), raise_server_exceptions=False) as second,
    ):
        yield first, second


async def test_public_intake_is_limited_across_processes(
    two_processes: tuple[Any, Any], limited: Settings
) -> None:
    first, second = two_processes
    answers = [
        await (first if n % 2 else second).post("/api/v1/public/requests", json=submission(n))
        for n in range(4)
    ]
    assert [a.status_code for a in answers[:3]] == [201, 201, 201]
    refused = answers[3]
    assert refused.status_code == 429
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["code"] == "too_many_requests"
    assert 1 <= int(refused.headers["retry-after"]) <= 3600
    english = await first.post(
        "/api/v1/public/requests", json=submission(9), headers={"Accept-Language": "en"}
    )
    assert english.status_code == 429
    assert english.json()["title"] == "Too many requests. Try again shortly."
    # Nothing half-written: the refused submissions created no request.
    db = Database(limited)
    try:
        async with db.transaction() as tx:
            stored = (await tx.execute(select(func.count()).select_from(ServiceRequest))).scalar()
        assert stored == 3
    finally:
        await db.dispose()


async def test_push_subscriptions_share_the_public_limit(two_processes: tuple[Any, Any]) -> None:
    first, second = two_processes
    created = await first.post("/api/v1/public/requests", json=submission(1))
    token = created.json()["tracking_token"]
    body = {"subscription": {"endpoint": "https://push.example.net/send/abc"}}  # no keys
    statuses = [
        (
            await second.post(f"/api/v1/public/requests/{token}/push-subscription", json=body)
        ).status_code
        for _ in range(3)
    ]
    # one hit for the submission; an invalid subscription counts too (the guard runs first)
    assert statuses == [400, 400, 429]


async def test_sign_in_attempts_are_limited_failed_ones_included(
    two_processes: tuple[Any, Any],
) -> None:
    first, second = two_processes
    wrong = {"username": "repartiteur1", "password": "not-the-password"}
    assert (await first.post("/api/v1/auth/login", json=wrong)).status_code == 401
    assert (await second.post("/api/v1/auth/login", json=wrong)).status_code == 401
    right = {"username": "repartiteur1", "password": "repartition-demo"}
    refused = await first.post("/api/v1/auth/login", json=right)
    assert refused.status_code == 429
    assert refused.json()["code"] == "too_many_requests"


async def test_limits_off_and_windows_pruned(limited: Settings) -> None:
    unlimited = dataclasses.replace(limited, rate_limit_public=None)
    async with AsyncTestClient(app=create_app(unlimited), raise_server_exceptions=False) as c:
        for n in range(5):
            assert (await c.post("/api/v1/public/requests", json=submission(n))).status_code == 201
    async with AsyncTestClient(app=create_app(limited), raise_server_exceptions=False) as c:
        assert (await c.post("/api/v1/public/requests", json=submission(7))).status_code == 201
    db = Database(limited)
    try:
        async with db.transaction() as tx:
            count = (await tx.execute(select(func.count()).select_from(RateLimitWindow))).scalar()
        assert count == 1
        await prune_expired_data(db, limited, now=utcnow())
        async with db.transaction() as tx:
            assert (
                await tx.execute(select(func.count()).select_from(RateLimitWindow))
            ).scalar() == 1
        report = await prune_expired_data(db, limited, now=utcnow() + timedelta(hours=2))
        assert report.rate_windows == 1
    finally:
        await db.dispose()


def test_a_malformed_limit_fails_at_start_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOURNEE_RATE_LIMIT_PUBLIC", "lots")
    get_settings.cache_clear()
    try:
        with pytest.raises(ValueError, match="TOURNEE_RATE_LIMIT_PUBLIC"):
            get_settings()
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
