"""Live updates: publish small events after commit, stream them to browsers over SSE.

Built on Litestar Channels: the memory backend when one process serves everything
(``TOURNEE_CHANNELS_BACKEND=memory``, the default on SQLite), PostgreSQL LISTEN/NOTIFY
(``AsyncPgChannelsBackend``, asyncpg) when several API processes share a PostgreSQL
(``postgres``, the default on PostgreSQL).

API (for every domain):

``publish(tx, channel, event, data)``
    Queue ``{"event": event, "data": data}`` on ``channel`` in the transaction ``tx``. It is
    delivered **only if and after** the transaction commits: on PostgreSQL as a transactional
    ``pg_notify`` issued just before COMMIT (PostgreSQL delivers it at commit, to every process),
    with the memory backend through ``ChannelsPlugin.publish`` right after COMMIT. A rollback
    drops it. Publishing the same ``(channel, event)`` twice in one transaction keeps the last
    ``data`` (coalescing): pass the accumulated payload. ``data`` must be JSON-serialisable and
    small (PostgreSQL caps a notification at 8000 bytes).
    Works from HTTP handlers (``tx`` from ``provide_tx``) and jobs (``Database.transaction()``)
    of an app whose database was :func:`install`-ed; outside an app on PostgreSQL (a separate
    scheduler process) it still notifies through ``pg_notify``; elsewhere it is a no-op.

``crew_channel(crew_id)``, ``DISPATCH_CHANNEL``
    Channel names in use: one per crew (sync hints to its phones) and one for dispatchers
    (streamed by ``GET /api/v1/live/events``, server/live/routes.py).

``publish_dispatch(tx, event, item)``
    ``publish`` on ``DISPATCH_CHANNEL`` of ``item`` (a dict with an ``id``) plus ``ids``: every
    id published under ``event`` in this transaction (coalesced: a bulk change is one event).

``event_stream(plugin, channels, *, hello, settings)`` / ``sse_response(...)``
    An SSE response: ``event: hello`` first, then one SSE message per published event
    (``event:`` is the event name, ``data:`` its JSON), a ``: keepalive`` comment every
    ``settings.sync_sse_heartbeat_seconds``; the stream ends after
    ``settings.sync_sse_max_seconds`` (EventSource reconnects after ``retry``). Put the route
    behind a guard and mark it ``opt={STREAM_TICKET: True}``; EventSource cannot send headers,
    so it authenticates with a single-use ``?ticket=`` (server/accounts/auth.py). Pass
    ``session=(user_id, token_id)`` so that :func:`end_streams` ends it.

``make_plugin(settings)`` and ``install(db, plugin, settings)`` are called once by
``create_app``; the plugin is ``app.state.channels`` (and injectable as ``channels``).

``end_streams(tx, user_id, token_id=None)``
    After ``tx`` commits, end the open SSE streams opened with that token (or every token of the
    user when ``token_id`` is None), on every process: a logout, a revoked device, a deactivated
    user or a changed role/crew (server/accounts/service.py). Streams are told through the user's
    own channel (``user_channel``), with the same delivery as any other event; the client gets
    no message, just the end of the stream, and its reconnection is refused.

``close_streams(plugin)``
    Ends every open SSE stream of this process (called on SIGTERM/SIGINT, server/shutdown.py, and
    at lifespan shutdown), so a stopping process is not held open by browsers; EventSource
    reconnects after ``retry``, through the load balancer to a process that is up.

Hints are hints: delivery is at most once (a client that reconnects has missed what was sent
meanwhile), so clients fetch state after each (re)connect and poll as a fallback.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncGenerator, Iterable
from dataclasses import dataclass
from typing import Any

from litestar.channels import ChannelsPlugin
from litestar.channels.backends.asyncpg import AsyncPgChannelsBackend
from litestar.channels.backends.memory import MemoryChannelsBackend
from litestar.response import ServerSentEvent
from litestar.response.sse import ServerSentEventMessage
from sqlalchemy import event as sa_event
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, SessionTransaction

from server.db import Database
from server.settings import Settings

__all__ = [
    "DISPATCH_CHANNEL",
    "LiveChannelsPlugin",
    "close_streams",
    "crew_channel",
    "end_streams",
    "event_stream",
    "install",
    "make_plugin",
    "publish",
    "publish_dispatch",
    "sse_response",
    "user_channel",
]

log = logging.getLogger("tournee.live")

DISPATCH_CHANNEL = "tournee.dispatch"
_CONFIG_KEY = "tournee_live"
_OUTBOX_KEY = "tournee_live_outbox"


def crew_channel(crew_id: int) -> str:
    return f"tournee.crew.{crew_id}"


def user_channel(user_id: int) -> str:
    return f"tournee.user.{user_id}"


#: Published on a user's channel: streams of that token (all of the user's if None) end.
SESSION_ENDED = "session_ended"


@dataclass(frozen=True)
class _LiveConfig:
    plugin: ChannelsPlugin
    postgres: bool  # deliver through pg_notify (the LISTEN/NOTIFY backend)


class LiveChannelsPlugin(ChannelsPlugin):
    """The Channels plugin plus ``closing``: set when this process begins to shut down."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.closing = asyncio.Event()


