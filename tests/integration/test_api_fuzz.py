"""Schemathesis over our OpenAPI schema, against a real server: no input gives a 5xx.

Run longer with TOURNEE_FUZZ_EXAMPLES=500 make test-sqlite PYTEST_ARGS=-k fuzz.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from tests.support.data import PASSWORDS
from tests.support.live_server import LiveServer

MAX_EXAMPLES = int(os.environ.get("TOURNEE_FUZZ_EXAMPLES", "12"))


@pytest.fixture(scope="module")
def live(database_url: str) -> Iterator[dict[str, str]]:
    from server.app import create_app
    from server.db import Database
    from server.settings import get_settings
    from tests.support.data import reset_and_seed

    app_settings = get_settings()

    async def seed() -> None:
        db = Database(app_settings)
        try:
            await reset_and_seed(db)
        finally:
            await db.dispose()

    asyncio.run(seed())
    with LiveServer(create_app(app_settings)) as server:
        response = httpx.post(
            f"{server.url}/api/v1/auth/login",
            json={"username": "admin", "password": PASSWORDS["admin"]},
        )
        response.raise_for_status()
        yield {"url": server.url, "token": response.json()["token"]}


def _operations(live: dict[str, str]) -> list[Any]:
    schema = schemathesis.openapi.from_url(f"{live['url']}/schema/openapi.json")
    return [result.ok() for result in schema.get_all_operations()]


# schemathesis' pytest plugin does not load under pytest 9 ('Function' has no '_nodeid'), so the
# operations are driven directly with Hypothesis: same generation, same check.
def test_no_server_error(live: dict[str, str]) -> None:
    headers = {"Authorization": f"Bearer {live['token']}"}
    failures: list[str] = []
    operations = _operations(live)
    assert len(operations) >= 30
    for operation in operations:
        if operation.path == "/api/v1/auth/logout":
            continue

        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        @given(case=operation.as_strategy())
        def check(case: Any) -> None:
            response = case.call(base_url=live["url"], headers=headers)
            where = f"{case.method} {case.formatted_path}"
            if response.status_code >= 500:
                failures.append(f"{where}: {response.status_code} {response.text[:300]}")
            elif response.status_code >= 400 and "application/problem+json" not in str(
                response.headers.get("content-type")
            ):
                failures.append(f"{where}: {response.status_code} without problem+json")

        check()
    assert failures == [], "\n".join(failures[:20])
