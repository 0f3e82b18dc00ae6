"""Domain events, called inside the transaction that made the change.

Services call these after every change; each feature hooks its own line in (sync change feed,
citizen notifications, live updates). Side effects that are slow or external never run here:
handlers only write rows (an outbox, a change record) in the same transaction, so an event is
recorded if and only if the change commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession


async def work_order_changed(
    tx: AsyncSession,
    wo: Any,
    before: dict[str, Any],
    action: str,
    actor: Any,
    *,
    linked_requests: Sequence[Any] | None = None,
) -> None:
    """After a work order was created or changed (``before`` is {} on creation).

    ``linked_requests``: the order's service requests when the caller loaded them (None: unknown;
    hooks query what they need)."""
    from server.syncapi import feed

    await feed.on_work_order_changed(tx, wo, before, action, actor)  # sync change feed, hints
    from server.notify.service import work_order_changed as notify_citizens

    await notify_citizens(tx, wo, before, linked_requests)  # outbox rows for subscribed citizens
    from server.photos.service import on_work_order_changed as check_photo_evidence

    await check_photo_evidence(tx, wo, before, action, actor)  # evidence flags on completion
    from server import live

    live.publish_dispatch(  # dispatcher consoles refresh (after commit)
        tx, "work_order_changed", {"id": wo.id, "status": wo.status, "version": wo.version}
    )


async def request_created(tx: AsyncSession, request: Any) -> None:
    """After a citizen's service request was recorded (any channel)."""
    from server import live

    live.publish_dispatch(tx, "request_created", {"id": request.id, "status": request.status})


async def photo_attached(tx: AsyncSession, attachment: Any, work_order: Any) -> None:
    """After a crew attached a photo reference (a sync mutation) to a work order."""
    from server.syncapi import feed

    await feed.touch(tx, work_order)  # sync change feed, hints
    from server.photos.service import on_photo_attached as evaluate_photo

    await evaluate_photo(tx, attachment, work_order)  # distance from the site, flags
    desk_item_changed(tx, "evidence_changed", work_order.id)


def desk_item_changed(tx: AsyncSession, event: str, work_order_id: int | None) -> None:
    """After a change the dispatch desk shows outside the work-order lists: a sync conflict
    recorded (``conflict_recorded``) or resolved (``conflict_resolved``), photo evidence flagged
    (``evidence_flagged``). Consoles refresh their inbox after commit."""
    from server import live

    live.publish_dispatch(tx, event, {"id": work_order_id or 0})
