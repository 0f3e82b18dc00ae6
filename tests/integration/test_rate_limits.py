"""Rate limits on the public writes, sign-in and Open311 POST, counted in the database
(server/ratelimit.py, docs/adr/0043): two app instances over one database (two API processes)
share one limit; sliding windows on a clock the test controls."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
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
from tests.support.live_server import free_port
from tests.support.push_service import PushService

DEFAULTS = {name: f.default for name, f in Settings.__dataclass_fields__.items()}


class Clock:
    """The rate limiter's clock (``app.state.clock``), moved by the test."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at

    def advance(self, seconds: float) -> None:
        self.at += timedelta(seconds=seconds)


def with_clock(settings: Settings, clock: Clock) -> Any:
    application = create_app(settings)
    application.state.clock = clock
    return application


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
        get_settings(),
        rate_limit_reports=((3, 3600),),
        rate_limit_subscriptions=((3, 3600),),
        rate_limit_login=((2, 900),),
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


def _subscription(endpoint: str) -> dict[str, Any]:
    return {"subscription": {"endpoint": endpoint}}  # no keys: a 400 after the guard


async def test_reports_and_subscriptions_are_counted_apart(
    two_processes: tuple[Any, Any],
) -> None:
    first, second = two_processes
    tokens = []
    for n in range(3):  # the whole report budget
        created = await first.post("/api/v1/public/requests", json=submission(n))
        assert created.status_code == 201
        tokens.append(created.json()["tracking_token"])
    statuses = [
        (
            await second.post(
                f"/api/v1/public/requests/{tokens[n % 3]}/push-subscription",
                json=_subscription(f"https://fcm.googleapis.com/fcm/send/{n}"),
            )
        ).status_code
        for n in range(4)
    ]
    # reports used none of the subscription budget; an invalid subscription counts (the guard
    # runs first)
    assert statuses == [400, 400, 400, 429]


async def test_subscriptions_are_limited_per_token_and_per_endpoint(limited: Settings) -> None:
    settings = dataclasses.replace(
        limited,
        rate_limit_subscriptions=None,
        rate_limit_reports=None,
        rate_limit_subscriptions_token=((2, 3600),),
        rate_limit_subscriptions_endpoint=((3, 3600),),
    )
    async with AsyncTestClient(app=create_app(settings), raise_server_exceptions=False) as c:
        tokens = [
            (await c.post("/api/v1/public/requests", json=submission(n))).json()["tracking_token"]
            for n in range(4)
        ]

        async def sub(token: str, endpoint: str) -> int:
            url = f"/api/v1/public/requests/{token}/push-subscription"
            return int((await c.post(url, json=_subscription(endpoint))).status_code)

        # one token, many endpoints: the token's limit
        one_token = [await sub(tokens[0], f"https://fcm.googleapis.com/x/{n}") for n in range(3)]
        assert one_token == [400, 400, 429]
        # one endpoint, many tokens: the endpoint's limit (the refused hit above did not count)
        same = "https://fcm.googleapis.com/fcm/send/same"
        one_endpoint = [await sub(tokens[1 + n % 3], same) for n in range(4)]
        assert one_endpoint == [400, 400, 400, 429]
        assert await sub(tokens[3], "https://fcm.googleapis.com/other") == 400  # others go on


