"""/metrics: off without TOURNEE_METRICS_TOKEN, 401 without the token, Prometheus text with
per-route request counts and latencies, pool use and the database-read gauges."""

from __future__ import annotations

import asyncio
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

from litestar.testing import AsyncTestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from server.app import create_app
from server.db import Database
from server.jobs import JobRun
from server.notify.service import load_vapid_keys
from server.scheduler import build_scheduler
from server.settings import get_settings
from tests.support.data import login
from tests.support.notify import push_settings


async def test_metrics_off_by_default(client: Any) -> None:
    assert (await client.get("/metrics")).status_code == 404


async def test_metrics_with_a_token(app: Any) -> None:
    settings = replace(get_settings(), metrics_token="scrape-me-123")
    async with AsyncTestClient(app=create_app(settings)) as client:
        assert (await client.get("/metrics")).status_code == 401
        wrong = {"Authorization": "Bearer nope"}
        assert (await client.get("/metrics", headers=wrong)).status_code == 401
        dispatcher = await login(client, "repartiteur1", "dispatcher")
        for _ in range(3):
            assert (await client.get("/api/v1/crews", headers=dispatcher)).status_code == 200
        await client.get("/api/v1/work-orders/999999", headers=dispatcher)
        answer = await client.get("/metrics", headers={"Authorization": "Bearer scrape-me-123"})
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/plain")
        families = {f.name: f for f in text_string_to_metric_families(answer.text)}
        requests = {
            (s.labels["method"], s.labels["route"], s.labels["status"]): s.value
            for s in families["tournee_http_requests"].samples
            if s.name.endswith("_total")
        }
        assert requests[("GET", "/api/v1/crews", "200")] >= 3
        assert requests[("GET", "/api/v1/work-orders/{work_order_id}", "404")] >= 1
        assert "tournee_http_request_duration_seconds" in families
        for name in (
            "tournee_db_pool_connections",
            "tournee_push_outbox",
            "tournee_photo_jobs",
            "tournee_sync_mutations",
            "tournee_sync_conflicts",
            "tournee_push_failed",
        ):
            assert name in families, name
        assert "scrape-me-123" not in answer.text
        # every series the Grafana dashboard plots is one this endpoint serves
        dashboard = (Path(__file__).parents[2] / "docs/grafana/tournee-dashboard.json").read_text()
        plotted = set(re.findall(r"tournee_[a-z_]+", dashboard)) - {"tournee_dashboard"}
        served = {s.name for f in families.values() for s in f.samples} | set(families)
        assert plotted and plotted <= served, plotted - served


async def test_scheduled_job_runs_and_durations(app: Any, tmp_path: Path) -> None:
    """The scheduler serves no HTTP: its runs are counted in the database (one row per job,
    every scheduler process adding to it) and /metrics reads them."""
    settings = push_settings(tmp_path, metrics_token="scrape-me-123")
    jobs = {"push_delivery", "sla_escalation", "prune_expired_data", "photo_jobs"}
    db = Database(settings)
    try:
        scheduler = build_scheduler(db, settings, load_vapid_keys(settings))
        scheduler.start()  # every job runs once at once
        seen: set[str] = set()
        for _ in range(200):
            async with db.transaction() as tx:
                seen = {run.name for run in (await tx.execute(select(JobRun))).scalars()}
            if seen >= jobs:
                break
            await asyncio.sleep(0.05)
        await scheduler.stop()
    finally:
        await db.dispose()
    assert seen >= jobs
    async with AsyncTestClient(app=create_app(settings)) as client:
        answer = await client.get("/metrics", headers={"Authorization": "Bearer scrape-me-123"})
    families = {f.name: f for f in text_string_to_metric_families(answer.text)}
    runs = {s.labels["job"]: s.value for s in families["tournee_job_runs"].samples}
    assert all(runs[job] >= 1 for job in jobs), runs
    failures = {s.labels["job"]: s.value for s in families["tournee_job_failures"].samples}
    assert all(failures[job] == 0 for job in jobs), failures
    seconds = {s.labels["job"]: s.value for s in families["tournee_job_seconds_total"].samples}
    assert all(seconds[job] > 0 for job in jobs), seconds
    assert "tournee_sync_mutations_by_name" in families
