"""Rate limits shared by every API process: counters in the database, fixed windows.

Public writes (citizen intake, push subscriptions, Open311 POST) and sign-in attempts are
limited per client address. The counters live in one table, so N API processes behind a load
balancer enforce one limit, not N of them (Litestar's own RateLimitConfig keeps its counters in
a per-process store; ADR 0070 records the choice). A counter is one upsert in its own short
transaction, taken in the route's guard, before the route's transaction begins (so SQLite's
single writer is never asked twice by one request), and it counts failed attempts too (a wrong
password rolls back the route's transaction, not the counter's).

Losing the table's rows loses nothing but the current windows (safe to lose). Old windows are
deleted by the prune job. The client address is ``request.client``: behind a proxy, uvicorn's
``proxy_headers``/``forwarded_allow_ips`` put the real address there (docs/deploy.md).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from litestar.connection import ASGIConnection
from litestar.exceptions import TooManyRequestsException
from litestar.handlers.base import BaseRouteHandler
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Field, SQLModel

from server.db import Database
from server.dbtypes import UTCDateTime, utcnow
from server.settings import Settings


class RateLimitWindow(SQLModel, table=True):
    __tablename__ = "rate_limit_window"

    # "<scope>:<client>:<window start, epoch seconds>"
    key: str = Field(primary_key=True, max_length=200)
    window_end: datetime = Field(index=True, sa_type=UTCDateTime)
    hits: int = 0


async def hit(
    db: Database, scope: str, client: str, limit: tuple[int, int], now: datetime
) -> int | None:
    """Count one hit; ``None`` when under the limit, else the seconds until the window ends."""
    most, seconds = limit
    epoch = int(now.timestamp())
    start = epoch - epoch % seconds
    end = now + timedelta(seconds=start + seconds - epoch)
    key = f"{scope}:{client}:{start}"[:200]
    async with db.transaction() as tx:
        insert = pg_insert if tx.bind.dialect.name == "postgresql" else sqlite_insert
        statement = (
            insert(RateLimitWindow)
            .values(key=key, window_end=end, hits=1)
            .on_conflict_do_update(index_elements=["key"], set_={"hits": RateLimitWindow.hits + 1})
            .returning(RateLimitWindow.hits)
        )
        hits = int((await tx.execute(statement)).scalar_one())
    if hits <= most:
        return None
    return max(1, start + seconds - epoch)


def rate_limit_guard(scope: str, limit_of: Callable[[Settings], tuple[int, int] | None]) -> Any:
    """A guard counting one hit of ``scope`` per call, limited by ``limit_of(settings)``
    (e.g. ``Settings.rate_limit_public``; None: no limit)."""

    async def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        settings: Settings = connection.app.state.settings
        limit = limit_of(settings)
        if limit is None:
            return
        client = connection.client.host if connection.client else "unknown"
        retry_after = await hit(connection.app.state.db, scope, client, limit, utcnow())
        if retry_after is not None:
            raise TooManyRequestsException(headers={"Retry-After": str(retry_after)})

    guard.__name__ = f"rate_limit_{scope}"
    return guard
