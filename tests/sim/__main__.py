"""``python -m tests.sim --seed 7 --devices 40 --steps 132``: one long seeded shift, one line out.

Runs on a throw-away SQLite database by default, or on a fresh PostgreSQL database with
``--postgres`` (``TOURNEE_TEST_PG_ADMIN`` names the admin connection). Exit status 0 when every
check passed.
"""

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
    parser = argparse.ArgumentParser(prog="python -m tests.sim", description=__doc__)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--devices", type=int, default=40)
    parser.add_argument("--steps", type=int, default=132, help="steps over 08:00–19:00")
    parser.add_argument("--dispatchers", type=int, default=2)
    parser.add_argument("--postgres", action="store_true", help="use a fresh PostgreSQL database")
    parser.add_argument("--no-restart", action="store_true", help="no server restart mid-shift")
    parser.add_argument("-v", "--verbose", action="store_true", help="print every check")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse(sys.argv[1:] if argv is None else argv)
    run_dir = Path(tempfile.mkdtemp(prefix="tournee-sim-"))
    pg_db = f"tournee_sim_{uuid.uuid4().hex[:10]}"
    if args.postgres:
        url = database_url(pg_db)
        asyncio.run(admin_sql(f'CREATE DATABASE "{pg_db}"'))
    else:
        url = f"sqlite:///{run_dir / 'sim.sqlite3'}"
    # The environment is set before anything reads the settings (house style).
    os.environ["TOURNEE_VAR_DIR"] = str(run_dir / "var")
    os.environ["TOURNEE_DATABASE_URL"] = url
    os.environ.setdefault("TOURNEE_SECRET_KEY", "sim-secret")
    os.environ["TOURNEE_SCHEDULER"] = "0"
    # Every simulated phone and citizen signs in from 127.0.0.1: no per-address limit.
    os.environ["TOURNEE_RATE_LIMIT_LOGIN"] = "off"
    os.environ["TOURNEE_RATE_LIMIT_LOGIN_ACCOUNT"] = "off"
    os.environ["TOURNEE_RATE_LIMIT_REPORTS"] = "off"
    os.environ["TOURNEE_RATE_LIMIT_SUBSCRIPTIONS"] = "off"
    os.environ["TOURNEE_RATE_LIMIT_SUBSCRIPTIONS_TOKEN"] = "off"
    os.environ["TOURNEE_RATE_LIMIT_SUBSCRIPTIONS_ENDPOINT"] = "off"
    os.environ["TOURNEE_RATE_LIMIT_OPEN311"] = "off"
    try:
        from server.app import create_app
        from server.db import Database
        from server.migrate import upgrade
        from server.settings import get_settings
        from tests.sim.fleet import SimConfig
        from tests.sim.run import run_simulation
        from tests.sim.server import RestartableServer
        from tests.support.data import reset_and_seed

        get_settings.cache_clear()
        upgrade()

        async def seed() -> None:
            db = Database(get_settings())
            try:
                await reset_and_seed(db)
            finally:
                await db.dispose()

        asyncio.run(seed())
        config = SimConfig(
            seed=args.seed,
            devices=args.devices,
            steps=args.steps,
            dispatchers=args.dispatchers,
            restart_server=not args.no_restart,
        )
        with RestartableServer(lambda: create_app(get_settings())) as server:
            report = run_simulation(config, server)
        if args.verbose or not report.passed:
            print(report.details())
        print(report.summary())
        return 0 if report.passed else 1
    finally:
        if args.postgres:
            asyncio.run(admin_sql(f'DROP DATABASE IF EXISTS "{pg_db}" WITH (FORCE)'))
        shutil.rmtree(run_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
