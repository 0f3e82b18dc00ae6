"""SIGTERM to a `tournee scheduler` process in the middle of a push backlog: it claims no new
batch, sends and records the batch it holds, and exits at once; the rest stays pending, unclaimed,
for the next process, which delivers it. Every push reaches the push service exactly once.
A real OS process, on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from collections import Counter
from typing import Any

from server.notify.models import PushMessage
from server.notify.service import load_vapid_keys
from server.settings import Settings
from tests.integration.test_scheduler_jobs import ROOT, _all, _env
from tests.support.notify import (
    dispatcher,
    new_request,
    payloads,
    push_app,
    push_settings_fixture,
    subscribe,
)
from tests.support.push_service import PushService

PUSH_FIXTURES = (push_app, push_settings_fixture)  # this module's `app` and `settings`

BATCH = 2
LATENCY_S = 0.4  # each push takes this long at the push service: a batch is in hand for a while


async def _scheduler(settings: Settings) -> asyncio.subprocess.Process:
    env = _env(
        settings,
        TOURNEE_JOB_PUSH_SECONDS="0.2",
        TOURNEE_JOB_SLA_SECONDS="0",
        TOURNEE_JOB_PRUNE_SECONDS="0",
        TOURNEE_JOB_PHOTOS_SECONDS="0",
        TOURNEE_PUSH_BATCH=str(BATCH),
        TOURNEE_PUSH_TIMEOUT="5",
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "server.cli", "scheduler", env=env, cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    assert process.stdout is not None

    async def started() -> bytes:  # the start lines (e.g. the push services allowed) come first
        while line := await process.stdout.readline():  # type: ignore[union-attr]
            if line.startswith(b"scheduler started: "):
                return line
        return b""

    line = await asyncio.wait_for(started(), timeout=60)
    assert line.startswith(b"scheduler started: push_delivery"), line
    return process


async def test_a_stopped_scheduler_finishes_its_batch_and_claims_no_more(
    client: Any, settings: Settings
) -> None:
    with PushService(latency=LATENCY_S) as service:
        service.expect_application_server_key(load_vapid_keys(settings).public_key_b64url)
        headers = await dispatcher(client)
        browsers = []
        for n in range(8):
            request = await new_request(client, headers, n=n)
            for _ in range(2):
                browsers.append(service.new_subscription())
                answer = await subscribe(client, request["tracking_token"], browsers[-1])
                assert answer.status_code == 201
        # 16 confirmations wait in the outbox: 8 batches of 2, ~0.4 s each
        first = await _scheduler(settings)
        await service.wait_for_async(1, timeout=30)  # it is sending
        first.send_signal(signal.SIGTERM)
        sent = time.monotonic()
        code = await asyncio.wait_for(first.wait(), timeout=30)
        stopped_in = time.monotonic() - sent
        assert code == 0
        assert stopped_in < 4 * LATENCY_S + 3, f"{stopped_in:.1f}s"  # not the whole backlog
        by_first = len(service.received)
        assert by_first < len(browsers) - BATCH, by_first  # it stopped claiming
        rows = await _all(settings, PushMessage)
        delivered = [r for r in rows if r.state == "delivered"]
        assert len(delivered) == by_first  # what it sent, it recorded
        left = [r for r in rows if r.state == "pending"]
        assert left and all(r.claimed_by is None for r in left), [
            (r.id, r.claimed_by) for r in left
        ]  # nothing left under a lease: the next process need not wait

        second = await _scheduler(settings)
        try:
            await service.wait_for_async(len(browsers), timeout=60)
            await asyncio.sleep(1.0)  # time for a duplicate to show up
        finally:
            second.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(second.wait(), timeout=30) == 0
    deliveries = service.received
    assert service.rejections == []
    kinds = Counter(
        (d.endpoint, p["kind"]) for d, p in zip(deliveries, payloads(deliveries), strict=True)
    )
    assert len(deliveries) == len(browsers) and set(kinds.values()) == {1}
    assert {r.state for r in await _all(settings, PushMessage)} == {"delivered"}