async def test_a_sliding_window_has_no_burst_at_the_edge(limited: Settings) -> None:
    settings = dataclasses.replace(limited, rate_limit_reports=((10, 60),))
    start = datetime.fromtimestamp(60 * (int(time.time()) // 60 + 10), UTC)  # a minute edge
    clock = Clock(start + timedelta(seconds=55))
    async with AsyncTestClient(app=with_clock(settings, clock), raise_server_exceptions=False) as c:

        async def post(n: int) -> int:
            return int((await c.post("/api/v1/public/requests", json=submission(n))).status_code)

        assert [await post(n) for n in range(10)] == [201] * 10
        clock.advance(10)  # 5 s into the next window: a fixed window would allow 10 more
        refused = await c.post("/api/v1/public/requests", json=submission(10))
        assert refused.status_code == 429
        # 10 × (1 − elapsed/60) ≤ 9 from elapsed = 6 on: one fits again 1 s later, not before
        assert int(refused.headers["retry-after"]) == 1
        clock.advance(1)
        assert [await post(20), await post(21)] == [201, 429]
        clock.advance(60)  # a window later, the old hits have slid out
        assert [await post(30 + n) for n in range(9)] == [201] * 9


async def test_500_citizens_behind_one_address_are_served_and_a_script_is_stopped(
    app: Any, tmp_path: Path
) -> None:
    """Issue 19: a carrier NAT puts a storm night's citizens behind one address. 500 of them
    report and subscribe within an hour (the default limits); a script hammering from the same
    address then gets 429 after the per-minute budget."""
    settings = dataclasses.replace(
        get_settings(),
        **{k: DEFAULTS[k] for k in DEFAULTS if k.startswith("rate_limit_")},
        push_endpoint_hosts=("127.0.0.1",),
    )
    clock = Clock(datetime.fromtimestamp(3600 * (int(time.time()) // 3600 + 2) + 1234, UTC))
    with PushService() as push:
        async with AsyncTestClient(
            app=with_clock(settings, clock), raise_server_exceptions=False
        ) as c:
            for n in range(500):
                clock.advance(7.2)  # 500 in one hour
                created = await c.post("/api/v1/public/requests", json=submission(n))
                assert created.status_code == 201, (n, created.text)
                token = created.json()["tracking_token"]
                subscribed = await c.post(
                    f"/api/v1/public/requests/{token}/push-subscription",
                    json={"subscription": push.new_subscription()},
                )
                assert subscribed.status_code == 201, (n, subscribed.text)
            hammered = []
            for n in range(300):  # a script, one second
                clock.advance(1 / 300)
                answer = await c.post("/api/v1/public/requests", json=submission(1000 + n))
                hammered.append(answer.status_code)
    admitted = hammered.count(201)
    assert 0 < admitted <= 60 and hammered.count(429) == 300 - admitted
    assert hammered[-100:] == [429] * 100
    db = Database(settings)
    try:
        async with db.transaction() as tx:
            stored = (await tx.execute(select(func.count()).select_from(ServiceRequest))).scalar()
        assert stored == 500 + admitted  # refused ones wrote nothing
    finally:
        await db.dispose()


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


async def test_sign_in_is_limited_per_account_too(limited: Settings) -> None:
    """Issue 12: guessing one account's password from many addresses meets the account's
    limit; the account's owner elsewhere and other accounts are not locked out by it forever."""
    settings = dataclasses.replace(
        limited, rate_limit_login=None, rate_limit_login_account=((3, 900),)
    )
    async with AsyncTestClient(app=create_app(settings), raise_server_exceptions=False) as c:
        wrong = [
            (
                await c.post(
                    "/api/v1/auth/login",
                    json={"username": name, "password": "guess-guess"},
                )
            ).status_code
            for name in ("repartiteur1", "REPARTITEUR1", "Repartiteur1", "repartiteur1")
        ]
        assert wrong == [401, 401, 401, 429]  # the username is counted case-folded
        other = {"username": "admin", "password": "guess-guess"}
        assert (await c.post("/api/v1/auth/login", json=other)).status_code == 401


async def test_open311_posts_are_limited_per_api_key(limited: Settings) -> None:
    """Issue 12: 4,000 POSTs from one key were accepted."""
    from tests.integration.test_open311 import bulky, new_key

    settings = dataclasses.replace(limited, rate_limit_open311=((3, 3600),))
    async with AsyncTestClient(app=create_app(settings), raise_server_exceptions=False) as c:
        key, other = await new_key(c, "Partner A"), await new_key(c, "Partner B")
        url = "/open311/v2/requests.json"
        statuses = [(await c.post(url, data=bulky(key))).status_code for _ in range(4)]
        assert statuses == [201, 201, 201, 429]
        in_query = await c.post(url, params={"api_key": key}, data=bulky())
        assert in_query.status_code == 429  # the same key, passed in the query string
        assert int(in_query.headers["retry-after"]) >= 1
        assert (await c.post(url, data=bulky(other))).status_code == 201


# --- forwarded headers -------------------------------------------------------------------------


@pytest.fixture
def served(app: Any) -> Iterator[Any]:
    """``tournee run`` in its own process (the way production starts uvicorn)."""
    processes: list[subprocess.Popen[bytes]] = []

    def start(**env: str) -> str:
        port = free_port()
        process = subprocess.Popen(
            [sys.executable, "-m", "server.cli", "run", "--no-migrate",
             "--host", "127.0.0.1", "--port", str(port)],
            env={**os.environ, "TOURNEE_RATE_LIMIT_LOGIN": "2/900", **env},
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )  # fmt: skip
        processes.append(process)
        url = f"http://127.0.0.1:{port}"
        for _ in range(200):
            try:
                httpx.get(f"{url}/healthz", timeout=1)
                return url
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError("tournee run did not start")

    yield start
    for process in processes:
        process.terminate()
        process.wait(timeout=30)


def _logins(url: str, addresses: list[str]) -> list[int]:
    wrong = {"username": "nobody-here", "password": "guess-guess"}
    return [
        httpx.post(
            f"{url}/api/v1/auth/login", json=wrong, headers={"X-Forwarded-For": address}
        ).status_code
        for address in addresses
    ]


def test_a_forged_forwarded_header_does_not_reset_the_limit(served: Any) -> None:
    """Issue 12: uvicorn trusts X-Forwarded-For from 127.0.0.1 by default; `tournee run` trusts
    it from nobody unless TOURNEE_FORWARDED_ALLOW_IPS says so."""
    url = served()
    assert _logins(url, ["203.0.113.1", "203.0.113.2", "203.0.113.3"]) == [401, 401, 429]


def test_a_trusted_proxy_passes_the_real_address(served: Any) -> None:
    url = served(TOURNEE_FORWARDED_ALLOW_IPS="127.0.0.1")
    assert _logins(url, ["203.0.113.1", "203.0.113.2", "203.0.113.3"]) == [401, 401, 401]
    assert _logins(url, ["203.0.113.9"] * 3) == [401, 401, 429]


async def test_limits_off_and_windows_pruned(limited: Settings) -> None:
    unlimited = dataclasses.replace(limited, rate_limit_reports=None)
    async with AsyncTestClient(app=create_app(unlimited), raise_server_exceptions=False) as c:
        for n in range(5):
            assert (await c.post("/api/v1/public/requests", json=submission(n))).status_code == 201
    async with AsyncTestClient(app=create_app(limited), raise_server_exceptions=False) as c:
        assert (await c.post("/api/v1/public/requests", json=submission(7))).status_code == 201
    db = Database(limited)
    try:
        async with db.transaction() as tx:
            count = (await tx.execute(select(func.count()).select_from(RateLimitWindow))).scalar()
        assert count == 1  # one window for the one limit of the one key
        await prune_expired_data(db, limited, now=utcnow())
        async with db.transaction() as tx:
            assert (
                await tx.execute(select(func.count()).select_from(RateLimitWindow))
            ).scalar() == 1
        report = await prune_expired_data(db, limited, now=utcnow() + timedelta(hours=3))
        assert report.rate_windows == 1
    finally:
        await db.dispose()


def test_a_malformed_limit_fails_at_start_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOURNEE_RATE_LIMIT_REPORTS", "lots")
    get_settings.cache_clear()
    try:
        with pytest.raises(ValueError, match="TOURNEE_RATE_LIMIT_REPORTS"):
            get_settings()
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()


def test_several_limits_parse(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOURNEE_RATE_LIMIT_OPEN311", " 5/60 , 100/3600 ")
    monkeypatch.setenv("TOURNEE_FORWARDED_ALLOW_IPS", "10.0.0.2")
    get_settings.cache_clear()
    try:
        settings = get_settings()
        assert settings.rate_limit_open311 == ((5, 60), (100, 3600))
        assert settings.forwarded_allow_ips == "10.0.0.2"
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
    assert DEFAULTS["forwarded_allow_ips"] == ""  # no forwarded header trusted by default
