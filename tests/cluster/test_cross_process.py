"""Nothing works only in one process: a live update made through one API process reaches a
console connected to another; a photo upload started on one resumes on another; a client cannot
multiply its rate limit by reaching several processes. Real OS processes (`tournee cluster`'s
:class:`server.cluster.Cluster`) over the run's PostgreSQL."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from server.cluster import Cluster
from tests.cluster.support import running_cluster
from tests.integration.test_photos_resume import (
    _big_jpeg,
    _check_stored,
    _cut_patch,
    _login,
    _resume_and_finish,
    _wait_offset,
)
from tests.integration.test_sync_api_events import _login as _token
from tests.integration.test_sync_api_events import _next_event
from tests.support.live_server import stream_ticket

pytestmark = pytest.mark.postgres_only  # several processes share one database: PostgreSQL

SSE = {"Accept": "text/event-stream"}
PUBLIC_LIMIT = 6


@pytest.fixture(scope="module")
def cluster(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running_cluster(
        tmp_path_factory.mktemp("cluster"),
        api=3,
        schedulers=0,
        TOURNEE_RATE_LIMIT_REPORTS=f"{PUBLIC_LIMIT}/3600",
    ) as running:
        yield running


async def test_a_logout_on_one_process_ends_the_stream_on_another(
    app: Any, cluster: Cluster
) -> None:
    """The ticket is issued by C, redeemed by A; the logout goes through B: A's stream ends at
    once (LISTEN/NOTIFY), not when its 300 s are up."""
    a, b, c = cluster.api_urls
    async with (
        httpx.AsyncClient(base_url=a, timeout=20) as on_a,
        httpx.AsyncClient(base_url=b, timeout=20) as on_b,
        httpx.AsyncClient(base_url=c, timeout=20) as on_c,
    ):
        console = await _token(on_c, "repartiteur2", "dispatcher")
        async with on_a.stream(
            "GET", "/api/v1/live/events", params=await stream_ticket(on_c, console), headers=SSE
        ) as stream:
            lines = stream.aiter_lines()
            assert await _next_event(lines) == ("hello", {"channel": "dispatch"})
            out = await on_b.post(
                "/api/v1/auth/logout", headers={"Authorization": f"Bearer {console}"}
            )
            assert out.status_code == 204

            async def drain() -> None:
                async for _ in lines:
                    pass

            await asyncio.wait_for(drain(), 5)


async def test_a_change_made_on_one_process_reaches_a_console_on_another(
    app: Any, cluster: Cluster
) -> None:
    a, b, c = cluster.api_urls
    async with (
        httpx.AsyncClient(base_url=a, timeout=20) as on_a,
        httpx.AsyncClient(base_url=b, timeout=20) as on_b,
        httpx.AsyncClient(base_url=c, timeout=20) as on_c,
    ):
        console = await _token(on_c, "repartiteur1", "dispatcher")  # signed in on C
        other = {"Authorization": f"Bearer {await _token(on_b, 'admin', 'admin')}"}
        async with on_a.stream(
            "GET", "/api/v1/live/events", params=await stream_ticket(on_c, console), headers=SSE
        ) as stream:  # the console listens on A
            assert stream.status_code == 200
            lines = stream.aiter_lines()
            assert await _next_event(lines) == ("hello", {"channel": "dispatch"})
            created = await on_b.post(  # the change is made through B
                "/api/v1/work-orders",
                json={"service_code": "snow-sidewalk", "lat": 46.81, "lon": -71.2},
                headers=other,
            )
            assert created.status_code == 201, created.text
            event, data = await asyncio.wait_for(_next_event(lines), 15)
            assert event == "work_order_changed"
            assert data["id"] == created.json()["id"]
            assert data["version"] == created.json()["version"]
            submitted = await on_c.post(  # a citizen's request through C: A hears it too
                "/api/v1/public/requests",
                json={"service_code": "pothole", "lat": 46.8139, "lon": -71.2080,
                      "address": "100, rue Saint-Jean", "description": "Nid-de-poule"},
            )  # fmt: skip
            assert submitted.status_code == 201, submitted.text
            event, data = await asyncio.wait_for(_next_event(lines), 15)
            assert event == "request_created"
            assert data["status"] == submitted.json()["status"] and data["ids"] == [data["id"]]


def test_a_photo_upload_started_on_one_process_resumes_on_another(
    app: Any, cluster: Cluster
) -> None:
    a, b, c = cluster.api_urls
    headers = _login(c)
    data = _big_jpeg()
    sha = hashlib.sha256(data).hexdigest()
    created = httpx.post(
        f"{a}/api/v1/photos/uploads", json={"sha256": sha, "length": len(data)}, headers=headers
    ).json()
    _cut_patch(a, headers, created["id"], data, send=len(data) // 2)  # cut mid-body on A
    offset = _wait_offset(b, headers, created["id"])  # B knows how far A got
    assert 0 < offset <= len(data) // 2
    done = _resume_and_finish(b, headers, created["id"], data)  # and finishes it
    assert done["complete"] is True and done["offset"] == len(data)
    assert httpx.head(f"{c}/api/v1/photos/{sha}", headers=headers).status_code == 200
    _check_stored(data)


def test_a_rate_limit_is_one_budget_across_processes(app: Any, cluster: Cluster) -> None:
    answers = []
    for n in range(PUBLIC_LIMIT + 3):  # round robin over the three processes
        url = cluster.api_urls[n % 3]
        response = httpx.post(
            f"{url}/api/v1/public/requests",
            json={"service_code": "pothole", "lat": 46.80 + n * 0.003, "lon": -71.2080,
                  "address": f"{10 + n}, rue Saint-Jean", "description": f"Trou {n}"},
        )  # fmt: skip
        answers.append(response.status_code)
        if response.status_code == 429:
            assert int(response.headers["retry-after"]) > 0
            assert response.headers["content-type"].startswith("application/problem+json")
    # six accepted in all, not six per process; then every process refuses
    assert answers == [201] * PUBLIC_LIMIT + [429] * 3, answers
