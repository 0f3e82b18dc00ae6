"""Events about photo evidence (listeners are subscribed in server/wiring.py)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from server.events import Event
from server.photos.models import WorkOrderPhoto
from server.workorders.models import WorkOrder


@dataclass(frozen=True)
class PhotoAttached(Event):
    """A crew attached a photo reference (a sync mutation) to a work order."""

    tx: AsyncSession
    attachment: WorkOrderPhoto
    work_order: WorkOrder
