"""The fleet simulator against a cluster: devices spread over the API processes, citizens
subscribed to Web Push, one API process and one scheduler process SIGKILLed and restarted
mid-shift. Shared by the CI test (tests/cluster/test_cluster_sim.py) and ``make cluster-sim``
(``python -m tests.cluster.sim --devices 40 --steps 132``)."""

from __future__ import annotations

import asyncio
import json
import logging
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlalchemy import func, select

from server.db import Database
from server.notify.models import PushMessage
from server.seed import DEMO_PASSWORDS, demo_users
from server.settings import get_settings
from tests.sim.checks import all_conflicts, run_checks
from tests.sim.fleet import Fleet, SimConfig
from tests.sim.run import SimReport
from tests.sim.server import ClusterServer
from tests.sim.transport import InFlight, MultiServerHandle, ServerHandle
from tests.support.push_service import PushService

CITY = (46.8139, -71.2080)


def spread_devices(
    fleet: Fleet, urls: list[str], seed: int, in_flight: InFlight | None = None
) -> dict[str, int]:
    """Even devices stay on one API process each, given out round robin; odd devices send each
    request to an API process chosen at random. Returns how many devices took each way."""
    ways = {"pinned_round_robin": 0, "random_per_request": 0}
    for i, device in enumerate(fleet.devices):
        if i % 2 == 0:
            device.transport.inner.server = ServerHandle(urls[(i // 2) % len(urls)], in_flight)
            ways["pinned_round_robin"] += 1
        else:
            device.transport.inner.server = MultiServerHandle(
                urls, "random", random.Random(seed * 1000 + i), in_flight
            )
            ways["random_per_request"] += 1
    return ways


class RoundRobinClient:
    """HTTP through the API processes in turn; a transport error (a process being killed or
    down) is retried on the next one. Retried writes are idempotent where it matters here
    (a subscription is keyed by its endpoint; assigning to the same crew twice is a no-op)."""

    def __init__(self, urls: list[str]) -> None:
        self.handle = MultiServerHandle(urls, "round_robin")
        self.http = httpx.Client(timeout=30)
        self.headers: dict[str, str] = {}
        self.retries = 0

    def call(self, method: str, path: str, **kw: Any) -> httpx.Response:
        for attempt in range(300):
            try:
                return self.http.request(method, self.handle.url + path, headers=self.headers, **kw)
            except httpx.TransportError:
                self.retries += 1
                if attempt == 299:
                    raise
                time.sleep(0.1)
        raise AssertionError("unreachable")

    def close(self) -> None:
        self.http.close()


@dataclass
class CitizenTraffic:
    """311 requests whose citizens subscribe two browsers each to Web Push, then a work order
    per request assigned to a crew with no simulated device: a confirmation and a "scheduled"
    push per browser, sent by whichever scheduler process claims them."""

    urls: list[str]
    service: PushService
    crew_code_exclude: set[str]
    requests: int = 12
    pace_s: float = 1.0
    browsers: list[dict[str, Any]] = field(default_factory=list)
    request_ids: list[int] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)
    retries: int = 0

    def __post_init__(self) -> None:
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self.thread.start()

    def finish(self, timeout: float = 120) -> None:
        self.stop.set()
        self.thread.join(timeout)
        if self.thread.is_alive():
            raise AssertionError("citizen traffic did not finish")
        if self.errors:
            raise self.errors[0]

    def _run(self) -> None:
        client = RoundRobinClient(self.urls)
        try:
            login = client.call("POST", "/api/v1/auth/login",
                                json={"username": "repartiteur2",
                                      "password": DEMO_PASSWORDS["dispatcher"]})  # fmt: skip
            assert login.status_code == 200, login.text
            client.headers = {"Authorization": f"Bearer {login.json()['token']}"}
            crews = client.call("GET", "/api/v1/crews").json()
            crew = next(
                c for c in crews if c["code"] not in self.crew_code_exclude and c["kind"] == "waste"
            )
            waiting: list[int] = []
            for n in range(self.requests):
                self._one_request(client, n)
                if len(self.request_ids) >= 2:
                    waiting.append(self.request_ids[-2])
                while waiting:  # the previous one is scheduled once its citizens were told
                    self._schedule(client, waiting.pop(), crew["id"])
                if self.stop.wait(self.pace_s):
                    break
            for request_id in self.request_ids[-1:]:
                self._schedule(client, request_id, crew["id"])
        except BaseException as exc:
            self.errors.append(exc)
        finally:
            self.retries = client.retries
            client.close()

    def _one_request(self, client: RoundRobinClient, n: int) -> None:
        body = {"service_code": "bulky-items", "description": f"Divan {n}",
                "address": f"{200 + n}, rue Saint-Jean",
                "lat": CITY[0] + n * 0.002, "lon": CITY[1]}  # fmt: skip
        created = client.call("POST", "/api/v1/requests", json=body)
        assert created.status_code == 201, created.text
        request = created.json()
        self.request_ids.append(int(request["id"]))
        for language in ("fr", "en"):
            browser = self.service.new_subscription()
            self.browsers.append(browser)
            response = client.call(
                "POST",
                f"/api/v1/public/requests/{request['tracking_token']}/push-subscription",
                json={"subscription": browser, "language": language},
            )
            assert response.status_code in (200, 201), response.text

    def _schedule(self, client: RoundRobinClient, request_id: int, crew_id: int) -> None:
        made = client.call("POST", "/api/v1/work-orders", json={"request_ids": [request_id]})
        assert made.status_code == 201, made.text
        wo = made.json()["id"]
        assigned = client.call(
            "POST", f"/api/v1/work-orders/{wo}/assign", json={"crew_id": crew_id}
        )
        assert assigned.status_code in (200, 409), assigned.text


@dataclass
class ClusterSimReport:
    sim: SimReport
    ways: dict[str, int]
    kills: list[tuple[str, int | None, float]]
    killed_mid_request: bool | None
    transport_errors: dict[str, int]  # the devices' transport errors by kind
    picks: dict[str, int]
    push: dict[str, Any]

    @property
    def passed(self) -> bool:
        return self.sim.passed and self.push.get("ok", False)

    def summary(self) -> str:
        kills = ", ".join(f"{n} (status {c}, back in {d:.1f}s)" for n, c, d in self.kills)
        return (
            f"{self.sim.summary()}\n"
            f"cluster: devices {self.ways}; dispatcher requests per process {self.picks}; "
            f"killed {kills or 'nothing'} (API killed mid-request: {self.killed_mid_request}); "
            f"device transport errors {self.transport_errors}\n"
            f"push: {json.dumps({k: v for k, v in self.push.items() if k != 'problems'})}"
            + (f"\nPUSH PROBLEMS: {self.push['problems']}" if self.push.get("problems") else "")
        )


def device_crew_codes(devices: int) -> set[str]:
    members = [c for _, _, role, c in demo_users() if role == "crew" and c]
    return set(members[:devices])


def run_cluster_simulation(
    config: SimConfig,
    server: ClusterServer,
    *,
    service: PushService,
    citizens: int,
    count_push_rows: Any,
    push_wait_s: float = 90.0,
) -> ClusterSimReport:
    """The phases of tests/sim/run.py's run_simulation, plus: devices spread over the API
    processes, citizen traffic during the shift, the kills awaited before the quiet period, and
    the push-delivery check. ``count_push_rows()`` returns the push outbox's rows by state."""
    logging.getLogger("httpx").setLevel(logging.WARNING)
    urls = server.cluster.api_urls
    fleet = Fleet(config, server)
    ways = spread_devices(fleet, urls, config.seed, server.in_flight)
    traffic = CitizenTraffic(urls, service, device_crew_codes(config.devices), requests=citizens)
    try:
        phases: dict[str, float] = {}
        mark = time.monotonic()
        fleet.setup()
        phases["setup"] = round(time.monotonic() - mark, 2)
        mark = time.monotonic()
        traffic.start()
        fleet.run()
        server.settle()  # the killed processes are back
        traffic.finish()
        phases["shift"] = round(time.monotonic() - mark, 2)
        mark = time.monotonic()
        fleet.quiesce()
        phases["quiet"] = round(time.monotonic() - mark, 2)
        mark = time.monotonic()
        conflicts = len(all_conflicts(fleet.dispatchers[0]))
        checks = run_checks(fleet)
        phases["checks"] = round(time.monotonic() - mark, 2)
        mark = time.monotonic()
        push = check_push_exactly_once(service, traffic, count_push_rows, push_wait_s)
        phases["push"] = round(time.monotonic() - mark, 2)
        faults: dict[str, int] = {}
        for device in fleet.devices:
            for name, value in vars(device.transport.stats).items():
                faults[name] = faults.get(name, 0) + value
            faults["http_requests"] = (
                faults.get("http_requests", 0) + device.transport.inner.requests
            )
        sim = SimReport(
            config=config,
            devices=len(fleet.devices),
            mutations=fleet.stats.mutations,
            conflicts=conflicts,
            dead_letters=sum(len(d.client.dead_letters) for d in fleet.devices),
            duration_s=fleet.elapsed,
            checks=checks,
            faults=faults,
            stats={**vars(fleet.stats), "server_restarts": server.restarts},
            phases=phases,
        )
        errors: dict[str, int] = {}
        for device in fleet.devices:
            for name, count in device.transport.inner.errors.items():
                errors[name] = errors.get(name, 0) + count
        return ClusterSimReport(
            sim, ways, list(server.kills), server.killed_mid_request, errors,
            dict(server.handle.picks), push,
        )  # fmt: skip
    finally:
        fleet.close()


def check_push_exactly_once(
    service: PushService, traffic: CitizenTraffic, count_push_rows: Any, wait_s: float
) -> dict[str, Any]:
    """Every push the outbox holds reaches a final state; each delivered one reached the push
    service exactly once (no (browser, kind) twice), and nothing was rejected."""
    deadline = time.monotonic() + wait_s  # a row claimed by the killed scheduler waits its lease
    rows = count_push_rows()
    while rows.get("pending", 0) and time.monotonic() < deadline:
        time.sleep(0.5)
        rows = count_push_rows()
    time.sleep(1.5)  # time for a duplicate to show up
    rows = count_push_rows()
    deliveries = list(service.received)
    per_browser_kind = Counter((d.endpoint, json.loads(d.payload)["kind"]) for d in deliveries)
    problems = []
    if rows.get("pending", 0):
        problems.append(f"{rows['pending']} push(es) never sent")
    twice = {k: n for k, n in per_browser_kind.items() if n > 1}
    if twice:
        problems.append(f"delivered more than once: {twice}")
    if len(deliveries) != rows.get("delivered", 0):
        problems.append(
            f"{len(deliveries)} deliveries for {rows.get('delivered', 0)} delivered rows"
        )
    if service.rejections:
        problems.append(f"rejected by the push service: {service.rejections[:3]}")
    endpoints = {b["endpoint"] for b in traffic.browsers}
    confirmed = {e for e, kind in per_browser_kind if kind == "received"}
    scheduled = {e for e, kind in per_browser_kind if kind == "scheduled"}
    if scheduled != endpoints:  # the latest state of every request reached every browser
        problems.append(f"{len(endpoints - scheduled)} browser(s) never told 'scheduled'")
    return {
        "ok": not problems,
        "browsers": len(endpoints),
        "requests": len(traffic.request_ids),
        "deliveries": len(deliveries),
        "received": len(confirmed),
        "scheduled": len(scheduled),
        "rows": rows,
        "client_retries": traffic.retries,
        "problems": problems,
    }


async def _push_rows() -> dict[str, int]:
    db = Database(get_settings())
    try:
        async with db.transaction() as tx:
            rows = await tx.execute(
                select(PushMessage.state, func.count()).group_by(PushMessage.state)
            )
            return {str(state): int(count) for state, count in rows}
    finally:
        await db.dispose()


def count_push_rows() -> dict[str, int]:
    """The push outbox's rows by state (pending, delivered, superseded, ...)."""
    return asyncio.run(_push_rows())
