"""Migrations: head on an empty database, no drift from the models, down to base and up again."""

from __future__ import annotations

import asyncio
import os
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import SQLModel

from server import models  # noqa: F401
from server.db import make_engine
from server.migrate import downgrade, upgrade
from server.settings import get_settings


def _drift() -> list[Any]:
    async def run() -> list[Any]:
        engine = make_engine(get_settings())
        try:
            async with engine.connect() as conn:

                def compare(sync_conn: Any) -> list[Any]:
                    context = MigrationContext.configure(
                        sync_conn, opts={"compare_type": True, "render_as_batch": True}
                    )
                    return list(compare_metadata(context, SQLModel.metadata))

                return await conn.run_sync(compare)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def _tables() -> set[str]:
    from sqlalchemy import inspect

    async def run() -> set[str]:
        engine = make_engine(get_settings())
        try:
            async with engine.connect() as conn:
                return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
        finally:
            await engine.dispose()

    return asyncio.run(run())


def test_head_matches_models_and_round_trips(database_url: str) -> None:
    assert os.environ["TOURNEE_DATABASE_URL"] == database_url
    upgrade()
    assert _drift() == [], "models and migrations differ: write a migration"
    downgrade("base")
    assert _tables() <= {"alembic_version"}
    upgrade()
    assert {t.name for t in SQLModel.metadata.sorted_tables} <= _tables()
    assert _drift() == []
