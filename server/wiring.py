"""Who listens to what: the whole fan-out after a change, in one place (docs/adr/0090).

Services emit typed events (:mod:`server.events`); this module subscribes each domain's reaction,
in the order it runs inside the writing transaction. ``create_app`` and the scheduler call
:func:`wire` before serving; any other process that changes data through the services
(``tournee demo``, tests) calls it too. Domains never import each other upward for a reaction:
they emit, and the listener is written here.

After a work order changes (:class:`WorkOrderChanged`):
1. sync change feed: stamp, per-field versions, crew exit, pull hints to the crew's phones;
2. citizen notifications: outbox rows for the subscribers of every linked request;
3. photo evidence: completion opens the evidence check, reopening drops it;
4. dispatch consoles: a live ``work_order_changed`` message after commit.
After an office note (:class:`WorkOrderContentChanged`): the sync feed re-stamps the order.
After a request is recorded (:class:`RequestCreated`): consoles get ``request_created``.
After a photo is attached (:class:`PhotoAttached`): change feed (the pull embeds photos), the
photo's flags and the order's evidence, consoles get ``evidence_changed``.
A desk item changed (:class:`DeskItemChanged`: conflicts, evidence flags): consoles are told.
Sessions ended (:class:`SessionsEnded`: sign-out, revocation, deactivation): open streams close.
"""

from __future__ import annotations

from server import events
from server.accounts.events import SessionsEnded
from server.events import DeskItemChanged
from server.live import bus as live
from server.notify import service as notify
from server.photos import evidence as photos
from server.photos.events import PhotoAttached
from server.requests.events import RequestCreated
from server.syncapi import feed
from server.workorders.events import WorkOrderChanged, WorkOrderContentChanged


async def _sync_feed(event: WorkOrderChanged) -> None:
    await feed.on_work_order_changed(
        event.tx, event.work_order, event.before, event.action, event.actor
    )


async def _notify_citizens(event: WorkOrderChanged) -> None:
    await notify.work_order_changed(event.tx, event.work_order, event.before, event.linked_requests)


async def _photo_evidence(event: WorkOrderChanged) -> None:
    await photos.on_work_order_changed(
        event.tx, event.work_order, event.before, event.action, event.actor
    )


async def _console_work_order(event: WorkOrderChanged) -> None:
    wo = event.work_order
    live.publish_dispatch(
        event.tx, "work_order_changed", {"id": wo.id, "status": wo.status, "version": wo.version}
    )


async def _sync_feed_content(event: WorkOrderContentChanged) -> None:
    await feed.touch(event.tx, event.work_order)


async def _console_request(event: RequestCreated) -> None:
    request = event.request
    live.publish_dispatch(event.tx, "request_created", {"id": request.id, "status": request.status})


async def _photo_feed(event: PhotoAttached) -> None:
    await feed.touch(event.tx, event.work_order)


async def _photo_flags(event: PhotoAttached) -> None:
    await photos.on_photo_attached(event.tx, event.attachment, event.work_order)


async def _console_evidence(event: PhotoAttached) -> None:
    live.publish_dispatch(event.tx, "evidence_changed", {"id": event.work_order.id or 0})


async def _console_desk(event: DeskItemChanged) -> None:
    live.publish_dispatch(event.tx, event.event, {"id": event.work_order_id or 0})


async def _end_streams(event: SessionsEnded) -> None:
    live.end_streams(event.tx, event.user_id, event.token_id)


def wire() -> None:
    """Subscribe every listener once per process (later calls do nothing)."""
    if events.is_wired():
        return
    events.listen(WorkOrderChanged, _sync_feed)
    events.listen(WorkOrderChanged, _notify_citizens)
    events.listen(WorkOrderChanged, _photo_evidence)
    events.listen(WorkOrderChanged, _console_work_order)
    events.listen(WorkOrderContentChanged, _sync_feed_content)
    events.listen(RequestCreated, _console_request)
    events.listen(PhotoAttached, _photo_feed)
    events.listen(PhotoAttached, _photo_flags)
    events.listen(PhotoAttached, _console_evidence)
    events.listen(DeskItemChanged, _console_desk)
    events.listen(SessionsEnded, _end_streams)
    events.mark_wired()
