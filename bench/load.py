"""Reconnect storm load driver (issue 8): crew devices flushing their outboxes all at once.

    .venv/bin/python bench/load.py                       # 1,000 devices x 50 mutations, 1 process
    .venv/bin/python bench/load.py --processes 3
    .venv/bin/python bench/load.py --devices 50 --mutations 10 --listeners 40 --window 5  # smoke
    make load ARGS="--processes 3"
    .venv/bin/python bench/load.py --urls http://a:8000,http://b:8000 \\
        --database-url postgresql://tournee@db/tournee     # an existing deployment (seeds into it)

A script, not a test. What it does:

1. Setup: a fresh PostgreSQL database ``tournee_load_<pid>`` (``TOURNEE_TEST_PG_ADMIN``, default
   ``postgresql://postgres@127.0.0.1:5432/postgres``), migrated, seeded in bulk: the demo
   reference data, one crew per ``--devices-per-crew`` devices, one crew user and one real device
   token (sha256 stored, like ``POST /api/v1/auth/login`` makes) per device, ``--orders-per-device``
   assigned work orders per device (COPY), dispatcher session tokens for the dispatcher streams.
   Dropped at the end unless ``--keep``.
2. ``--processes N`` API processes started through ``server.cluster.Cluster`` (``tournee run``,
   scheduler off, the cluster's pool of 5 + 5 connections unless ``--pool-size``; plain uvicorn
   subprocesses if that module is missing; ``--scheduler`` adds one ``tournee scheduler``
   process), or ``--urls`` of a running deployment. Devices and listeners are spread round robin
   over the processes.
3. Warm-up: each device signs in (its token) and does its first full sync (``cookie: null``),
   then goes offline and queues ``--mutations`` mutations through the reference client
   (``sync.client.SyncClient.mutate``): status changes along legal transitions
   (assigned → en_route → on_site → on_hold → complete), notes and material entries, each with
   ``base_version`` = the version in its replica.
4. ``--listeners`` idle SSE listeners connect and stay connected: crew change-hint streams
   (``GET /sync/v1/events``, device tokens) and ``--dispatch-listeners`` (default: half)
   dispatcher console streams (``GET /api/v1/live/events``, session tokens).
5. Storm: every device reconnects at a random moment in ``--window`` seconds, pulls (incremental),
   pushes its outbox in batches of ``--batch`` following the protocol (409 gap → resend from the
   watermark; 429/5xx/transport error → the reference client's backoff, 1 s doubling to 5 min
   (``--backoff-cap``), ±20 %, at least Retry-After), then pulls again.
6. Report: throughput (requests/s, mutations/s), p50/p95/p99 per endpoint, 4xx/5xx/transport
   error counts, SSE listeners connected/dropped, time until every outbox drained, CPU seconds of
   each process; then a check against the database: every acknowledged mutation is in the
   mutation log exactly once with the outcome the device got, every applied note and material
   entry exists exactly once, every order ends in the status its device last set
   → ``lost mutations: 0``.

Exit status: 0 when no 5xx, no lost mutation and every outbox drained; 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import resource
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_sync import PG_ADMIN, Bench, _admin, _pct  # noqa: E402

from sync.client import PULL_PATH, PUSH_PATH, NetworkError, PushResult, SyncClient  # noqa: E402

# Forward-only field progress: every step is legal from the previous one, and each target
# outranks the previous status, so it is applied even though the offline device's base_version
# predates its own earlier step (docs/sync-protocol.md, status policy).
STATUS_WALK = ("en_route", "on_site", "on_hold", "complete")
MATERIALS = (("salt", "kg"), ("sand", "kg"), ("bags", "unit"), ("fuel", "l"))
SSE_EVENT = re.compile(
    rb"^event: ?([A-Za-z0-9_.-]+)", re.M
)  # the protocol allows 5 min; a storm run should not idle that long


class _NoStorage:
    """The driver keeps each device's document in memory only (no JSON copy per save)."""

    def load(self) -> dict[str, Any] | None:
        return None

    def save(self, state: dict[str, Any]) -> None:
        pass


def _no_transport(path: str, body: dict[str, Any], headers: dict[str, str]) -> Any:
    raise AssertionError("the load driver does the HTTP itself (asyncio)")


@dataclass
class Device:
    index: int
    user_id: int
    crew_id: int
    token: str
    url: str
    orders: list[int]
    client: SyncClient
    start_at: float = 0.0
    started: float | None = None
    drained: float | None = None
    done: float | None = None
    failed: str | None = None
    retries: int = 0
    backoff_s: float = 0.0
    # what the device asked for, to check against the database
    notes: dict[str, int] = field(default_factory=dict)  # mutation id -> note uuid
    materials: dict[str, int] = field(default_factory=dict)
    last_status: dict[int, tuple[int, str]] = field(default_factory=dict)  # order -> (id, target)
    http: httpx.AsyncClient | None = None


@dataclass
class Listener:
    kind: str  # crew | dispatch
    url: str
    token: str
    connected: bool = False
    connects: int = 0
    failed_connects: int = 0
    dropped: int = 0  # transport error or unexpected end while the storm ran
    expired: int = 0  # the server ended the stream at its max age (EventSource reconnects)
    events: Counter[str] = field(default_factory=Counter)
    writer: asyncio.StreamWriter | None = None


class Stats:
    def __init__(self) -> None:
        self.latency: dict[str, list[float]] = defaultdict(list)
        self.status: dict[str, Counter[str]] = defaultdict(Counter)
        self.problems: Counter[str] = Counter()  # "<endpoint> <status> <code>" of every refusal
        self.in_storm = False
        self.storm_requests = 0

    def record(self, endpoint: str, status: int | str, seconds: float) -> None:
        self.latency[endpoint].append(seconds * 1000)
        self.status[endpoint][str(status)] += 1
        if self.in_storm:
            self.storm_requests += 1


