"""Events the work-order domain emits (listeners are subscribed in server/wiring.py)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from server.accounts.auth import Actor
from server.events import Event
from server.requests.models import ServiceRequest
from server.workorders.models import WorkOrder


@dataclass(frozen=True)
class WorkOrderChanged(Event):
    """A work order was created (``before`` is {}) or changed (``before``: the tracked fields'
    values before the change). ``linked_requests``: the order's service requests when the caller
    loaded them (None: unknown, listeners query what they need)."""

    tx: AsyncSession
    work_order: WorkOrder
    before: dict[str, Any]
    action: str
    actor: Actor | None
    linked_requests: Sequence[ServiceRequest] | None = None


@dataclass(frozen=True)
class WorkOrderContentChanged(Event):
    """Something a phone's copy of the order embeds changed without a new version (an office
    note): the sync feed re-stamps the order so the crew's next pull brings it."""

    tx: AsyncSession
    work_order: WorkOrder
