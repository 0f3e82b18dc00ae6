"""Prometheus metrics at ``/metrics`` (prometheus-client), behind ``TOURNEE_METRICS_TOKEN``.

Two kinds, so several API processes stay correct (docs/deploy.md, "Metrics"):

- per process (scrape every API process; Prometheus tells them apart by ``instance``): request
  counts and latencies per route template, database pool use;
- read from the database at scrape time (the same in every process, shared truth): push outbox
  by state and failures by HTTP status, photo jobs by status, sync mutations by outcome and by
  mutation, conflicts by status and kind, scheduled job runs, failures and durations (every
  scheduler process adds to one row per job, server/jobs.py JobRun).
"""

from __future__ import annotations

import hmac
from typing import Any

from litestar import Controller, Request, Response, get
from litestar.exceptions import NotAuthorizedException, NotFoundException
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from sqlalchemy import func, select
from sqlmodel import col

from server.accounts.auth import public_guard
from server.jobs import JobRun
from server.notify.models import PushMessage
from server.params import AppSettings, Tx
from server.photos.models import PhotoJob
from server.syncapi.models import SyncConflict, SyncMutation

PROCESS = CollectorRegistry()
REQUESTS = Counter(
    "tournee_http_requests",
    "HTTP requests by method, route template and status",
    ["method", "route", "status"],
    registry=PROCESS,
)
LATENCY = Histogram(
    "tournee_http_request_duration_seconds",
    "HTTP request duration by method and route template (SSE streams: their whole life)",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
    registry=PROCESS,
)
POOL = Gauge(
    "tournee_db_pool_connections",
    "Database connections of this process's pool, by state",
    ["state"],
    registry=PROCESS,
)


def observe_request(scope: Any, status: int, seconds: float) -> None:
    """Called once per HTTP request by server/logs.py's middleware."""
    route = scope.get("path_template") or "unmatched"
    method = str(scope.get("method", ""))
    REQUESTS.labels(method, route, str(status)).inc()
    LATENCY.labels(method, route).observe(seconds)


async def _database_registry(tx: Any) -> CollectorRegistry:
    registry = CollectorRegistry()

    async def grouped(name: str, doc: str, labels: list[str], stmt: Any) -> None:
        gauge = Gauge(name, doc, labels, registry=registry)
        for *keys, count in (await tx.execute(stmt)).all():
            gauge.labels(*[str(k) for k in keys]).set(count)

    await grouped(
        "tournee_push_outbox", "Push outbox rows by state", ["state"],
        select(col(PushMessage.state), func.count()).group_by(col(PushMessage.state)),
    )  # fmt: skip
    await grouped(
        "tournee_push_failed", "Pushes given up, by the push service's last HTTP status",
        ["last_status"],
        select(col(PushMessage.last_status), func.count())
        .where(col(PushMessage.state) == "failed").group_by(col(PushMessage.last_status)),
    )  # fmt: skip
    await grouped(
        "tournee_photo_jobs", "Photo jobs by status (pending = backlog)", ["status"],
        select(col(PhotoJob.status), func.count()).group_by(col(PhotoJob.status)),
    )  # fmt: skip
    await grouped(
        "tournee_sync_mutations", "Sync mutations received, by outcome", ["outcome"],
        select(col(SyncMutation.outcome), func.count()).group_by(col(SyncMutation.outcome)),
    )  # fmt: skip
    await grouped(
        "tournee_sync_mutations_by_name", "Sync mutations received, by mutation and outcome",
        ["name", "outcome"],
        select(col(SyncMutation.name), col(SyncMutation.outcome), func.count())
        .group_by(col(SyncMutation.name), col(SyncMutation.outcome)),
    )  # fmt: skip
    runs = (await tx.execute(select(JobRun))).scalars().all()
    for metric, doc, value in (
        ("tournee_job_runs", "Scheduled job runs, every scheduler process", "runs"),
        ("tournee_job_failures", "Scheduled job runs that raised", "failures"),
        ("tournee_job_seconds_total", "Time spent in scheduled job runs", "seconds_total"),
        ("tournee_job_last_seconds", "Duration of the job's last run", "last_seconds"),
    ):
        gauge = Gauge(metric, doc, ["job"], registry=registry)
        for run in runs:
            gauge.labels(run.name).set(float(getattr(run, value)))
    await grouped(
        "tournee_sync_conflicts", "Sync conflicts opened, by status and kind", ["status", "kind"],
        select(col(SyncConflict.status), col(SyncConflict.kind), func.count())
        .group_by(col(SyncConflict.status), col(SyncConflict.kind)),
    )  # fmt: skip
    return registry


def _pool_use(request: Request[Any, Any, Any]) -> None:
    pool = request.app.state.db.engine.pool
    for state in ("checkedout", "checkedin", "overflow"):
        reader = getattr(pool, state, None)
        if callable(reader):
            POOL.labels(state).set(float(reader()))


class MetricsController(Controller):
    path = "/metrics"
    guards = [public_guard]
    include_in_schema = False

    @get("/", operation_id="metrics")
    async def metrics(
        self, request: Request[Any, Any, Any], tx: Tx, settings: AppSettings
    ) -> Response[bytes]:
        token = settings.metrics_token
        if not token:
            raise NotFoundException()  # disabled: as if it did not exist
        given = request.headers.get("authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            raise NotAuthorizedException()
        _pool_use(request)
        body = generate_latest(PROCESS) + generate_latest(await _database_registry(tx))
        return Response(body, media_type=CONTENT_TYPE_LATEST, headers={"Cache-Control": "no-store"})
