"""``python -m tests.cluster --devices 40 --steps 132``: the cluster simulation, long, on a fresh
PostgreSQL database (``TOURNEE_TEST_PG_ADMIN`` names the admin connection): 3 API processes and
2 scheduler processes (``--api``, ``--schedulers``), one of each SIGKILLed and restarted
mid-shift. One summary out; exit status 0 when every check passed."""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import uuid
from pathlib import Path

from tests.support.pg import admin_sql, database_url


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.cluster", description=__doc__)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--devices", type=int, default=40)
    parser.add_argument("--steps", type=int, default=132, help="steps over 08:00–19:00")
    parser.add_argument("--citizens", type=int, default=30, help="311 requests with push")
    parser.add_argument("--api", type=int, default=3)
    parser.add_argument("--schedulers", type=int, default=2)
    parser.add_argument("-v", "--verbose", action="store_true", help="print every check")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse(sys.argv[1:] if argv is None else argv)
    run_dir = Path(tempfile.mkdtemp(prefix="tournee-cluster-sim-"))
    pg_db = f"tournee_csim_{uuid.uuid4().hex[:10]}"
    asyncio.run(admin_sql(f'CREATE DATABASE "{pg_db}"'))
    # The environment is set before anything reads the settings (house style).
    os.environ["TOURNEE_VAR_DIR"] = str(run_dir / "var")
    os.environ["TOURNEE_DATABASE_URL"] = database_url(pg_db)
    os.environ.setdefault("TOURNEE_SECRET_KEY", "cluster-sim-secret")
    os.environ["TOURNEE_SCHEDULER"] = "0"
    # Every simulated phone and citizen signs in from 127.0.0.1: no per-address limit.
    os.environ["TOURNEE_RATE_LIMIT_LOGIN"] = "off"
    os.environ["TOURNEE_RATE_LIMIT_LOGIN_ACCOUNT"] = "off"
    os.environ["TOURNEE_RATE_LIMIT_REPORTS"] = "off"
    os.environ["TOURNEE_RATE_LIMIT_SUBSCRIPTIONS"] = "off"
    os.environ["TOURNEE_RATE_LIMIT_SUBSCRIPTIONS_TOKEN"] = "off"
    os.environ["TOURNEE_RATE_LIMIT_SUBSCRIPTIONS_ENDPOINT"] = "off"
    os.environ["TOURNEE_RATE_LIMIT_OPEN311"] = "off"
    passed = False
    try:
        from server.db import Database
        from server.notify.webpush import VapidKeys
        from server.settings import get_settings
        from tests.cluster.sim import count_push_rows, run_cluster_simulation
        from tests.cluster.support import running_cluster
        from tests.sim.fleet import SimConfig
        from tests.sim.server import ClusterServer
        from tests.support.data import reset_and_seed
        from tests.support.push_service import PushService

        get_settings.cache_clear()
        config = SimConfig(seed=args.seed, devices=args.devices, steps=args.steps)
        with (
            PushService(latency=0.02) as service,
            running_cluster(run_dir, api=args.api, schedulers=args.schedulers) as cluster,
        ):

            async def seed() -> None:
                db = Database(get_settings())
                try:
                    await reset_and_seed(db)
                finally:
                    await db.dispose()

            asyncio.run(seed())  # after the cluster applied the migrations
            pem = cluster.env["TOURNEE_VAPID_PRIVATE_KEY"].encode("ascii")
            service.expect_application_server_key(VapidKeys.from_pem(pem).public_key_b64url)
            server = ClusterServer(cluster, seed=args.seed)
            report = run_cluster_simulation(
                config, server, service=service, citizens=args.citizens,
                count_push_rows=count_push_rows,
            )  # fmt: skip
        if args.verbose or not report.passed:
            print(report.sim.details())
        print(report.summary())
        passed = report.passed
        if not passed:
            print(f"process logs kept in {run_dir / 'cluster-logs'}")
        return 0 if passed else 1
    finally:
        asyncio.run(admin_sql(f'DROP DATABASE IF EXISTS "{pg_db}" WITH (FORCE)'))
        if passed:
            shutil.rmtree(run_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
