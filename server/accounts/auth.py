"""Authentication (bearer tokens), password hashing and role guards.

Every request carrying ``Authorization: Bearer <token>`` is resolved against the database on
each call (sha256 lookup), so a revoked device is refused on its very next request, on every
API process. Nothing about sessions lives in process memory.

A token is accepted only in the ``Authorization`` header. EventSource cannot send headers, so
the SSE routes (marked ``opt={STREAM_TICKET: True}``) also accept ``?ticket=``: a single-use
ticket that lives ``TOURNEE_STREAM_TICKET_SECONDS`` (``POST /api/v1/auth/stream-ticket`` trades
the bearer token for one), stored as a sha256 so that any process redeems it. A ticket that
leaks through a URL or an access log has already been used or is about to expire.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from litestar import Request
from litestar.connection import ASGIConnection
from litestar.di import NamedDependency
from litestar.handlers.base import BaseRouteHandler
from sqlalchemy import select, update
from sqlmodel import col

from server.accounts.models import AccessToken, StreamTicket, User
from server.dbtypes import utcnow
from server.errors import Forbidden, Unauthorized

_hasher = PasswordHasher()
# A hash of a random password, verified when the user does not exist, so that an unknown
# username costs the same time as a wrong password.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))

LAST_SEEN_RESOLUTION = timedelta(minutes=1)

#: Route ``opt`` key: this route (an SSE stream) accepts ``?ticket=`` in place of the header.
STREAM_TICKET = "stream_ticket"


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def new_token() -> tuple[str, str]:
    """A fresh bearer token and the sha256 that is stored."""
    token = secrets.token_urlsafe(32)
    return token, token_digest(token)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Actor:
    user_id: int
    username: str
    role: str  # admin | dispatcher | crew
    crew_id: int | None
    token_id: int
    token_kind: str  # session | device
    language: str

    @property
    def device_id(self) -> int | None:
        return self.token_id if self.token_kind == "device" else None

    @property
    def is_dispatcher(self) -> bool:
        return self.role in ("dispatcher", "admin")


CurrentActor = NamedDependency[Actor]  # who calls, for handlers: ``actor: CurrentActor``


def _bearer(connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    header = connection.headers.get("authorization")
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


async def issue_stream_ticket(
    session: Any, actor: Actor, lifetime: timedelta
) -> tuple[str, datetime]:
    """A fresh single-use ticket standing for ``actor``'s token, and when it expires."""
    ticket, digest = new_token()
    expires_at = utcnow() + lifetime
    session.add(StreamTicket(ticket_hash=digest, token_id=actor.token_id, expires_at=expires_at))
    await session.flush()
    return ticket, expires_at


async def _redeem_stream_ticket(session: Any, ticket: str) -> int | None:
    """The token id a valid ticket stands for, marking it used (once, on any process)."""
    now = utcnow()
    digest = token_digest(ticket)
    used = await session.execute(
        update(StreamTicket)
        .where(
            col(StreamTicket.ticket_hash) == digest,
            col(StreamTicket.used_at).is_(None),
            col(StreamTicket.expires_at) > now,
        )
        .values(used_at=now)
    )
    if used.rowcount != 1:
        return None
    token_id = (
        await session.execute(
            select(col(StreamTicket.token_id)).where(col(StreamTicket.ticket_hash) == digest)
        )
    ).scalar_one()
    return int(token_id)


def _accepts_stream_ticket(connection: ASGIConnection[Any, Any, Any, Any]) -> bool:
    handler = connection.scope.get("route_handler")
    return bool(handler is not None and handler.opt.get(STREAM_TICKET))


async def resolve_actor(connection: ASGIConnection[Any, Any, Any, Any]) -> Actor:
    """The authenticated actor of this connection, or 401."""
    cached = connection.scope.get("state", {}).get("actor")
    if isinstance(cached, Actor):
        return cached
    token = _bearer(connection)
    ticket = None
    if token is None and _accepts_stream_ticket(connection):
        ticket = connection.query_params.get("ticket")
    if not token and not ticket:
        raise Unauthorized()
    db = connection.app.state.db
    now = utcnow()
    async with db.transaction() as session:
        query = select(AccessToken, User).join(User, col(User.id) == col(AccessToken.user_id))
        if token:
            query = query.where(col(AccessToken.token_hash) == token_digest(token))
        else:
            assert ticket is not None
            token_id = await _redeem_stream_ticket(session, ticket)
            if token_id is None:
                raise Unauthorized("stream_ticket_invalid")
            query = query.where(col(AccessToken.id) == token_id)
        row = (await session.execute(query)).first()
        if row is None:
            raise Unauthorized()
        access, user = row
        if access.revoked_at is not None or not user.active:
            raise Unauthorized("token_revoked")
        if access.expires_at is not None and access.expires_at <= now:
            raise Unauthorized("token_expired")
        if access.last_seen_at is None or now - access.last_seen_at > LAST_SEEN_RESOLUTION:
            await session.execute(
                update(AccessToken).where(AccessToken.id == access.id).values(last_seen_at=now)
            )
    assert access.id is not None and user.id is not None
    actor = Actor(
        user_id=user.id,
        username=user.username,
        role=user.role,
        crew_id=access.crew_id if access.kind == "device" else user.crew_id,
        token_id=access.id,
        token_kind=access.kind,
        language=user.language,
    )
    connection.scope.setdefault("state", {})["actor"] = actor
    return actor


Guard = Callable[[ASGIConnection[Any, Any, Any, Any], BaseRouteHandler], Awaitable[None]]


def roles_guard(*roles: str) -> Guard:
    allowed = frozenset(roles)

    async def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        actor = await resolve_actor(connection)
        if actor.role not in allowed:
            raise Forbidden()

    guard.__name__ = f"roles_guard_{'_'.join(sorted(allowed))}"
    return guard


async def public_guard(
    _connection: ASGIConnection[Any, Any, Any, Any], _h: BaseRouteHandler
) -> None:
    """Marks a route as deliberately public (the route audit test requires a guard on each)."""


async def device_guard(
    connection: ASGIConnection[Any, Any, Any, Any], _h: BaseRouteHandler
) -> None:
    """Crew device tokens only (/sync/v1/*): anything else is ``403 device_required``, as
    docs/sync-protocol.md promises a client author (a dispatcher or a crew session included)."""
    actor = await resolve_actor(connection)
    if actor.role != "crew" or actor.device_id is None or actor.crew_id is None:
        raise Forbidden("device_required")


dispatcher_guard = roles_guard("dispatcher", "admin")
admin_guard = roles_guard("admin")
crew_guard = roles_guard("crew")
any_user_guard = roles_guard("crew", "dispatcher", "admin")


async def provide_actor(request: Request[Any, Any, Any]) -> Actor:
    return await resolve_actor(request)