# ---------------------------------------------------------------------------- processes


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _system_busy() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    return float(sum(values) - idle), float(sum(values))


class Processes:
    """N uvicorn API processes (scheduler off) and optionally one scheduler process."""

    def __init__(self, count: int, scheduler: bool, env: dict[str, str], logdir: Path) -> None:
        self.count = count
        self.scheduler = scheduler
        self.env = env
        self.logdir = logdir
        self.procs: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.pool_size = env.get("TOURNEE_DB_POOL_SIZE", "10")
        self.urls: list[str] = []

    def start(self) -> list[str]:
        for i in range(self.count):
            port = _free_port()
            log = (self.logdir / f"api-{i}.log").open("wb")
            cmd = [
                sys.executable, "-m", "uvicorn", "server.app:create_app", "--factory",
                "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
                "--no-access-log", "--timeout-graceful-shutdown", "5",
            ]  # fmt: skip
            proc = subprocess.Popen(
                cmd, cwd=ROOT, env={**self.env, "TOURNEE_SCHEDULER": "0"}, stdout=log, stderr=log
            )
            self.procs.append((f"api-{i}", proc))
            self.urls.append(f"http://127.0.0.1:{port}")
        if self.scheduler:
            log = (self.logdir / "scheduler.log").open("wb")
            proc = subprocess.Popen(
                [sys.executable, "-m", "server.cli", "scheduler"],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=log,
            )
            self.procs.append(("scheduler", proc))
        return self.urls

    async def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(timeout=2.0) as http:
            for url in self.urls:
                while True:
                    try:
                        if (await http.get(url + "/healthz")).status_code == 200:
                            break
                    except httpx.HTTPError:
                        pass
                    for name, proc in self.procs:
                        if proc.poll() is not None:
                            raise RuntimeError(f"{name} exited: see {self.logdir}")
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"{url} not ready after {timeout:.0f} s")
                    await asyncio.sleep(0.3)

    def cpu(self) -> dict[str, float]:
        return {name: _cpu_seconds(proc.pid) for name, proc in self.procs}

    def stop(self) -> None:
        for _, proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        for _, proc in self.procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def errors_logged(self) -> int:
        return sum(
            p.read_text(errors="replace").count("Traceback") for p in self.logdir.glob("*.log")
        )


class ClusterProcesses:
    """The same, through ``server.cluster.Cluster`` (``tournee cluster``), when it exists."""

    def __init__(self, count: int, scheduler: bool, env: dict[str, str], logdir: Path) -> None:
        from server.cluster import Cluster

        self.logdir = logdir
        self.cluster = Cluster(
            api=count,
            schedulers=1 if scheduler else 0,
            base_port=_free_ports(count),
            env=env,
            log_dir=logdir,
        )

    def start(self) -> list[str]:
        self.cluster.prepare()  # migrations, once; shared secret and VAPID key
        self.cluster.start()
        self.pool_size = self.cluster.env.get("TOURNEE_DB_POOL_SIZE", "10")
        return list(self.cluster.api_urls)

    async def wait_ready(self) -> None:
        pass  # Cluster.start() waited for /healthz

    def cpu(self) -> dict[str, float]:
        return {
            name: _cpu_seconds(child.pid) if child.pid else 0.0
            for name, child in self.cluster.children.items()
        }

    def stop(self) -> None:
        self.cluster.stop()

    def errors_logged(self) -> int:
        return sum(
            p.read_text(errors="replace").count("Traceback") for p in self.logdir.glob("*.log")
        )


def _free_ports(count: int) -> int:
    """A base port with ``count`` free consecutive ports after it."""
    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(20_000, 60_000)
        try:
            with contextlib.ExitStack() as stack:
                for port in range(base, base + count):
                    sock = stack.enter_context(socket.socket())
                    sock.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
    raise RuntimeError("no free ports")


# ---------------------------------------------------------------------------- the driver


