"""Rate limits shared by every API process: counters in the database, sliding windows.

Each limited route names one or more *rules*: what is counted (citizen reports, push
subscriptions, sign-in attempts, Open311 POSTs), by which key (the client address, a tracking
token, a push endpoint, an account, an API key) and how many hits per how many seconds
(``TOURNEE_RATE_LIMIT_*``, several limits per rule, e.g. ``60/60,600/3600``). Numbers and
reasoning: docs/adr/0043.

The counters live in one table, so N API processes behind a load balancer enforce one limit,
not N of them (Litestar's own RateLimitConfig keeps its counters in a per-process store; ADR
0071). A hit is a few upserts in their own short transaction, taken in the route's guard, before
the route's transaction begins (so SQLite's single writer is never asked twice by one request).
An admitted hit counts even when the route then fails (a wrong password rolls back the route's
transaction, not the counter's); a refused hit is rolled back and does not count, so a script
hammering from a carrier's shared address uses no more than the limit, not the whole budget of
the citizens behind the same address.

Sliding window counter: a limit of H hits per S seconds keeps the hits of the current
S-aligned window and of the previous one, and admits a hit while
``current + previous × (1 − elapsed/S) < H`` — no burst of 2 H across a window edge (a fixed
window's flaw). Keys other than the address are hashed (SHA-256): tracking tokens and API keys
are secrets and never stored here.

Losing the table's rows loses nothing but the current windows (safe to lose). Old windows are
deleted by the prune job. The client address is ``request.client``: behind a proxy, set
``TOURNEE_FORWARDED_ALLOW_IPS`` to the proxy's address so uvicorn puts the real address there
(docs/deploy.md); by default no forwarded header is trusted.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.exceptions import TooManyRequestsException
from litestar.handlers.base import BaseRouteHandler
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Field, SQLModel, col

from server.db import Database
from server.dbtypes import UTCDateTime, dialect_name, utcnow
from server.settings import Limits, Settings


class RateLimitWindow(SQLModel, table=True):
    __tablename__ = "rate_limit_window"

    # "<scope>:<client>:<window seconds>:<window start, epoch seconds>"
    key: str = Field(primary_key=True, max_length=200)
    # when the row stops mattering: the end of the *next* window (it is that one's "previous")
    window_end: datetime = Field(index=True, sa_type=UTCDateTime)
    hits: int = 0


class _Refused(Exception):
    def __init__(self, retry_after: int) -> None:
        self.retry_after = retry_after


def _retry_after(most: int, seconds: int, current: int, previous: int, elapsed: int) -> int:
    """Seconds until one more hit fits (the estimate falls below ``most``)."""
    if current < most and previous > 0:
        # current + previous × (1 − (elapsed + t)/S) ≤ most − 1
        t = seconds * (1 - (most - 1 - current) / previous) - elapsed
        return max(1, math.ceil(t))
    return max(1, seconds - elapsed)


async def hit(db: Database, counts: Sequence[tuple[str, str, Limits]], now: datetime) -> int | None:
    """Count one hit under every ``(scope, client, limits)``: ``None`` when all admit it (it is
    counted), else the seconds to wait (nothing is counted)."""
    epoch = int(now.timestamp())
    try:
        async with db.transaction() as tx:
            insert = pg_insert if dialect_name(tx) == "postgresql" else sqlite_insert
            refusals: list[int] = []
            for scope, client, limits in counts:
                for most, seconds in limits:
                    start = epoch - epoch % seconds
                    prefix = f"{scope}:{client}:{seconds}:"
                    key = f"{prefix}{start}"[:200]
                    end = now + timedelta(seconds=start + 2 * seconds - epoch)
                    statement = (
                        insert(RateLimitWindow)
                        .values(key=key, window_end=end, hits=1)
                        .on_conflict_do_update(
                            index_elements=["key"], set_={"hits": col(RateLimitWindow.hits) + 1}
                        )
                        .returning(col(RateLimitWindow.hits))
                    )
                    current = int((await tx.execute(statement)).scalar_one()) - 1
                    previous = (
                        await tx.execute(
                            select(col(RateLimitWindow.hits)).where(
                                col(RateLimitWindow.key) == f"{prefix}{start - seconds}"[:200]
                            )
                        )
                    ).scalar_one_or_none() or 0
                    elapsed = epoch - start
                    estimate = current + previous * (1 - elapsed / seconds)
                    if estimate + 1 > most + 1e-9:
                        refusals.append(_retry_after(most, seconds, current, previous, elapsed))
            if refusals:
                raise _Refused(max(refusals))  # rolls the increments back
    except _Refused as refused:
        return refused.retry_after
    return None


def digest(value: str) -> str:
    """What a secret key (tracking token, API key, endpoint, account) is counted under."""
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:32]


KeyOf = Callable[[ASGIConnection[Any, Any, Any, Any]], Awaitable[str | None]]


@dataclass(frozen=True)
class Rule:
    """Count a hit of ``scope`` under ``key_of(connection)`` (None: this rule does not apply),
    limited by ``limits_of(settings)`` (None: off)."""

    scope: str
    limits_of: Callable[[Settings], Limits | None]
    key_of: KeyOf


async def by_address(connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    return connection.client.host if connection.client else "unknown"


def by_path_param(name: str) -> KeyOf:
    async def key_of(connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
        value = connection.path_params.get(name)
        return digest(str(value)) if value else None

    return key_of


async def _json(connection: ASGIConnection[Any, Any, Any, Any]) -> Any:
    """The JSON body, read once and cached for the handler; None when it is not JSON (the
    handler then answers the proper 4xx)."""
    if not isinstance(connection, Request):
        return None
    try:
        return await connection.json()
    except Exception:  # any undecodable body: the handler refuses it
        return None


def by_json_field(*path: str, fold_case: bool = False) -> KeyOf:
    async def key_of(connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
        value = await _json(connection)
        for name in path:
            value = value.get(name) if isinstance(value, dict) else None
        if not isinstance(value, str) or not value:
            return None
        return digest(value.casefold() if fold_case else value)

    return key_of


def by_form_field(name: str) -> KeyOf:
    """A field of a form body or of the query string (Open311 takes ``api_key`` in both)."""

    async def key_of(connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
        value: Any = connection.query_params.get(name)
        if isinstance(connection, Request):
            content_type = (connection.headers.get("content-type") or "").lower()
            if content_type.startswith(
                ("application/x-www-form-urlencoded", "multipart/form-data")
            ):
                with contextlib.suppress(Exception):  # a malformed form: the handler refuses it
                    value = (await connection.form()).get(name) or value
        if not isinstance(value, str) or not value.strip():
            return None
        return digest(value.strip())

    return key_of


def rate_limit_guard(*rules: Rule) -> Any:
    """A guard counting one hit under every rule that applies; 429 with ``Retry-After`` when
    any limit is reached (and then nothing is counted)."""

    async def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        settings: Settings = connection.app.state.settings
        counts: list[tuple[str, str, Limits]] = []
        for rule in rules:
            limits = rule.limits_of(settings)
            if not limits:
                continue
            key = await rule.key_of(connection)
            if key is not None:
                counts.append((rule.scope, key, limits))
        if not counts:
            return
        clock: Callable[[], datetime] = connection.app.state.get("clock") or utcnow
        retry_after = await hit(connection.app.state.db, counts, clock())
        if retry_after is not None:
            raise TooManyRequestsException(headers={"Retry-After": str(retry_after)})

    guard.__name__ = "rate_limit_" + "_".join(rule.scope for rule in rules)
    return guard