def close_streams(plugin: ChannelsPlugin) -> None:
    """End the SSE streams of this process (see module doc)."""
    closing = getattr(plugin, "closing", None)
    if closing is not None:
        closing.set()


def make_plugin(settings: Settings) -> ChannelsPlugin:
    if settings.channels_backend == "postgres":
        dsn = settings.database_url.replace("postgresql+asyncpg://", "postgresql://", 1)
        backend: Any = AsyncPgChannelsBackend(dsn=dsn)
    else:
        backend = MemoryChannelsBackend()
    return LiveChannelsPlugin(
        backend=backend,
        arbitrary_channels_allowed=True,
        create_ws_route_handlers=False,
        subscriber_max_backlog=100,
        subscriber_backlog_strategy="dropleft",
    )


def install(db: Database, plugin: ChannelsPlugin, settings: Settings) -> None:
    """Let sessions of ``db`` deliver what :func:`publish` queued (after commit)."""
    info = dict(db.sessionmaker.kw.get("info") or {})
    info[_CONFIG_KEY] = _LiveConfig(plugin, settings.channels_backend == "postgres")
    db.sessionmaker.kw["info"] = info


def publish(tx: AsyncSession, channel: str, event: str, data: dict[str, Any]) -> None:
    """Queue an event on ``channel``, delivered after ``tx`` commits (see module doc)."""
    outbox: dict[tuple[str, str], dict[str, Any]] = tx.info.setdefault(_OUTBOX_KEY, {})
    outbox[(channel, event)] = data


_MAX_IDS = 200  # keeps a coalesced event well under PostgreSQL's 8000-byte notification cap


def publish_dispatch(tx: AsyncSession, event: str, item: dict[str, Any]) -> None:
    """Tell dispatcher consoles that ``item`` changed, after ``tx`` commits (see module doc)."""
    queued = tx.info.get(_OUTBOX_KEY, {}).get((DISPATCH_CHANNEL, event)) or {}
    ids = list(dict.fromkeys([*queued.get("ids", []), item["id"]]))[-_MAX_IDS:]
    publish(tx, DISPATCH_CHANNEL, event, {**item, "ids": ids})


def end_streams(tx: AsyncSession, user_id: int, token_id: int | None = None) -> None:
    """End the user's open SSE streams after ``tx`` commits (see module doc)."""
    queued = tx.info.get(_OUTBOX_KEY, {}).get((user_channel(user_id), SESSION_ENDED))
    if queued is not None and queued.get("token_id") != token_id:
        token_id = None  # two different ends in one transaction: end them all
    publish(tx, user_channel(user_id), SESSION_ENDED, {"token_id": token_id})


def _ends_session(raw: bytes | str, token_id: int | None) -> bool:
    try:
        message = json.loads(raw)
        if message.get("event") != SESSION_ENDED:
            return False
        ended = (message.get("data") or {}).get("token_id")
    except (ValueError, AttributeError):
        return False
    return ended is None or ended == token_id


def _encode(event: str, data: dict[str, Any]) -> str:
    return json.dumps({"event": event, "data": data}, separators=(",", ":"), default=str)


@sa_event.listens_for(Session, "before_commit")
def _notify_in_transaction(session: Session) -> None:
    outbox = session.info.get(_OUTBOX_KEY)
    if not outbox:
        return
    config = session.info.get(_CONFIG_KEY)
    bind = session.get_bind()
    if config is None and bind.dialect.name == "postgresql":
        postgres = True  # no app here (a job process): PostgreSQL still reaches the API processes
    else:
        postgres = bool(config and config.postgres)
    if not postgres:
        return
    session.info.pop(_OUTBOX_KEY, None)
    for (channel, event), data in outbox.items():
        session.execute(
            text("SELECT pg_notify(:channel, :payload)"),
            {"channel": channel, "payload": _encode(event, data)},
        )