class Storm:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.rng = random.Random(args.seed)
        self.stats = Stats()
        self.devices: list[Device] = []
        self.listeners: list[Listener] = []
        self.crew_ids: list[int] = []
        self.stop_listeners = asyncio.Event()
        self.storm_running = False
        self.ssl_context = ssl.create_default_context()  # made once, not per device client
        self.pg_max_conns = 0
        self.pg_cpu = 0.0
        self.connected_at_end = 0

    # ------------------------------------------------------------------ seeding
    async def seed(self, urls: list[str]) -> None:
        from sqlalchemy import insert, select, text

        from server.accounts.auth import new_token
        from server.accounts.models import AccessToken, User
        from server.city.models import Borough
        from server.crews.models import Crew
        from server.db import Database
        from server.dbtypes import utcnow
        from server.requests.models import ServiceType
        from server.seed import seed_reference
        from server.settings import get_settings

        args = self.args
        tag = args.tag
        self.db = Database(get_settings())
        started = time.perf_counter()
        async with self.db.transaction() as tx:
            if (await tx.execute(select(Borough.code).limit(1))).first() is None:
                await seed_reference(tx)
        now = utcnow()
        async with self.db.transaction() as tx:
            boroughs = sorted((await tx.execute(select(Borough.code))).scalars())
            type_ids = sorted(
                t for t in (await tx.execute(select(ServiceType.id))).scalars() if t is not None
            )
            n_crews = -(-args.devices // args.devices_per_crew)
            await tx.execute(
                insert(Crew),
                [
                    {
                        "code": f"load-{tag}-{c}",
                        "name": f"Équipe de charge {c}",
                        "borough_code": boroughs[c % len(boroughs)],
                        "kind": "snow",
                        "active": True,
                        "created_at": now,
                    }
                    for c in range(n_crews)
                ],
            )
            crews = dict(
                (
                    await tx.execute(
                        select(Crew.code, Crew.id).where(Crew.code.like(f"load-{tag}-%"))  # type: ignore[attr-defined]
                    )
                ).all()
            )
            self.crew_ids = [crews[f"load-{tag}-{c}"] for c in range(n_crews)]
            users = [
                {
                    "username": f"load-{tag}-{i}",
                    "display_name": f"Appareil {i}",
                    "role": "crew",
                    "crew_id": self.crew_ids[i // args.devices_per_crew],
                    "language": "fr",
                    "password_hash": "!",  # no password sign-in: the device token is seeded
                    "active": True,
                    "created_at": now,
                }
                for i in range(args.devices)
            ]
            n_dispatch = min(args.listeners, args.dispatch_listeners)
            dispatchers = max(1, min(20, n_dispatch))
            users += [
                {
                    "username": f"load-{tag}-desk{i}",
                    "display_name": f"Répartiteur {i}",
                    "role": "dispatcher",
                    "crew_id": None,
                    "language": "fr",
                    "password_hash": "!",
                    "active": True,
                    "created_at": now,
                }
                for i in range(dispatchers)
            ]
            await tx.execute(insert(User), users)
            user_ids = dict(
                (
                    await tx.execute(
                        select(User.username, User.id).where(
                            User.username.like(f"load-{tag}-%")  # type: ignore[attr-defined]
                        )
                    )
                ).all()
            )
            tokens: list[tuple[str, dict[str, Any]]] = []
            for i in range(args.devices):
                token, digest = new_token()
                tokens.append(
                    (
                        token,
                        {
                            "token_hash": digest,
                            "kind": "device",
                            "user_id": user_ids[f"load-{tag}-{i}"],
                            "crew_id": self.crew_ids[i // args.devices_per_crew],
                            "label": f"Téléphone de charge {i}",
                            "created_at": now,
                            "expires_at": None,
                        },
                    )
                )
            for i in range(n_dispatch):
                token, digest = new_token()
                tokens.append(
                    (
                        token,
                        {
                            "token_hash": digest,
                            "kind": "session",
                            "user_id": user_ids[f"load-{tag}-desk{i % dispatchers}"],
                            "crew_id": None,
                            "label": "",
                            "created_at": now,
                            "expires_at": now + timedelta(days=1),
                        },
                    )
                )
            await tx.execute(insert(AccessToken), [row for _, row in tokens])
        device_tokens = [t for t, _ in tokens[: args.devices]]
        dispatch_tokens = [t for t, _ in tokens[args.devices :]]

        # work orders: --orders-per-device assigned orders per device, in its crew (COPY)
        rows = []
        for i in range(args.devices):
            for _ in range(args.orders_per_device):
                rows.append(
                    {
                        "service_type_id": self.rng.choice(type_ids),
                        "title": "Bon de travail (charge)",
                        "description": "Déneigement du trottoir, rue Saint-Jean",
                        "lat": 46.81 + self.rng.random() / 100,
                        "lon": -71.21 + self.rng.random() / 100,
                        "address": "100, rue Saint-Jean",
                        "borough_code": boroughs[0],
                        "priority": self.rng.randint(1, 4),
                        "status": "assigned",
                        "crew_id": self.crew_ids[i // args.devices_per_crew],
                        "due_at": now + timedelta(hours=self.rng.randint(1, 48)),
                        "created_at": now - timedelta(hours=2),
                        "updated_at": now - timedelta(hours=1),
                        "assigned_at": now - timedelta(hours=1),
                        "planned": True,
                        "version": 2,
                        "change_seq": 1,
                        "field_versions": {"status": 2, "crew_id": 2},
                        "work_performed": False,
                    }
                )
        copier = Bench("postgresql", args)
        copier.db = self.db
        for start in range(0, len(rows), 20_000):
            await copier._copy(rows[start : start + 20_000])
        async with self.db.engine.connect() as conn:
            for table in ("work_order", "access_token", "user_account", "crew"):
                await conn.exec_driver_sql(f"ANALYZE {table}")
        async with self.db.transaction() as tx:
            by_crew: dict[int, list[int]] = defaultdict(list)
            for wo_id, crew_id in (
                await tx.execute(
                    text("SELECT id, crew_id FROM work_order WHERE crew_id = ANY(:c) ORDER BY id"),
                    {"c": self.crew_ids},
                )
            ).all():
                by_crew[crew_id].append(wo_id)

        opd = args.orders_per_device
        for i in range(args.devices):
            crew_id = self.crew_ids[i // args.devices_per_crew]
            k = i % args.devices_per_crew
            client = SyncClient(
                _NoStorage(),
                _no_transport,
                client_id=f"load-{tag}-{i:05d}-{secrets.token_hex(4)}",
                batch_size=args.batch,
                jitter=random.Random(f"{args.seed}-{i}"),
            )
            self.devices.append(
                Device(
                    index=i,
                    user_id=user_ids[f"load-{tag}-{i}"],
                    crew_id=crew_id,
                    token=device_tokens[i],
                    url=urls[i % len(urls)],
                    orders=by_crew[crew_id][k * opd : (k + 1) * opd],
                    client=client,
                )
            )
        # interleaved kinds, round robin over the processes
        kinds = ["crew"] * (args.listeners - n_dispatch)
        step = len(kinds) / n_dispatch if n_dispatch else 0.0
        for d in range(n_dispatch):
            kinds.insert(round(d * (step + 1)), "dispatch")
        crew_seen = dispatch_seen = 0
        for j, kind in enumerate(kinds):
            url = urls[j % len(urls)]
            if kind == "crew":
                device = self.devices[crew_seen % len(self.devices)]
                self.listeners.append(Listener("crew", url, device.token))
                crew_seen += 1
            else:
                self.listeners.append(Listener("dispatch", url, dispatch_tokens[dispatch_seen]))
                dispatch_seen += 1
        print(
            f"seeded {n_crews} crews, {args.devices} devices (tokens), {len(rows)} work orders, "
            f"{n_dispatch} dispatcher sessions in {time.perf_counter() - started:.1f} s"
        )

    # ------------------------------------------------------------------ HTTP
    @contextlib.asynccontextmanager
    async def connection(self, dev: Device) -> AsyncIterator[None]:
        """The device's own HTTP client (one keep-alive connection) while it is online.

        One client per device, as on real phones; one shared pool of 1,000 connections would
        cost the driver quadratic CPU (httpcore assigns requests to connections by a scan).
        """
        dev.http = httpx.AsyncClient(
            base_url=dev.url,
            timeout=httpx.Timeout(self.args.request_timeout, connect=30.0),
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
            verify=self.ssl_context,
        )
        try:
            yield
        finally:
            await dev.http.aclose()
            dev.http = None

    async def call(self, dev: Device, endpoint: str, path: str, body: dict[str, Any]) -> Any:
        started = time.perf_counter()
        try:
            assert dev.http is not None
            response = await dev.http.post(
                path, json=body, headers={"Authorization": f"Bearer {dev.token}"}
            )
        except httpx.HTTPError as exc:
            self.stats.record(endpoint, "transport", time.perf_counter() - started)
            raise NetworkError(repr(exc)) from exc
        self.stats.record(endpoint, response.status_code, time.perf_counter() - started)
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if response.status_code >= 400:
            code = answer.get("code") if isinstance(answer, dict) else None
            self.stats.problems[f"{endpoint} {response.status_code} {code}"] += 1
        return response.status_code, response.headers, answer

    async def wait_backoff(self, dev: Device, retry_after: float | None = None) -> None:
        client = dev.client
        # the reference client's schedule: 1 s doubling to 5 min, ±20 % jitter, at least
        # Retry-After; --backoff-cap shortens the 5 min (not the Retry-After)
        client._back_off(retry_after)
        delay = min(client.not_before - time.monotonic(), self.args.backoff_cap)
        delay = max(delay, retry_after or 0.0)
        dev.retries += 1
        dev.backoff_s += delay
        if time.monotonic() + delay > self.deadline:
            raise TimeoutError("deadline")
        await asyncio.sleep(max(0.0, delay))

    async def pull(self, dev: Device, endpoint: str) -> None:
        """Every page of one pull, retried until it succeeds (SyncClient.pull, asyncio)."""
        from sync.client import _int, _retry_after

        client = dev.client
        while True:
            cookie = client.state["cookie"]
            patch: list[dict[str, Any]] = []
            reset = upgrade = False
            watermark = None
            failed: float | bool | None = False
            for page in range(10_000):
                body = {**client._envelope(), "cookie": cookie, "limit": 1000}
                try:
                    status, headers, answer = await self.call(dev, endpoint, PULL_PATH, body)
                except NetworkError:
                    failed = None
                    break
                if status == 429 or status >= 500:
                    failed = _retry_after(headers)
                    break
                if not 200 <= status < 300 or not isinstance(answer, dict):
                    raise RuntimeError(f"pull refused: {status} {answer}")
                if page == 0:
                    reset = bool(answer.get("reset"))
                    watermark = _int(answer, "last_mutation_id")
                upgrade = upgrade or bool(answer.get("upgrade"))
                patch.extend(answer.get("patch") or [])
                cookie = answer.get("cookie", cookie)
                if not answer.get("has_more"):
                    break
            if failed is not False:
                await self.wait_backoff(dev, failed if isinstance(failed, float) else None)
                continue
            client._succeeded()
            client._apply_pull(patch, cookie, reset, upgrade, watermark)
            return

    async def push(self, dev: Device) -> None:
        """Send the outbox in batches until it is empty (SyncClient.push's rules, asyncio)."""
        from sync.client import _code, _retry_after

        client = dev.client
        while client.state["outbox"]:
            pending = client.state["outbox"][: client.batch_size]
            body = {**client._envelope(), "mutations": pending}
            try:
                status, headers, answer = await self.call(dev, "push", PUSH_PATH, body)
            except NetworkError:
                await self.wait_backoff(dev)
                continue
            if status == 429 or status >= 500:
                await self.wait_backoff(dev, _retry_after(headers))
                continue
            result = PushResult()
            if status == 409 and _code(answer) == "mutation_gap":
                client._on_gap(answer, result)
                continue
            if not 200 <= status < 300 or not isinstance(answer, dict):
                # 401/403/413/400: the generated outbox is valid, so this is a finding, not a
                # client bug to bisect: stop this device and report it.
                raise RuntimeError(f"push refused: {status} {answer}")
            client._succeeded()
            if not client._on_push_answer(answer, result):
                await self.wait_backoff(dev)

    # ------------------------------------------------------------------ phases
    async def warm_up(self) -> None:
        """Each device's first full sync, then its offline edits (queued in the outbox)."""
        started = time.perf_counter()
        gate = asyncio.Semaphore(self.args.warmup_concurrency)
        self.deadline = time.monotonic() + 600

        async def one(dev: Device) -> None:
            async with gate, self.connection(dev):
                await self.pull(dev, "pull_first_sync")
            self.queue_edits(dev)

        await asyncio.gather(*(one(d) for d in self.devices))
        print(
            f"warm-up: {len(self.devices)} first full syncs in "
            f"{time.perf_counter() - started:.1f} s; "
            f"{sum(len(d.client.state['outbox']) for d in self.devices)} mutations queued"
        )

    def queue_edits(self, dev: Device) -> None:
        """``--mutations`` offline edits, made through the reference client like the PWA does."""
        rng = random.Random(f"{self.args.seed}-edits-{dev.index}")
        client = dev.client
        replica = client.replica
        orders = [o for o in dev.orders if f"work_order/{o}" in replica]
        if len(orders) != len(dev.orders):
            raise RuntimeError(f"device {dev.index}: its orders are missing from its first sync")
        step = dict.fromkeys(orders, 0)
        for _ in range(self.args.mutations):
            order = rng.choice(orders)
            base = replica[f"work_order/{order}"]["version"]
            roll = rng.random()
            if roll < self.args.status_share and step[order] < len(STATUS_WALK):
                target = STATUS_WALK[step[order]]
                step[order] += 1
                if target == "complete":
                    name = "workorder.complete@1"
                    args: dict[str, Any] = {
                        "work_order_id": order,
                        "outcome": "fixed",
                        "note": "Trottoir dégagé",
                    }
                    final = "completed"
                else:
                    name = "workorder.set_status@1"
                    args = {"work_order_id": order, "status": target}
                    if target == "on_hold":
                        args["reason"] = "Attente de la souffleuse"
                    final = target
                mid = client.mutate(name, args, base_version=base)
                dev.last_status[order] = (mid, final)
            elif roll < 0.65:
                note_id = str(_uuid(rng))
                mid = client.mutate(
                    "workorder.add_note@1",
                    {"work_order_id": order, "note_id": note_id, "body": f"Note {note_id[:8]}"},
                    base_version=base,
                )
                dev.notes[note_id] = mid
            else:
                code, unit = rng.choice(MATERIALS)
                entry_id = str(_uuid(rng))
                mid = client.mutate(
                    "workorder.add_material@1",
                    {
                        "work_order_id": order,
                        "entry_id": entry_id,
                        "material_code": code,
                        "quantity": rng.randint(1, 40) / 2,
                        "unit": unit,
                    },
                    base_version=base,
                )
                dev.materials[entry_id] = mid

    async def listen(self, listener: Listener, ready: asyncio.Event) -> None:
        """One idle EventSource: counts events, reconnects after 5 s like a browser does.

        Plain asyncio streams rather than httpx: at one SSE message per chunk, httpx's per-chunk
        overhead made the driver burn as much CPU as the server it measures (same 2 cores).
        Only the ``event:`` lines are looked at, with one regex per read.
        """
        path = "/sync/v1/events" if listener.kind == "crew" else "/api/v1/live/events"
        parts = urlsplit(listener.url)
        host, port = parts.hostname or "127.0.0.1", parts.port or 80
        request = (
            f"GET {path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
            f"Authorization: Bearer {listener.token}\r\n"
            "Accept: text/event-stream\r\nConnection: close\r\n\r\n"
        ).encode()
        read_timeout = self.args.sse_read_timeout
        while not self.stop_listeners.is_set():
            started = time.perf_counter()
            endpoint = f"sse_{listener.kind}" + ("_reconnect" if listener.connects else "")
            hello = False
            writer = None
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(host, port, limit=1 << 20), 30
                )
                listener.writer = writer
                writer.write(request)
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 60)
                status = int(head.split(b" ", 2)[1])
                if status != 200:
                    self.stats.record(endpoint, status, 0.0)
                    self.stats.problems[f"{endpoint} {status}"] += 1
                    listener.failed_connects += 1
                else:
                    rest = b""
                    while True:
                        chunk = await asyncio.wait_for(reader.read(1 << 16), read_timeout)
                        if not chunk or self.stop_listeners.is_set():
                            break
                        data = rest + chunk
                        cut = data.rfind(b"\n") + 1
                        rest = data[cut:]
                        names = SSE_EVENT.findall(data, 0, cut)
                        if not names:
                            continue
                        if not hello and b"hello" in names:
                            hello = True
                            self.stats.record(endpoint, 200, time.perf_counter() - started)
                            listener.connected = True
                            listener.connects += 1
                            ready.set()
                        listener.events.update(n.decode() for n in names if n != b"hello")
                    if hello and not self.stop_listeners.is_set():
                        listener.expired += 1
            except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError, IndexError):
                if self.stop_listeners.is_set():
                    return
                if hello:
                    if self.storm_running:
                        listener.dropped += 1
                else:
                    listener.failed_connects += 1
                    self.stats.record(endpoint, "transport", time.perf_counter() - started)
            finally:
                listener.connected = False
                listener.writer = None
                if writer is not None:
                    writer.close()
            ready.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop_listeners.wait(), 5.0)  # EventSource retry

    async def connect_listeners(self) -> list[asyncio.Task[None]]:
        started = time.perf_counter()
        tasks = []
        for start in range(0, len(self.listeners), 100):
            batch = self.listeners[start : start + 100]
            events = [asyncio.Event() for _ in batch]
            pairs = zip(batch, events, strict=True)
            tasks += [asyncio.create_task(self.listen(li, ev)) for li, ev in pairs]
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*(e.wait() for e in events)), 60)
        connected = sum(li.connected for li in self.listeners)
        print(
            f"SSE: {connected}/{len(self.listeners)} listeners connected in "
            f"{time.perf_counter() - started:.1f} s"
        )
        return tasks

    async def device(self, dev: Device, t0: float) -> None:
        await asyncio.sleep(max(0.0, t0 + dev.start_at - time.monotonic()))
        dev.started = time.monotonic()
        try:
            async with self.connection(dev):
                await self.pull(dev, "pull")
                await self.push(dev)
                dev.drained = time.monotonic()
                await self.pull(dev, "pull")
                dev.done = time.monotonic()
        except (TimeoutError, RuntimeError) as exc:
            dev.failed = str(exc)[:300]

    async def sample_pg(self) -> None:
        import asyncpg

        conn = await asyncpg.connect(self.args.pg_dsn)
        # CPU of the PostgreSQL backends serving this database (when PostgreSQL runs on this
        # machine): cumulative per backend, so a backend that closes between two samples loses
        # at most 0.5 s of its CPU: a lower bound.
        baseline: dict[int, float] = {}
        latest: dict[int, float] = {}
        first = True
        try:
            while self.storm_running:
                pids = await conn.fetch(
                    "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                )
                self.pg_max_conns = max(self.pg_max_conns, len(pids))
                for row in pids:
                    cpu = _cpu_seconds(int(row["pid"]))
                    if first:
                        baseline[row["pid"]] = cpu
                    latest[row["pid"]] = max(cpu, latest.get(row["pid"], 0.0))
                first = False
                await asyncio.sleep(0.5)
        finally:
            await conn.close()
        self.pg_cpu = sum(v - baseline.get(pid, 0.0) for pid, v in latest.items())

    async def storm(self, processes: Processes | ClusterProcesses | None) -> dict[str, Any]:
        args = self.args
        for dev in self.devices:
            dev.start_at = self.rng.uniform(0, args.window)
        cpu0 = processes.cpu() if processes else {}
        me0 = resource.getrusage(resource.RUSAGE_SELF)
        sys0 = _system_busy()
        t0 = time.monotonic()
        self.deadline = t0 + args.deadline
        self.storm_running = True
        self.stats.in_storm = True
        sampler = asyncio.create_task(self.sample_pg()) if args.pg_dsn else None
        load_before = os.getloadavg()
        await asyncio.gather(*(self.device(d, t0) for d in self.devices))
        elapsed = time.monotonic() - t0
        self.stats.in_storm = False
        self.storm_running = False
        self.connected_at_end = sum(li.connected for li in self.listeners)
        if sampler:
            await sampler
        sys1 = _system_busy()
        me1 = resource.getrusage(resource.RUSAGE_SELF)
        cpu1 = processes.cpu() if processes else {}
        cpu = {k: cpu1[k] - cpu0.get(k, 0.0) for k in cpu1}
        cpu["driver"] = (me1.ru_utime + me1.ru_stime) - (me0.ru_utime + me0.ru_stime)
        cpu["postgresql"] = self.pg_cpu
        cpu["machine"] = (sys1[0] - sys0[0]) / os.sysconf("SC_CLK_TCK")
        busy = (sys1[0] - sys0[0]) / max(1.0, sys1[1] - sys0[1])
        return {
            "elapsed": elapsed,
            "t0": t0,
            "cpu": cpu,
            "machine_busy": busy,
            "loadavg": (load_before, os.getloadavg()),
        }

    # ------------------------------------------------------------------ checking
    async def verify(self) -> dict[str, Any]:
        from sqlalchemy import text

        client_ids = [d.client.client_id for d in self.devices]
        async with self.db.transaction() as tx:
            log = (
                await tx.execute(
                    text(
                        "SELECT client_id, id, outcome FROM sync_mutation "
                        "WHERE client_id = ANY(:ids)"
                    ),
                    {"ids": client_ids},
                )
            ).all()
            notes = Counter(
                (
                    await tx.execute(
                        text("SELECT id FROM work_order_note WHERE crew_id = ANY(:c)"),
                        {"c": self.crew_ids},
                    )
                ).scalars()
            )
            materials = Counter(
                (
                    await tx.execute(
                        text("SELECT id FROM material_entry WHERE crew_id = ANY(:c)"),
                        {"c": self.crew_ids},
                    )
                ).scalars()
            )
            statuses = dict(
                (
                    await tx.execute(
                        text("SELECT id, status FROM work_order WHERE crew_id = ANY(:c)"),
                        {"c": self.crew_ids},
                    )
                ).all()
            )
        logged: dict[tuple[str, int], list[str]] = defaultdict(list)
        for client_id, mid, outcome in log:
            logged[(client_id, mid)].append(outcome)
        acknowledged = lost = duplicated = wrong_outcome = undrained = 0
        lost_effects = dup_effects = wrong_status = 0
        outcomes: Counter[str] = Counter()
        for dev in self.devices:
            cid = dev.client.client_id
            undrained += len(dev.client.state["outbox"])
            results = {int(k.rsplit(":", 1)[1]): v for k, v in dev.client.state["outcomes"].items()}
            for mid, result in results.items():
                acknowledged += 1
                outcomes[str(result.get("outcome"))] += 1
                rows = logged.get((cid, mid), [])
                if not rows:
                    lost += 1
                elif len(rows) > 1:
                    duplicated += 1
                elif rows[0] != result.get("outcome"):
                    wrong_outcome += 1
            for ids, table in ((dev.notes, notes), (dev.materials, materials)):
                for uid, mid in ids.items():
                    if results.get(mid, {}).get("outcome") in ("applied", "applied_with_conflict"):
                        if table[uid] == 0:
                            lost_effects += 1
                        elif table[uid] > 1:
                            dup_effects += 1
            for order, (mid, final) in dev.last_status.items():
                if results.get(mid, {}).get("outcome") == "applied" and statuses[order] != final:
                    wrong_status += 1
        expected_effects = sum(
            1
            for d in self.devices
            for ids in (d.notes, d.materials)
            for mid in ids.values()
            if d.client.state["outcomes"].get(f"{d.client.client_id}:{mid}", {}).get("outcome")
            in ("applied", "applied_with_conflict")
        )
        extra_effects = sum(notes.values()) + sum(materials.values()) - expected_effects
        extra_log = len(log) - acknowledged
        return {
            "queued": len(self.devices) * self.args.mutations,
            "acknowledged": acknowledged,
            "outcomes": dict(outcomes),
            "in_log": len(log),
            "lost": lost + lost_effects,
            "lost_log": lost,
            "lost_effects": lost_effects,
            "duplicated": duplicated + dup_effects,
            "wrong_outcome": wrong_outcome,
            "wrong_status": wrong_status,
            "extra_log": extra_log,
            "extra_effects": extra_effects,
            "undrained": undrained,
        }


def _uuid(rng: random.Random) -> Any:
    import uuid

    return uuid.UUID(int=rng.getrandbits(128), version=4)


# ---------------------------------------------------------------------------- report


def report(
    storm: Storm, run: dict[str, Any], check: dict[str, Any], args: argparse.Namespace
) -> tuple[str, bool]:
    stats = storm.stats
    lines = []
    elapsed = run["elapsed"]
    devs = storm.devices
    drained = [d.drained - run["t0"] for d in devs if d.drained is not None]
    per_device = [d.drained - d.started for d in devs if d.drained and d.started]
    storm_endpoints = ["pull", "push"]
    acked = check["acknowledged"]
    total_5xx = total_4xx = total_transport = 0
    lines.append(
        f"Reconnect storm: {len(devs)} devices x {args.mutations} mutations "
        f"(batches of {args.batch}), window {args.window:.0f} s, "
        f"{len(storm.listeners)} SSE listeners, {run['processes']} API process(es)"
        f"{' + scheduler' if args.scheduler else ''}, DB pool {run['pool_size']} "
        f"(+ as many overflow) per process"
    )
    lines.append(
        f"machine: {os.cpu_count()} cores, load average before {run['loadavg'][0][0]:.2f} "
        f"after {run['loadavg'][1][0]:.2f}; whole-machine CPU busy during the storm "
        f"{run['machine_busy'] * 100:.0f} %"
    )
    lines.append(
        f"storm duration: {elapsed:.1f} s; every outbox drained after "
        f"{max(drained) if len(drained) == len(devs) else float('nan'):.1f} s "
        f"({len(drained)}/{len(devs)} devices drained)"
    )
    if per_device:
        lines.append(
            f"per device, reconnect → outbox empty: p50 {_pct(per_device, 0.5):.1f} s  "
            f"p95 {_pct(per_device, 0.95):.1f} s  max {max(per_device):.1f} s; "
            f"retries {sum(d.retries for d in devs)}, time asleep in backoff: total "
            f"{sum(d.backoff_s for d in devs):.0f} s, longest device "
            f"{max(d.backoff_s for d in devs):.0f} s"
        )
    lines.append(
        f"throughput: {stats.storm_requests / elapsed:.0f} requests/s, "
        f"{acked / elapsed:.0f} mutations/s over the storm"
        + (
            f" ({acked / max(drained):.0f} mutations/s until the last outbox drained)"
            if drained
            else ""
        )
    )
    lines.append("")
    lines.append(
        f"{'endpoint':<18}{'requests':>9}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'max ms':>9}"
        f"{'2xx':>7}{'4xx':>6}{'5xx':>6}{'transp':>7}"
    )
    sse = ["sse_crew", "sse_dispatch", "sse_crew_reconnect", "sse_dispatch_reconnect"]
    for endpoint in ["pull_first_sync", *storm_endpoints, *sse]:
        codes = stats.status.get(endpoint)
        if not codes:
            continue
        ok = [v for v in stats.latency[endpoint] if v > 0]
        n2 = sum(c for s, c in codes.items() if s.startswith("2"))
        n4 = sum(c for s, c in codes.items() if s.startswith("4"))
        n5 = sum(c for s, c in codes.items() if s.startswith("5"))
        nt = codes.get("transport", 0)
        if endpoint != "pull_first_sync":
            total_4xx += n4
            total_5xx += n5
            total_transport += nt
        lines.append(
            f"{endpoint:<18}{sum(codes.values()):>9}"
            + (
                f"{_pct(ok, 0.5):>9.0f}{_pct(ok, 0.95):>9.0f}{_pct(ok, 0.99):>9.0f}{max(ok):>9.0f}"
                if ok
                else " " * 36
            )
            + f"{n2:>7}{n4:>6}{n5:>6}{nt:>7}"
        )
    lines.append(
        "(sse_*: time to the hello event, first connection before the storm, reconnects after the"
        " server's max stream age; pull_first_sync: warm-up, before the storm)"
    )
    lines.append("")
    listeners = storm.listeners
    events: Counter[str] = Counter()
    for li in listeners:
        events.update(li.events)
    lines.append(
        f"SSE listeners: {sum(li.connects > 0 for li in listeners)}/{len(listeners)} connected, "
        f"{storm.connected_at_end} still connected when the storm ended, "
        f"dropped {sum(li.dropped for li in listeners)}, "
        f"ended at max age {sum(li.expired for li in listeners)}, "
        f"failed connects {sum(li.failed_connects for li in listeners)}; "
        f"events received {dict(events)}"
    )
    lines.append(
        f"errors during the storm: 4xx {total_4xx}, 5xx {total_5xx}, transport {total_transport}; "
        f"server tracebacks logged {run.get('tracebacks', 'n/a')}; devices failed "
        f"{sum(d.failed is not None for d in devs)}"
    )
    if stats.problems:
        lines.append(f"  refusals by endpoint, status and code: {dict(stats.problems)}")
    failed = [d for d in devs if d.failed]
    if failed:
        lines.append(f"  first failure: device {failed[0].index}: {failed[0].failed}")
    cpu = run["cpu"]
    lines.append(
        "CPU seconds during the storm: "
        + ", ".join(f"{k} {v:.1f}" for k, v in cpu.items())
        + f" (postgresql: its backends for this database, a lower bound; machine: every process,"
        f" other users' included); PostgreSQL connections to the database (max sampled) "
        f"{storm.pg_max_conns}"
    )
    lines.append("")
    lines.append(
        f"check against the database: queued {check['queued']}, acknowledged "
        f"{check['acknowledged']} {check['outcomes']}, in the mutation log {check['in_log']}, "
        f"duplicated {check['duplicated']}, outcome differs {check['wrong_outcome']}, "
        f"final status differs {check['wrong_status']}, unexplained rows "
        f"{check['extra_log']} (log) / {check['extra_effects']} (notes+materials), "
        f"still in outboxes {check['undrained']}"
    )
    lines.append(
        f"lost mutations: {check['lost']} (log {check['lost_log']}, "
        f"notes/materials {check['lost_effects']})"
    )
    ok = (
        total_5xx == 0
        and check["lost"] == 0
        and check["duplicated"] == 0
        and check["undrained"] == 0
        and check["wrong_outcome"] == 0
        and check["wrong_status"] == 0
        and not failed
    )
    return "\n".join(lines), ok


# ---------------------------------------------------------------------------- main


def _raise_fd_limit(need: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, max(soft, need)) if hard != resource.RLIM_INFINITY else max(soft, need)
    if want > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    if want < need:
        print(f"warning: open files limited to {want} (< {need} wanted)", file=sys.stderr)


async def main_async(args: argparse.Namespace) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="tournee-load-"))
    created_db = None
    if args.urls:
        if not args.database_url:
            raise SystemExit("--urls needs --database-url (the deployment's database, to seed)")
        database_url = args.database_url
        urls = [u.rstrip("/") for u in args.urls.split(",")]
    else:
        created_db = f"tournee_load_{os.getpid()}"
        database_url = PG_ADMIN.rsplit("/", 1)[0] + "/" + created_db
        urls = []
    args.pg_dsn = database_url.replace("postgresql+asyncpg://", "postgresql://", 1)
    env = {
        **os.environ,
        "TOURNEE_DATABASE_URL": database_url,
        "TOURNEE_VAR_DIR": str(workdir / "var"),
        "TOURNEE_SECRET_KEY": os.environ.get("TOURNEE_SECRET_KEY", "load-" + secrets.token_hex(8)),
        "TOURNEE_SCHEDULER": "0",
    }
    if args.pool_size:
        env["TOURNEE_DB_POOL_SIZE"] = str(args.pool_size)
    os.environ.update({k: v for k, v in env.items() if k.startswith("TOURNEE_")})
    from server.settings import get_settings

    get_settings.cache_clear()
    processes: Processes | ClusterProcesses | None = None
    storm = Storm(args)
    if created_db:
        await _admin(f'CREATE DATABASE "{created_db}"')
    try:
        if not args.urls:
            try:
                import server.cluster  # noqa: F401
            except ImportError:
                from server.migrate import upgrade
                from server.notify.service import load_vapid_keys

                await asyncio.to_thread(upgrade)
                load_vapid_keys(get_settings())  # made once, before N processes race for it
                processes = Processes(args.processes, args.scheduler, env, workdir)
            else:
                processes = ClusterProcesses(args.processes, args.scheduler, env, workdir)
            urls = await asyncio.to_thread(processes.start)
            print(f"{type(processes).__name__}: {len(urls)} API process(es) {' '.join(urls)}")
        await storm.seed(urls)
        if processes:
            await processes.wait_ready()
        await storm.warm_up()
        tasks = await storm.connect_listeners()
        try:
            if args.settle:
                await asyncio.sleep(args.settle)
            print(f"storm: {len(storm.devices)} devices reconnect within {args.window:.0f} s ...")
            run = await storm.storm(processes)
        finally:
            storm.stop_listeners.set()
            for listener in storm.listeners:
                if listener.writer is not None:
                    listener.writer.transport.abort()  # the read returns: no reliance on cancel
            if tasks:
                _done, pending = await asyncio.wait(tasks, timeout=15)
                for task in pending:
                    task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        run["processes"] = len(urls)
        run["pool_size"] = processes.pool_size if processes else "?"
        if processes:
            run["tracebacks"] = processes.errors_logged()
        check = await storm.verify()
        text, ok = report(storm, run, check, args)
        print()
        print(text)
        if args.json:
            Path(args.json).write_text(
                json.dumps({"args": vars(args), "run": run, "check": check}, default=str, indent=1)
            )
        return 0 if ok else 1
    finally:
        if processes:
            processes.stop()
        if hasattr(storm, "db"):
            await storm.db.dispose()
        if created_db and not args.keep:
            await _admin(f'DROP DATABASE IF EXISTS "{created_db}" WITH (FORCE)')
        if args.keep:
            print(f"kept database {created_db or database_url}; server logs in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--mutations", type=int, default=50, help="queued per device")
    parser.add_argument("--listeners", type=int, default=1000, help="idle SSE listeners")
    parser.add_argument(
        "--dispatch-listeners",
        type=int,
        help="how many of the listeners are dispatcher streams (default: half)",
    )
    parser.add_argument("--window", type=float, default=60.0, help="reconnect window (s)")
    parser.add_argument("--processes", type=int, default=1, help="API processes to start")
    parser.add_argument("--scheduler", action="store_true", help="also start a scheduler process")
    parser.add_argument("--urls", help="comma list of running API processes (no start)")
    parser.add_argument("--database-url", help="with --urls: the database those processes use")
    parser.add_argument("--batch", type=int, default=50, help="mutations per push")
    parser.add_argument("--devices-per-crew", type=int, default=2)
    parser.add_argument("--orders-per-device", type=int, default=5)
    parser.add_argument("--status-share", type=float, default=0.2)
    parser.add_argument("--pool-size", type=int, help="TOURNEE_DB_POOL_SIZE of started processes")
    parser.add_argument("--request-timeout", type=float, default=60.0)
    parser.add_argument("--sse-read-timeout", type=float, default=60.0)
    parser.add_argument("--warmup-concurrency", type=int, default=50)
    parser.add_argument("--settle", type=float, default=2.0, help="pause before the storm (s)")
    parser.add_argument("--deadline", type=float, default=900.0, help="give up after (s)")
    parser.add_argument(
        "--backoff-cap", type=float, default=300.0, help="longest backoff (s), protocol: 300"
    )
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument("--keep", action="store_true", help="keep the database and logs")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    args.tag = str(os.getpid())
    if args.dispatch_listeners is None:
        args.dispatch_listeners = args.listeners // 2
    _raise_fd_limit(2 * (args.devices + args.listeners) + 1024)
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
