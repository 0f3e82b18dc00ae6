"""Scheduled jobs: SLA escalation, pruning, the in-process scheduler, the `tournee scheduler`
and `tournee vapid` commands, and two scheduler processes sharing one PostgreSQL outbox."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import select

from server.db import Database
from server.dbtypes import utcnow
from server.jobs import escalate_overdue_work_orders, prune_expired_data, run_photo_jobs
from server.live import bus as live
from server.notify.models import DispatcherNotice, PushMessage, PushSubscription
from server.notify.service import load_vapid_keys
from server.scheduler import build_scheduler
from server.settings import Settings
from tests.support.notify import (
    SUB,
    act,
    app_over,
    assign,
    dispatcher,
    new_request,
    payloads,
    push_app,
    push_settings,
    push_settings_fixture,
    run_push_job,
    subscribe,
    work_order_for,
)
from tests.support.push_service import PushService

PUSH_FIXTURES = (push_app, push_settings_fixture)  # this module's `app` and `settings`

ROOT = Path(__file__).resolve().parents[2]


async def _all(settings: Settings, model: Any) -> list[Any]:
    db = Database(settings)
    try:
        async with db.transaction() as tx:
            return list((await tx.execute(select(model).order_by(model.id))).scalars())
    finally:
        await db.dispose()


async def _escalate(settings: Settings, now: datetime) -> list[int]:
    db = Database(settings)
    try:
        return await escalate_overdue_work_orders(db, settings, now=now)
    finally:
        await db.dispose()


# --- SLA escalation ----------------------------------------------------------------------------


async def test_overdue_work_orders_are_escalated_once_with_an_audit_row(
    client: Any, settings: Settings
) -> None:
    headers = await dispatcher(client)
    late = await work_order_for(client, headers, [(await new_request(client, headers))["id"]])
    done = await work_order_for(client, headers, [(await new_request(client, headers, n=1))["id"]])
    await assign(client, headers, done)
    await act(client, headers, done, "complete", outcome="fixed")
    due_at = datetime.fromisoformat(
        (await client.get(f"/api/v1/work-orders/{late}", headers=headers)).json()["due_at"]
    )
    assert await _escalate(settings, due_at - timedelta(minutes=1)) == []

    after = due_at + timedelta(hours=2)
    channels = live.make_plugin(settings)  # what an API process's dispatch stream listens to
    async with channels, channels.start_subscription([live.DISPATCH_CHANNEL]) as dispatch_desk:
        db = Database(settings)
        live.install(db, channels, settings)  # as the in-process scheduler's database is
        try:
            assert await escalate_overdue_work_orders(db, settings, now=after) == [late]
        finally:
            await db.dispose()
        raw = await asyncio.wait_for(dispatch_desk.iter_events().__anext__(), timeout=10)
    assert json.loads(raw) == {"event": "sla_escalated", "data": {"work_order_ids": [late]}}
    assert await _escalate(settings, after + timedelta(hours=1)) == []  # flagged once

    detail = (await client.get(f"/api/v1/work-orders/{late}", headers=headers)).json()
    assert datetime.fromisoformat(detail["escalated_at"]) == after
    escalations = [e for e in detail["history"] if e["action"] == "escalated"]
    assert len(escalations) == 1
    assert escalations[0]["actor_role"] == "system"
    assert escalations[0]["reason"] == "overdue by 120 min"
    assert detail["version"] == 1  # a server flag, not an edit crews could conflict with
    [notice] = await _all(settings, DispatcherNotice)
    assert (notice.kind, notice.work_order_id) == ("sla_overdue", late)
    assert notice.data["overdue_minutes"] == 120
    listed = (await client.get("/api/v1/work-orders", headers=headers)).json()["items"]
    assert {w["id"]: w["escalated_at"] is not None for w in listed} == {late: True, done: False}


# --- pruning -----------------------------------------------------------------------------------


async def test_prune_removes_only_what_has_expired(client: Any, settings: Settings) -> None:
    with PushService() as service:
        service.expect_application_server_key(load_vapid_keys(settings).public_key_b64url)
        headers = await dispatcher(client)
        closed = await new_request(client, headers)
        open_ = await new_request(client, headers, n=1)
        await subscribe(client, closed["tracking_token"], service.new_subscription())
        await subscribe(client, open_["tracking_token"], service.new_subscription())
        assert (await run_push_job(settings)).delivered == 2
        wo = await work_order_for(client, headers, [closed["id"]])
        await act(client, headers, wo, "cancel", reason="Déjà ramassé")
    db = Database(settings)
    try:
        soon = await prune_expired_data(db, settings, now=utcnow() + timedelta(hours=1))
        assert (soon.sessions, soon.push_messages, soon.subscriptions) == (0, 0, 0)
        assert (await client.get("/api/v1/auth/me", headers=headers)).status_code == 200

        later = await prune_expired_data(db, settings, now=utcnow() + timedelta(days=31))
    finally:
        await db.dispose()

    assert later.sessions == 1
    assert (await client.get("/api/v1/auth/me", headers=headers)).status_code == 401
    # both delivered confirmations are past retention; the closed request's pending
    # "cancelled" push was never sent and its subscription is forgotten
    assert later.push_messages == 2
    assert later.subscriptions == 1
    [kept] = await _all(settings, PushSubscription)
    assert kept.request_id == open_["id"]
    [expired] = await _all(settings, PushMessage)
    assert (expired.kind, expired.state) == ("cancelled", "expired")


# --- the scheduler -----------------------------------------------------------------------------


async def test_jobs_registry(settings: Settings) -> None:
    db = Database(settings)
    try:
        scheduler = build_scheduler(db, settings, load_vapid_keys(settings))
        jobs = {job.id: job.trigger.interval.total_seconds() for job in scheduler.get_jobs()}
    finally:
        await db.dispose()
    assert jobs["push_delivery"] == settings.job_push_seconds
    assert jobs["sla_escalation"] == settings.job_sla_seconds
    assert jobs["prune_expired_data"] == settings.job_prune_seconds
    assert jobs["photo_jobs"] == settings.job_photos_seconds
    db = Database(settings)
    try:  # the photo pipeline's jobs run from here (nothing to do on a fresh database)
        assert await run_photo_jobs(db, settings) == {
            "derivatives": 0,
            "missing": 0,
            "cleanup": 0,
            "orphans": 0,
            "expired": 0,
            "withdrawn": 0,
        }
    finally:
        await db.dispose()
    off = push_settings(Path(settings.vapid_private_key).parent, job_sla_seconds=0)
    db = Database(off)
    try:
        assert "sla_escalation" not in {
            j.id for j in build_scheduler(db, off, load_vapid_keys(off)).get_jobs()
        }
    finally:
        await db.dispose()


async def test_in_process_scheduler_delivers_without_being_asked(
    database_url: str, tmp_path: Path
) -> None:
    settings = push_settings(tmp_path, scheduler_enabled=True, job_push_seconds=0.1)
    async for app in app_over(settings):
        with PushService() as service:
            service.expect_application_server_key(load_vapid_keys(settings).public_key_b64url)
            async with AsyncTestClient(app=app) as client:
                headers = await dispatcher(client)
                request = await new_request(client, headers)
                await subscribe(client, request["tracking_token"], service.new_subscription())
                [delivery] = await service.wait_for_async(1, timeout=10)
            assert payloads([delivery])[0]["kind"] == "received"
            assert delivery.claims["sub"] == SUB


def _env(settings: Settings, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        TOURNEE_VAPID_PRIVATE_KEY=settings.vapid_private_key,
        TOURNEE_VAPID_SUBJECT=SUB,
        TOURNEE_PUSH_ENDPOINT_HOSTS="127.0.0.1",
        TOURNEE_QUIET_HOURS="off",
        PYTHONUNBUFFERED="1",
        **extra,
    )
    return env


def test_vapid_command_creates_the_key_once(tmp_path: Path, settings: Settings) -> None:
    run = [sys.executable, "-m", "server.cli", "vapid"]
    first = subprocess.run(run, env=_env(settings), cwd=ROOT, capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    public = load_vapid_keys(settings).public_key_b64url
    assert f"applicationServerKey): {public}" in first.stdout
    assert load_vapid_keys(settings).public_key_b64url == public  # the same key, kept
    assert Path(settings.vapid_private_key).stat().st_mode & 0o777 == 0o600
    # issue 19: the effective push allow-list is printed, the built-in hosts kept beside extras
    extra = _env(settings, TOURNEE_PUSH_ENDPOINT_HOSTS_EXTRA="127.0.0.1")
    del extra["TOURNEE_PUSH_ENDPOINT_HOSTS"]
    shown = subprocess.run(run, env=extra, cwd=ROOT, capture_output=True, text=True)
    assert shown.returncode == 0, shown.stderr
    assert (
        "Push services allowed: fcm.googleapis.com, *.push.services.mozilla.com, "
        "*.push.apple.com, *.notify.windows.com, 127.0.0.1"
    ) in shown.stdout


@pytest.mark.postgres_only
async def test_two_scheduler_processes_deliver_every_push_exactly_once(
    client: Any, settings: Settings
) -> None:
    """Two `tournee scheduler` OS processes over one PostgreSQL outbox, racing for rows."""
    with PushService(latency=0.05) as service:
        service.expect_application_server_key(load_vapid_keys(settings).public_key_b64url)
        env = _env(
            settings,
            TOURNEE_JOB_PUSH_SECONDS="0.2",
            TOURNEE_JOB_SLA_SECONDS="0",
            TOURNEE_JOB_PRUNE_SECONDS="0",
            TOURNEE_JOB_PHOTOS_SECONDS="0",
            TOURNEE_PUSH_BATCH="4",
        )
        command = (sys.executable, "-m", "server.cli", "scheduler")
        processes = [
            await asyncio.create_subprocess_exec(
                *command,
                env=env,
                cwd=ROOT,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.DEVNULL,
            )
            for _ in range(2)
        ]
        try:
            for process in processes:
                assert process.stdout is not None
                line = await asyncio.wait_for(process.stdout.readline(), timeout=60)
                assert line == b"Push services allowed: 127.0.0.1\n", line  # issue 19
                line = await asyncio.wait_for(process.stdout.readline(), timeout=60)
                assert line.startswith(b"scheduler started: push_delivery"), line

            headers = await dispatcher(client)
            requests = [await new_request(client, headers, n=n) for n in range(20)]
            browsers = []
            for request in requests:
                for language in ("fr", "en", "fr"):
                    browsers.append(service.new_subscription())
                    response = await subscribe(
                        client, request["tracking_token"], browsers[-1], language
                    )
                    assert response.status_code == 201
            # Every confirmation out first: a newer push for the same browser replaces one still
            # unsent (only the latest status matters), which would make the count below racy.
            await service.wait_for_async(len(browsers), timeout=120)
            # one work order for all twenty reports: sixty "scheduled" pushes at once
            wo = await work_order_for(client, headers, [r["id"] for r in requests])
            await assign(client, headers, wo)

            deliveries = await service.wait_for_async(2 * len(browsers), timeout=120)
            await asyncio.sleep(1.5)  # time for any duplicate to show up
        finally:
            for process in processes:
                process.send_signal(signal.SIGTERM)
            codes = [await asyncio.wait_for(p.wait(), timeout=30) for p in processes]

        deliveries = service.received
        assert codes == [0, 0]
        assert service.rejections == []
        kinds = Counter(
            (d.endpoint, p["kind"]) for d, p in zip(deliveries, payloads(deliveries), strict=True)
        )
        assert len(deliveries) == 2 * len(browsers) == 120
        assert set(kinds.values()) == {1}
        assert {kind for _, kind in kinds} == {"received", "scheduled"}
        messages = await _all(settings, PushMessage)
        assert {m.state for m in messages} == {"delivered"}
        pids = {m.delivered_by.split(":")[1] for m in messages if m.delivered_by}
        assert pids == {str(p.pid) for p in processes}  # both processes took a share
