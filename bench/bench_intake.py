"""Intake at storm volume: POST/s and latency of the citizen endpoint and Open311 POST.

Starts `tournee run` (one process, SQLite by default; `--postgres` for a throw-away PostgreSQL
database) on a fresh demo city with the rate limits off, fires `--requests` POSTs with
`--connections` concurrent clients at each endpoint, and prints POST/s, p50/p95/p99 and errors,
beside the bound of a plain insert of the same rows (one transaction per row, no HTTP).

    make bench-intake                       # SQLite
    make bench-intake ARGS="--postgres"     # PostgreSQL on 127.0.0.1:5432
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PG_ADMIN = os.environ.get("TOURNEE_TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")
CITY = {"lat": 46.8139, "lon": -71.2080}


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def _fire(url: str, n: int, connections: int, make: Any) -> dict[str, float]:
    latencies: list[float] = []
    errors = 0
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(n):
        queue.put_nowait(i)
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client:

        async def worker() -> None:
            nonlocal errors
            while not queue.empty():
                i = queue.get_nowait()
                started = time.perf_counter()
                try:
                    response = await make(client, i)
                    ok = response.status_code == 201
                except httpx.HTTPError:
                    ok = False
                latencies.append(time.perf_counter() - started)
                errors += 0 if ok else 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(connections)))
        elapsed = time.perf_counter() - started
    return {
        "per_s": n / elapsed,
        "p50": _percentile(latencies, 0.50) * 1000,
        "p95": _percentile(latencies, 0.95) * 1000,
        "p99": _percentile(latencies, 0.99) * 1000,
        "errors": errors,
    }


async def _plain_insert_bound(n: int) -> float:
    """Rows/s of the same rows inserted one transaction each, in this process, no HTTP."""
    from sqlalchemy import insert, select

    from server.db import Database
    from server.requests.models import ServiceRequest, ServiceType
    from server.settings import get_settings

    db = Database(get_settings())
    try:
        async with db.transaction() as tx:
            st_id = (
                await tx.execute(select(ServiceType.id).where(ServiceType.code == "pothole"))
            ).scalar_one()
        started = time.perf_counter()
        for i in range(n):
            async with db.transaction() as tx:
                await tx.execute(
                    insert(ServiceRequest).values(
                        service_type_id=st_id,
                        description="Nid-de-poule",
                        address=f"{i}, rue",
                        language="fr",
                        channel="web",
                        status="received",
                        tracking_token=uuid.uuid4().hex,
                        **CITY,
                    )
                )
        return n / (time.perf_counter() - started)
    finally:
        await db.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="POSTs per endpoint (2000)")
    parser.add_argument("--connections", type=int, default=16, help="concurrent clients (16)")
    parser.add_argument("--postgres", action="store_true", help="PostgreSQL instead of SQLite")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="tournee-bench-intake-"))
    db_name = f"tournee_bench_{uuid.uuid4().hex[:8]}"
    if args.postgres:
        subprocess.run(["psql", PG_ADMIN, "-qc", f'CREATE DATABASE "{db_name}"'], check=True)
        url = PG_ADMIN.rsplit("/", 1)[0] + f"/{db_name}"
    else:
        url = f"sqlite:///{work / 'bench.sqlite3'}"
    env = {
        **os.environ,
        "TOURNEE_VAR_DIR": str(work / "var"),
        "TOURNEE_DATABASE_URL": url,
        "TOURNEE_RATE_LIMIT_PUBLIC": "off",
        "TOURNEE_RATE_LIMIT_LOGIN": "off",
        "TOURNEE_SCHEDULER": "0",
        "TOURNEE_LOG_FORMAT": "json",
    }
    os.environ.update(env)
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [sys.executable, "-m", "server.cli", "run", "--demo", "--port", str(port)],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("server did not start")
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        admin = httpx.post(
            f"{base}/api/v1/auth/login", json={"username": "admin", "password": "admin-demo"}
        ).json()["token"]
        key = httpx.post(
            f"{base}/api/v1/open311-keys",
            json={"name": "bench"},
            headers={"Authorization": f"Bearer {admin}"},
        ).json()["api_key"]

        def citizen(client: httpx.AsyncClient, i: int) -> Any:
            return client.post(
                "/api/v1/public/requests",
                json={"service_code": "pothole", "address": f"{i}, rue de la Tempête", **CITY},
            )

        def open311(client: httpx.AsyncClient, i: int) -> Any:
            return client.post(
                "/open311/v2/requests.json",
                data={
                    "api_key": key,
                    "service_code": "pothole",
                    "lat": str(CITY["lat"]),
                    "long": str(CITY["lon"]),
                    "address_string": f"{i}, rue du Verglas",
                },
            )

        rows = []
        for name, make in (
            ("citizen POST /api/v1/public/requests", citizen),
            ("Open311 POST /open311/v2/requests.json", open311),
        ):
            rows.append((name, asyncio.run(_fire(base, args.requests, args.connections, make))))
    finally:
        server.terminate()
        server.wait(timeout=60)
    bound = asyncio.run(_plain_insert_bound(args.requests))
    kind = "PostgreSQL" if args.postgres else "SQLite"
    load = os.getloadavg()
    print(
        f"intake on {kind}, 1 API process, {args.requests} POSTs x {args.connections} "
        f"connections, load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}"
    )
    print(f"{'endpoint':42} {'POST/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'errors':>6}")
    for name, r in rows:
        print(
            f"{name:42} {r['per_s']:8.0f} {r['p50']:8.1f} {r['p95']:8.1f} {r['p99']:8.1f} "
            f"{r['errors']:6.0f}"
        )
    print(f"{'plain insert bound (no HTTP, 1 tx/row)':42} {bound:8.0f}")
    if args.postgres:
        subprocess.run(
            ["psql", PG_ADMIN, "-qc", f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)'],
            check=False,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