@sa_event.listens_for(Session, "after_commit")
def _publish_after_commit(session: Session) -> None:
    outbox = session.info.pop(_OUTBOX_KEY, None)
    config = session.info.get(_CONFIG_KEY)
    if not outbox or config is None or config.postgres:
        return
    for (channel, event), data in outbox.items():
        try:
            config.plugin.publish(_encode(event, data).encode(), [channel])
        except Exception:  # pragma: no cover - the app is shutting down: hints are best effort
            log.warning("live event on %s dropped", channel, exc_info=True)


@sa_event.listens_for(Session, "after_transaction_end")
def _forget_on_rollback(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:
        session.info.pop(_OUTBOX_KEY, None)


async def event_stream(
    plugin: ChannelsPlugin,
    channels: Iterable[str],
    *,
    hello: dict[str, Any],
    heartbeat_s: float,
    max_s: float,
    coalesce_s: float = 0.0,
    session: tuple[int, int] | None = None,
) -> AsyncGenerator[ServerSentEventMessage, None]:
    """SSE messages for ``channels``: hello, then events, keepalives; ends after ``max_s``, when
    the process begins to shut down (:func:`close_streams`), or when ``session`` (user id, token
    id) ends (:func:`end_streams`).

    ``coalesce_s``: after an event, wait this long and send what arrived meanwhile as one
    message per event name (:func:`merge_events`). Clients refetch on each hint, so a storm
    of changes costs each browser at most a message per event name per window instead of one
    per change (500 dispatcher consoles × 1,000 pushes was 500,000 messages; docs/benchmarks.md).
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + max_s
    closing: asyncio.Event = getattr(plugin, "closing", None) or asyncio.Event()
    if closing.is_set():
        return
    names = list(channels)
    token_id = None
    if session is not None:
        names.append(user_channel(session[0]))
        token_id = session[1]
    async with plugin.start_subscription(names) as subscriber:
        queue: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=100)

        def put(raw: bytes | None) -> None:
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(raw)

        async def pump() -> None:
            async for raw in subscriber.iter_events():
                put(raw)

        async def close_on_shutdown() -> None:
            await closing.wait()
            put(None)  # the end-of-stream mark

        tasks = [asyncio.create_task(pump()), asyncio.create_task(close_on_shutdown())]
        try:
            yield ServerSentEventMessage(event="hello", data=json.dumps(hello))
            while (remaining := deadline - loop.time()) > 0:
                try:
                    raw = await asyncio.wait_for(queue.get(), min(heartbeat_s, remaining))
                except TimeoutError:
                    yield ServerSentEventMessage(comment="keepalive")
                    continue
                if raw is None:
                    break
                batch: list[bytes | None] = [raw]
                if coalesce_s > 0:
                    await asyncio.sleep(min(coalesce_s, max(0.0, deadline - loop.time())))
                    while not queue.empty():
                        batch.append(queue.get_nowait())  # None (the end) included
                ending = None in batch
                if session is not None and any(
                    raw is not None and _ends_session(raw, token_id) for raw in batch
                ):
                    break  # logged out, revoked: nothing more goes out, not even this batch
                for name, data in merge_events(raw for raw in batch if raw is not None).items():
                    if name != SESSION_ENDED:  # another token of the same user
                        yield ServerSentEventMessage(event=name, data=json.dumps(data))
                if ending:
                    break
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task


def merge_events(raws: Iterable[bytes | str]) -> dict[str, dict[str, Any]]:
    """Published events (JSON ``{"event", "data"}``) merged per event name, in order of first
    arrival: the latest ``data`` wins, ``ids`` lists are united (the newest 200 kept). Malformed
    messages are skipped."""
    merged: dict[str, dict[str, Any]] = {}
    for raw in raws:
        try:
            message = json.loads(raw)
            name, data = str(message["event"]), dict(message.get("data") or {})
        except (ValueError, KeyError, TypeError):
            continue
        earlier = merged.get(name)
        if earlier is not None and isinstance(earlier.get("ids"), list):
            ids = [*earlier["ids"], *(data.get("ids") or [])]
            data["ids"] = list(dict.fromkeys(ids))[-_MAX_IDS:]
        merged[name] = data
    return merged


def sse_response(
    plugin: ChannelsPlugin,
    channels: Iterable[str],
    *,
    hello: dict[str, Any],
    settings: Settings,
    session: tuple[int, int] | None = None,
) -> ServerSentEvent:
    return ServerSentEvent(
        event_stream(
            plugin,
            channels,
            hello=hello,
            heartbeat_s=settings.sync_sse_heartbeat_seconds,
            max_s=settings.sync_sse_max_seconds,
            coalesce_s=settings.live_coalesce_seconds,
            session=session,
        ),
        retry_duration=5000,
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
