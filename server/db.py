"""Engine, sessions and the one place a transaction commits.

Each HTTP request gets one ``AsyncSession`` from :func:`provide_tx`; the handler's service calls
only ``flush()``. The dependency commits after the handler returned and before the response is
sent (Litestar closes yield dependencies inside the handler's exit stack), so a failed commit
becomes an error response and nothing is half-written. Any exception rolls the whole request back.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from litestar.di import NamedDependency
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import AsyncAdaptedQueuePool

from server.errors import DomainError
from server.settings import Settings

__all__ = ["Database", "provide_tx"]

SQLITE_POOL_SIZE = 4  # connections kept open per process (as many again may overflow)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _has_nul(parameters: Any) -> bool:
    if isinstance(parameters, str):
        return "\x00" in parameters
    if isinstance(parameters, dict):
        return any(_has_nul(v) for v in parameters.values())
    if isinstance(parameters, list | tuple):
        return any(_has_nul(v) for v in parameters)
    return False


def _refuse_nul(
    _conn: Any, _cursor: Any, _statement: str, parameters: Any, _context: Any, _many: bool
) -> None:
    """No text with a NUL character reaches either database: PostgreSQL refuses it and SQLite
    would store it, so both refuse it the same way, as a client error (docs/adr/0004). JSON
    bodies are refused earlier (server/jsonbody.py); this catches forms, headers and paths."""
    if _has_nul(parameters):
        raise DomainError("text_nul_character", 400)


def make_engine(settings: Settings) -> AsyncEngine:
    engine = _make_engine(settings)
    event.listen(engine.sync_engine, "before_cursor_execute", _refuse_nul)
    return engine


def _make_engine(settings: Settings) -> AsyncEngine:
    if settings.is_postgres:
        return create_async_engine(
            settings.database_url,
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_pool_size,
            pool_pre_ping=True,
            connect_args={
                "server_settings": {
                    "statement_timeout": str(settings.db_statement_timeout_ms),
                    "application_name": "tournee",
                }
            },
        )
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(
        settings.database_url,
        # A small pool: opening an aiosqlite connection costs a thread and four PRAGMAs, and
        # closing the last connection of a WAL database checkpoints it. With a connection per
        # transaction (NullPool), sync push ingest ran at ~1,700 mutations/s; pooled, ~2,300+
        # (docs/benchmarks.md). SQLite serialises writers anyway (BEGIN IMMEDIATE below).
        poolclass=AsyncAdaptedQueuePool,
        pool_size=SQLITE_POOL_SIZE,
        max_overflow=SQLITE_POOL_SIZE,
        connect_args={"timeout": 30},
    )
    event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    _begin_immediate_on_sqlite(engine.sync_engine)
    return engine


def _begin_immediate_on_sqlite(engine: Engine) -> None:
    """SQLite: take the write lock at BEGIN so two writers wait instead of failing late.

    pysqlite's default deferred transactions upgrade read locks to write locks mid-transaction,
    which deadlocks two concurrent writers (SQLITE_BUSY without waiting). BEGIN IMMEDIATE makes
    the second writer wait for ``busy_timeout``.
    """

    @event.listens_for(engine, "connect")
    def _no_autobegin(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


class Database:
    """Holds the engine and session maker of one app instance (no module-level state)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.engine = make_engine(settings)
        self.sessionmaker = async_sessionmaker(
            self.engine, class_=AsyncSession, expire_on_commit=False, autoflush=False
        )

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """One unit of work outside HTTP (jobs, CLI): commit on success, roll back on error."""
        async with self.sessionmaker() as session:
            try:
                yield session
                await session.commit()
            except BaseException:
                await session.rollback()
                raise

    async def dispose(self) -> None:
        await self.engine.dispose()


async def provide_tx(db: NamedDependency[Database]) -> AsyncGenerator[AsyncSession, None]:
    """Litestar yield dependency: the request's transaction."""
    async with db.sessionmaker() as session:
        try:
            yield session
        except BaseException:
            await session.rollback()
            raise
        else:
            await session.commit()
