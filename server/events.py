"""Domain events: a typed registry of listeners, called inside the transaction that made a change.

A service that changes something emits an event (a frozen dataclass declared by the domain that
owns the change, e.g. :class:`server.workorders.events.WorkOrderChanged`); the listeners run in
the order they were subscribed, in the same transaction. Who listens to what is decided in one
place, :mod:`server.wiring` (called by ``create_app`` and by the scheduler): read it to see the
whole fan-out after a change. This module imports no feature (docs/adr/0090).

Side effects that are slow or external never run in a listener: listeners only write rows (an
outbox, a change record) or queue after-commit messages in the same transaction, so an event is
recorded if and only if the change commits.

Emitting before :func:`server.wiring.wire` ran raises :class:`NotWiredError` rather than skipping
the listeners silently (a change without its sync stamp or its citizen notifications would be a
lost edit for a phone).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession


class Event:
    """Base class of every event; subclasses are frozen dataclasses with a ``tx`` field."""

    tx: AsyncSession


E = TypeVar("E", bound=Event)
Listener = Callable[[E], Awaitable[None]]

_listeners: dict[type[Event], list[Callable[[Any], Awaitable[None]]]] = {}
_wired = False


class NotWiredError(RuntimeError):
    """An event was emitted before the listeners were subscribed (server.wiring.wire)."""


def listen(event_type: type[E], listener: Listener[E]) -> None:
    """Subscribe ``listener`` to ``event_type`` (in order: earlier subscriptions run first)."""
    _listeners.setdefault(event_type, []).append(listener)


def mark_wired() -> None:
    """Called once by :func:`server.wiring.wire` after every subscription."""
    global _wired
    _wired = True


def is_wired() -> bool:
    return _wired


def listeners_of(event_type: type[Event]) -> list[Callable[[Any], Awaitable[None]]]:
    """The subscribed listeners, in call order (for tests and for reading the fan-out)."""
    return list(_listeners.get(event_type, ()))


async def emit(event: Event) -> None:
    """Call every listener of ``type(event)`` in subscription order, in the caller's transaction."""
    if not _wired:
        raise NotWiredError(f"{type(event).__name__} emitted before server.wiring.wire()")
    for listener in _listeners.get(type(event), ()):
        await listener(event)


@dataclass(frozen=True)
class DeskItemChanged(Event):
    """A change the dispatch desk shows outside the work-order lists: a sync conflict recorded
    (``conflict_recorded``) or resolved (``conflict_resolved``), photo evidence flagged
    (``evidence_flagged``) or changed (``evidence_changed``). Consoles refresh after commit."""

    tx: AsyncSession
    event: str
    work_order_id: int | None
