"""Test configuration: one real database per test run (SQLite file or PostgreSQL).

``TOURNEE_TEST_DATABASE=postgresql`` runs the whole suite on PostgreSQL (a fresh database on
127.0.0.1:5432, dropped at the end); the default is a SQLite file. The environment is set here,
before the app is imported, as the house style requires.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.pg import admin_sql
from tests.support.pg import database_url as pg_database_url

BACKEND = os.environ.get("TOURNEE_TEST_DATABASE", "sqlite")
# TOURNEE_TEST_PHOTO_STORE=s3 runs the photo tests on a real S3 server (SeaweedFS, started here)
PHOTO_STORE = os.environ.get("TOURNEE_TEST_PHOTO_STORE", "file")
_RUN_DIR = Path(tempfile.mkdtemp(prefix="tournee-test-"))
_PG_DB = f"tournee_test_{uuid.uuid4().hex[:10]}"


def _database_url() -> str:
    if BACKEND == "postgresql":
        return pg_database_url(_PG_DB)
    return f"sqlite:///{_RUN_DIR / 'test.sqlite3'}"


os.environ["TOURNEE_VAR_DIR"] = str(_RUN_DIR / "var")
os.environ["TOURNEE_DATABASE_URL"] = _database_url()
os.environ["TOURNEE_SECRET_KEY"] = "test-secret"
os.environ["TOURNEE_SCHEDULER"] = "0"
# Tests sign in and submit far more often than a person; tests/integration/test_rate_limits.py
# turns the limits on for itself.
os.environ["TOURNEE_RATE_LIMIT_LOGIN"] = "off"
os.environ["TOURNEE_RATE_LIMIT_LOGIN_ACCOUNT"] = "off"
os.environ["TOURNEE_RATE_LIMIT_REPORTS"] = "off"
os.environ["TOURNEE_RATE_LIMIT_SUBSCRIPTIONS"] = "off"
os.environ["TOURNEE_RATE_LIMIT_SUBSCRIPTIONS_TOKEN"] = "off"
os.environ["TOURNEE_RATE_LIMIT_SUBSCRIPTIONS_ENDPOINT"] = "off"
os.environ["TOURNEE_RATE_LIMIT_OPEN311"] = "off"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "postgres_only: runs on PostgreSQL only")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if BACKEND == "postgresql":
        return
    skip = pytest.mark.skip(reason="PostgreSQL only (TOURNEE_TEST_DATABASE=postgresql)")
    for item in items:
        if "postgres_only" in item.keywords:
            item.add_marker(skip)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """In CI on PostgreSQL nothing may be skipped: a skipped PG test is a hidden failure."""
    if os.environ.get("TOURNEE_FAIL_ON_SKIP") != "1" or BACKEND != "postgresql":
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = len(reporter.stats.get("skipped", [])) if reporter else 0
    if skipped:
        if reporter:
            reporter.write_line(f"FAIL: {skipped} test(s) skipped while TOURNEE_FAIL_ON_SKIP=1")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(scope="session", autouse=True)
def _wired() -> None:
    """Tests call services directly too: subscribe the event listeners as create_app does."""
    from server.wiring import wire

    wire()


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """Create the run's database and migrate it to head."""
    from server.settings import get_settings

    seaweed = None
    if PHOTO_STORE == "s3":
        from tests.support.seaweed import SeaweedS3

        seaweed = SeaweedS3(_RUN_DIR / "s3")
        seaweed.start()
        seaweed.create_bucket("tournee-test")
        os.environ.update(
            TOURNEE_PHOTO_STORE="s3",
            TOURNEE_S3_ENDPOINT=seaweed.endpoint,
            TOURNEE_S3_BUCKET="tournee-test",
            TOURNEE_S3_ACCESS_KEY_ID="tournee",
            TOURNEE_S3_SECRET_ACCESS_KEY="tournee-secret",
        )
    get_settings.cache_clear()
    if BACKEND == "postgresql":
        _admin_sql(f'CREATE DATABASE "{_PG_DB}"')
    from server.migrate import upgrade

    upgrade()
    yield os.environ["TOURNEE_DATABASE_URL"]
    if seaweed is not None:
        seaweed.stop()
    if BACKEND == "postgresql":
        _admin_sql(f'DROP DATABASE IF EXISTS "{_PG_DB}" WITH (FORCE)')
    shutil.rmtree(_RUN_DIR, ignore_errors=True)


def _admin_sql(statement: str) -> None:
    import asyncio

    asyncio.run(admin_sql(statement))


@pytest.fixture
async def app(database_url: str) -> AsyncIterator[Any]:
    """A fresh app over a clean database holding the base reference data and users."""
    from server.app import create_app
    from server.settings import get_settings
    from tests.support.data import reset_and_seed

    settings = get_settings()
    application = create_app(settings)
    from server.db import Database

    db = Database(settings)
    try:
        await reset_and_seed(db)
    finally:
        await db.dispose()
    yield application


@pytest.fixture
async def client(app: Any) -> AsyncIterator[Any]:
    from litestar.testing import AsyncTestClient

    async with AsyncTestClient(app=app, raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
async def dispatcher(client: Any) -> dict[str, str]:
    """Headers of a signed-in dispatcher (repartiteur1)."""
    from tests.support.data import login

    return await login(client, "repartiteur1", "dispatcher")


@pytest.fixture
async def crews(client: Any, dispatcher: dict[str, str]) -> dict[str, int]:
    """Crew ids by code."""
    from tests.support.sync_helpers import crew_ids

    return await crew_ids(client, dispatcher)
