"""Domain events, called inside the transaction that made the change.

Services call these after every change; each feature hooks its own line in (sync change feed,
citizen notifications, live updates). Side effects that are slow or external never run here:
handlers only write rows (an outbox, a change record) in the same transaction, so an event is
recorded if and only if the change commits.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession


async def work_order_changed(
    tx: AsyncSession, wo: Any, before: dict[str, Any], action: str, actor: Any
) -> None:
    """After a work order was created or changed (``before`` is {} on creation)."""


async def request_created(tx: AsyncSession, request: Any) -> None:
    """After a citizen's service request was recorded (any channel)."""


async def photo_attached(tx: AsyncSession, attachment: Any, work_order: Any) -> None:
    """After a crew attached a photo reference (a sync mutation) to a work order."""
