"""Live updates for dispatcher consoles: a Server-Sent Events stream of the dispatch channel.

Events (``data`` is JSON), published after commit by server/events.py through
:func:`server.live.publish_dispatch`:

- ``hello`` ``{"channel": "dispatch"}`` on every (re)connect: fetch the lists now;
- ``work_order_changed`` ``{"id", "status", "version", "ids"}`` (``ids``: every work order changed
  in that transaction, e.g. a bulk assign);
- ``request_created`` ``{"id", "status", "ids"}``;
- ``conflict_recorded`` / ``conflict_resolved`` / ``evidence_changed`` / ``evidence_flagged``
  ``{"id", "ids"}`` (work-order ids; 0 when a conflict has no order): the inboxes changed;
- ``sla_escalated`` ``{"work_order_ids"}`` (server/jobs.py) and ``notice_acknowledged`` ``{"id"}``
  (a notice id, server/notify/notices.py).

Hints only (at most once): the console refetches its lists on each and still polls as a fallback.
"""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get
from litestar.response import ServerSentEvent

from server.accounts.auth import STREAM_TICKET, CurrentActor, dispatcher_guard
from server.errors import DomainError
from server.live import bus as live
from server.params import AppSettings, Channels


class LiveController(Controller):
    path = "/api/v1/live"
    guards = [dispatcher_guard]
    tags = ["live"]

    @get(
        "/events",
        operation_id="dispatchLiveEvents",
        summary="Server-Sent Events for dispatcher consoles (?ticket= accepted)",
        description="EventSource cannot send headers: pass a ticket from "
        "POST /api/v1/auth/stream-ticket as ?ticket= (single use, short-lived). The stream ends "
        "at once on sign-out.",
        opt={STREAM_TICKET: True},
    )
    async def events(
        self,
        request: Request[Any, Any, Any],
        actor: CurrentActor,
        channels: Channels,
        settings: AppSettings,
    ) -> ServerSentEvent:
        if "text/event-stream" not in (request.headers.get("accept") or ""):
            raise DomainError("event_stream_required", 406)
        return live.sse_response(
            channels,
            [live.DISPATCH_CHANNEL],
            hello={"channel": "dispatch"},
            settings=settings,
            session=(actor.user_id, actor.token_id),
        )
