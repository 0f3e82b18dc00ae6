"""Offline sync benchmark: push ingest, incremental pull, first full sync (SQLite and PostgreSQL).

    .venv/bin/python bench/bench_sync.py [--sizes 10000,100000] [--backends sqlite,postgresql]
    make bench-sync ARGS="--sizes 10000,1000000"
    make bench-sync ARGS="--push-only --push-batches 120"

For each backend, on a fresh database (migrated, demo reference data):
- push ingest: one crew device pushes batches of 50 mutations (70 % notes, 20 % material
  entries, 10 % status changes through the work-order service) through ``server.syncapi.service
  .push``, one transaction per batch, as the HTTP handler does (JSON and HTTP not included);
  sustained over ``--push-batches`` batches. The physical bound is a plain ``executemany`` of
  the same number of rows into the notes table, one transaction per 50 rows.
- for each size N: N work orders bulk-loaded (executemany on SQLite, COPY on PostgreSQL), one
  crew holding 500 open orders, the rest spread over the other crews and mostly closed long ago.
  First full sync of the crew (cookie null, one page of 1000), then ``--pulls`` incremental
  pulls, each after a dispatcher changed 5 of the crew's orders: p50/p95 in milliseconds.
  The ratio p95(largest N) / p95(smallest N) shows whether pull cost grows with the table.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PG_ADMIN = os.environ.get("TOURNEE_TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")


def _configure(backend: str, workdir: Path) -> str:
    if backend == "postgresql":
        name = f"tournee_bench_{uuid.uuid4().hex[:8]}"
        url = PG_ADMIN.rsplit("/", 1)[0] + "/" + name
    else:
        name = str(workdir / f"bench-{uuid.uuid4().hex[:6]}.sqlite3")
        url = f"sqlite:///{name}"
    os.environ["TOURNEE_DATABASE_URL"] = url
    os.environ["TOURNEE_VAR_DIR"] = str(workdir / "var")
    os.environ["TOURNEE_SECRET_KEY"] = "bench"
    os.environ["TOURNEE_SCHEDULER"] = "0"
    from server.settings import get_settings

    get_settings.cache_clear()
    return name


async def _admin(statement: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class Bench:
    def __init__(self, backend: str, args: argparse.Namespace) -> None:
        self.backend = backend
        self.args = args

    async def setup(self) -> None:
        from server.accounts.auth import Actor
        from server.db import Database
        from server.seed import seed_reference, seed_users
        from server.settings import get_settings
        from server.wiring import wire

        wire()  # the benchmark creates work orders through the services (docs/adr/0090)
        self.db = Database(get_settings())
        async with self.db.transaction() as tx:
            self.crews = await seed_reference(tx)
            await seed_users(tx, self.crews, {r: "x" for r in ("admin", "dispatcher", "crew")})
        from sqlalchemy import select

        from server.accounts.models import AccessToken, User
        from server.requests.models import ServiceType

        async with self.db.transaction() as tx:
            crew_user = (
                await tx.execute(select(User).where(User.username == "mtremblay"))
            ).scalar_one()
            desk = (
                await tx.execute(select(User).where(User.username == "repartiteur1"))
            ).scalar_one()
            token = AccessToken(
                token_hash=uuid.uuid4().hex,
                kind="device",
                user_id=crew_user.id,
                crew_id=crew_user.crew_id,
            )
            tx.add(token)
            await tx.flush()
            self.type_ids = [st.id for st in (await tx.execute(select(ServiceType))).scalars()]
        self.crew_id = crew_user.crew_id
        self.device = Actor(
            crew_user.id, crew_user.username, "crew", crew_user.crew_id, token.id, "device", "fr"
        )
        self.desk = Actor(desk.id, desk.username, "dispatcher", None, 0, "session", "fr")

    # ------------------------------------------------------------------ bulk load

    def _rows(
        self, start: int, count: int, rng: random.Random, crew_open: int
    ) -> list[dict[str, Any]]:
        from server.dbtypes import utcnow

        now = utcnow()
        other_crews = [c for c in self.crews.values() if c != self.crew_id]
        rows = []
        for i in range(start, start + count):
            mine = i < crew_open
            if mine:
                status, crew, closed = "assigned", self.crew_id, None
            elif rng.random() < 0.9:
                status, crew = "completed", rng.choice(other_crews)
                closed = now - timedelta(days=rng.randint(2, 700))
            else:
                status, crew, closed = "assigned", rng.choice(other_crews), None
            rows.append(
                {
                    "service_type_id": rng.choice(self.type_ids),
                    "title": "Bon de travail",
                    "description": "Chargement de la neige, rue Saint-Jean",
                    "lat": 46.81 + rng.random() / 100,
                    "lon": -71.21 + rng.random() / 100,
                    "address": "100, rue Saint-Jean",
                    "borough_code": "cite-limoilou",
                    "priority": rng.randint(1, 4),
                    "status": status,
                    "outcome": "fixed" if status == "completed" else None,
                    "crew_id": crew,
                    "due_at": now + timedelta(hours=rng.randint(-48, 48)),
                    "created_at": now - timedelta(days=1),
                    "updated_at": now - timedelta(days=1),
                    "completed_at": closed,
                    "closed_at": closed,
                    "planned": True,
                    "version": 2,
                    "change_seq": 1,
                    "field_versions": {"status": 2},
                    "work_performed": False,
                }
            )
        return rows

    async def load_orders(self, target: int) -> None:
        """Grow the work_order table to ``target`` rows (the crew's 500 are the first ones)."""
        from sqlalchemy import func, insert, select

        from server.workorders.models import WorkOrder

        async with self.db.transaction() as tx:
            have = (await tx.execute(select(func.count()).select_from(WorkOrder))).scalar_one()
        rng = random.Random(target)
        chunk = 20_000
        started = time.perf_counter()
        for start in range(have, target, chunk):
            rows = self._rows(start, min(chunk, target - start), rng, crew_open=500)
            if self.backend == "postgresql":
                await self._copy(rows)
            else:
                async with self.db.transaction() as tx:
                    await tx.execute(insert(WorkOrder), rows)
        if self.backend == "postgresql":
            async with self.db.engine.connect() as conn:
                await conn.exec_driver_sql("ANALYZE work_order")
        print(f"  loaded {target - have:>9,} work orders in {time.perf_counter() - started:6.1f} s")

    async def _copy(self, rows: list[dict[str, Any]]) -> None:
        import json

        columns = list(rows[0])
        records = [
            tuple(json.dumps(r[c]) if c == "field_versions" else r[c] for c in columns)
            for r in rows
        ]
        async with self.db.engine.connect() as conn:
            raw = await conn.get_raw_connection()
            driver = raw.driver_connection
            await driver.copy_records_to_table("work_order", records=records, columns=columns)
            await conn.commit()

    # ------------------------------------------------------------------ measurements

    async def bench_push(self) -> tuple[float, float]:
        from server.syncapi import service
        from server.syncapi.models import MutationIn, PushRequest
        from server.workorders.models import WorkOrderCreate
        from server.workorders.service import create_work_order

        orders = []
        async with self.db.transaction() as tx:
            for _ in range(20):
                wo = await create_work_order(
                    tx,
                    WorkOrderCreate(
                        service_code="snow-sidewalk", lat=46.81, lon=-71.2, crew_id=self.crew_id
                    ),
                    self.desk,
                )
                orders.append(wo.id)
        rng = random.Random(1)
        status_cycle = ["en_route", "on_site", "on_hold", "on_site"]
        client_id = f"bench-{uuid.uuid4().hex[:12]}"
        next_id = 1
        batches = self.args.push_batches
        step = 0

        def batch() -> PushRequest:
            nonlocal next_id, step
            mutations = []
            for _ in range(50):
                wo = rng.choice(orders)
                roll = rng.random()
                if roll < 0.7:
                    name, args = (
                        "workorder.add_note@1",
                        {
                            "work_order_id": wo,
                            "note_id": str(uuid.uuid4()),
                            "body": "Note de terrain",
                        },
                    )
                elif roll < 0.9:
                    name, args = (
                        "workorder.add_material@1",
                        {
                            "work_order_id": wo,
                            "entry_id": str(uuid.uuid4()),
                            "material_code": "salt",
                            "quantity": 2.5,
                            "unit": "kg",
                        },
                    )
                else:
                    step += 1
                    name, args = (
                        "workorder.set_status@1",
                        {"work_order_id": wo, "status": status_cycle[step % 4]},
                    )
                mutations.append(
                    MutationIn(id=next_id, name=name, base_version=1_000_000, args=args)
                )
                next_id += 1
            return PushRequest(
                protocol=1, schema_version=1, client_id=client_id, mutations=mutations
            )

        bodies = [batch() for _ in range(batches)]
        started = time.perf_counter()
        for body in bodies:
            async with self.db.transaction() as tx:
                await service.push(tx, self.device, body)
        elapsed = time.perf_counter() - started
        push_rate = batches * 50 / elapsed

        # physical bound: the same number of rows, plain executemany, 50 rows per transaction
        from sqlalchemy import insert

        from server.workorders.models import WorkOrderNote

        started = time.perf_counter()
        for _ in range(batches):
            rows = [
                {
                    "id": str(uuid.uuid4()),
                    "work_order_id": orders[0],
                    "body": "Note de terrain",
                    "author": "bench",
                    "created_at": _now(),
                }
                for _ in range(50)
            ]
            async with self.db.transaction() as tx:
                await tx.execute(insert(WorkOrderNote), rows)
        bound = batches * 50 / (time.perf_counter() - started)
        return push_rate, bound

    async def bench_pull(self) -> tuple[float, float, float]:
        from sqlalchemy import select

        from server.settings import get_settings
        from server.syncapi import service
        from server.syncapi.models import PullRequest
        from server.workorders import service as wo_service
        from server.workorders.models import WorkOrder

        settings = get_settings()
        client_id = f"bench-pull-{uuid.uuid4().hex[:8]}"
        started = time.perf_counter()
        async with self.db.transaction() as tx:
            answer = await service.pull(
                tx,
                self.device,
                PullRequest(
                    protocol=1, schema_version=1, client_id=client_id, cookie=None, limit=1000
                ),
                settings,
            )
        full = (time.perf_counter() - started) * 1000
        assert not answer.has_more and len(answer.patch) >= 500, len(answer.patch)
        cookie = answer.cookie
        async with self.db.transaction() as tx:
            mine = list(
                (
                    await tx.execute(
                        select(WorkOrder.id).where(
                            WorkOrder.crew_id == self.crew_id, WorkOrder.status == "assigned"
                        )
                    )
                ).scalars()
            )
        rng = random.Random(7)
        times = []
        for _ in range(self.args.pulls):
            async with self.db.transaction() as tx:
                for wo_id in rng.sample(mine, 5):
                    await wo_service.set_priority(tx, wo_id, rng.randint(1, 4), self.desk, None)
            started = time.perf_counter()
            async with self.db.transaction() as tx:
                answer = await service.pull(
                    tx,
                    self.device,
                    PullRequest(protocol=1, schema_version=1, client_id=client_id, cookie=cookie),
                    settings,
                )
            times.append((time.perf_counter() - started) * 1000)
            # 5 changed orders; more when another transaction in the cluster holds xmin back
            assert len(answer.patch) >= 1 and not answer.has_more, len(answer.patch)
            cookie = answer.cookie
        return statistics.median(times), _pct(times, 0.95), full

    async def close(self) -> None:
        await self.db.dispose()


def _now() -> Any:
    from server.dbtypes import utcnow

    return utcnow()


async def run_backend(backend: str, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    name = _configure(backend, workdir)
    if backend == "postgresql":
        await _admin(f'CREATE DATABASE "{name}"')
    try:
        from server.migrate import upgrade

        await asyncio.to_thread(upgrade)
        bench = Bench(backend, args)
        await bench.setup()
        try:
            print(f"[{backend}]")
            push_rate, bound = await bench.bench_push()
            print(
                f"  push ingest: {push_rate:8,.0f} mutations/s (batches of 50)   "
                f"plain executemany bound: {bound:8,.0f} rows/s   ratio {push_rate / bound:.2f}"
            )
            if args.push_only:
                return {"push": push_rate, "bound": bound}
            pulls: dict[int, tuple[float, float, float]] = {}
            for size in args.sizes:
                await bench.load_orders(size)
                pulls[size] = await bench.bench_pull()
                p50, p95, full = pulls[size]
                print(
                    f"  {size:>9,} orders: incremental pull p50 {p50:6.1f} ms  p95 {p95:6.1f} ms   "
                    f"first full sync (500 orders) {full:7.1f} ms"
                )
            small, large = min(pulls), max(pulls)
            ratio = pulls[large][1] / pulls[small][1]
            print(f"  pull p95 at {large:,} / at {small:,}: {ratio:.2f}")
            return {"push": push_rate, "bound": bound, "pulls": pulls, "ratio": ratio}
        finally:
            await bench.close()
    finally:
        if backend == "postgresql":
            await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="10000,100000", help="comma list of work-order counts")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--push-batches", type=int, default=60)
    parser.add_argument("--pulls", type=int, default=60)
    parser.add_argument(
        "--push-only", action="store_true", help="measure push ingest only (no pull sizes)"
    )
    args = parser.parse_args()
    args.sizes = sorted(int(s) for s in args.sizes.split(","))
    with tempfile.TemporaryDirectory(prefix="tournee-bench-") as tmp:
        for backend in args.backends.split(","):
            await run_backend(backend.strip(), args, Path(tmp))


if __name__ == "__main__":
    asyncio.run(main())
