"""Events the service-request domain emits (listeners are subscribed in server/wiring.py)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from server.events import Event
from server.requests.models import ServiceRequest


@dataclass(frozen=True)
class RequestCreated(Event):
    """A citizen's service request was recorded (any channel: web, Open311, phone)."""

    tx: AsyncSession
    request: ServiceRequest
