"""Events the accounts domain emits (listeners are subscribed in server/wiring.py)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from server.events import Event


@dataclass(frozen=True)
class SessionsEnded(Event):
    """A user's sessions ended: one token (``token_id``) signed out or revoked, or every session
    of the user (``token_id`` None: deactivated, password changed). Open streams must close."""

    tx: AsyncSession
    user_id: int
    token_id: int | None = None
