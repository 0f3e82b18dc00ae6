"""Offline sync routes: the device protocol (/sync/v1) and the dispatcher's conflict desk."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.params import JSONBody, Parameter
from litestar.response import ServerSentEvent

from server.accounts.auth import STREAM_TICKET, CurrentActor, device_guard, dispatcher_guard
from server.errors import DomainError, Forbidden
from server.jsonbody import ALLOW_NUL
from server.live import bus as live
from server.params import AppSettings, Channels, DbId, QueryDbId, Tx
from server.syncapi import service
from server.syncapi.models import (
    CLIENT_ID,
    ConflictPage,
    ConflictPublic,
    MutationLogEntry,
    PullRequest,
    PullResponse,
    PushRequest,
    PushResponse,
    ResolveBody,
)

Limit = Annotated[int, Parameter(ge=1, le=500)]
Offset = Annotated[int, Parameter(ge=0, le=1_000_000)]


class SyncController(Controller):
    """What crew phones call: push, pull, and a stream of hints to pull."""

    path = "/sync/v1"
    guards = [device_guard]
    tags = ["sync"]

    @post(
        "/push",
        operation_id="syncPush",
        status_code=200,
        summary="Apply a batch of mutations",
        opt={ALLOW_NUL: True},  # a NUL in a mutation rejects that mutation alone (push.py)
    )
    async def push(self, tx: Tx, actor: CurrentActor, data: JSONBody[PushRequest]) -> PushResponse:
        return await service.push(tx, actor, data)

    @post("/pull", operation_id="syncPull", status_code=200, summary="Changes of the scope")
    async def pull(
        self, tx: Tx, actor: CurrentActor, settings: AppSettings, data: JSONBody[PullRequest]
    ) -> PullResponse:
        return await service.pull(tx, actor, data, settings)

    @get(
        "/events",
        operation_id="syncEvents",
        summary="Server-Sent Events telling the phone to pull now (?ticket= accepted)",
        description="EventSource cannot send headers: pass a ticket from "
        "POST /api/v1/auth/stream-ticket as ?ticket= (single use, short-lived). The stream ends "
        "at once when the device is revoked or signs out.",
        opt={STREAM_TICKET: True},
    )
    async def events(
        self,
        request: Request[Any, Any, Any],
        actor: CurrentActor,
        channels: Channels,
        settings: AppSettings,
    ) -> ServerSentEvent:
        if actor.device_id is None or actor.crew_id is None:
            raise Forbidden("device_required")
        if "text/event-stream" not in (request.headers.get("accept") or ""):
            raise DomainError("event_stream_required", 406)
        return live.sse_response(
            channels,
            [live.crew_channel(actor.crew_id)],
            hello={"crew_id": actor.crew_id},
            settings=settings,
            session=(actor.user_id, actor.token_id),
        )


class SyncDeskController(Controller):
    """Dispatchers: conflicts raised by offline edits, device mutation logs, sync values."""

    path = "/api/v1/sync"
    guards = [dispatcher_guard]
    tags = ["sync"]

    @get("/conflicts", operation_id="listSyncConflicts")
    async def list_conflicts(
        self,
        tx: Tx,
        status: Annotated[str | None, Parameter(pattern="^(open|resolved)$")] = None,
        kind: Annotated[str | None, Parameter(max_length=30)] = None,
        crew_id: QueryDbId = None,
        work_order_id: QueryDbId = None,
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> ConflictPage:
        rows, total = await service.list_conflicts(
            tx,
            service.ConflictFilters(status, kind, crew_id, work_order_id, limit, offset),
        )
        items = [ConflictPublic.model_validate(c.model_dump()) for c in rows]
        return ConflictPage(items=items, total=total, limit=limit, offset=offset)

    @get("/conflicts/{conflict_id:int}", operation_id="getSyncConflict")
    async def get_conflict(self, tx: Tx, conflict_id: DbId) -> ConflictPublic:
        conflict = await service.load_conflict(tx, conflict_id)
        return ConflictPublic.model_validate(conflict.model_dump())

    @post(
        "/conflicts/{conflict_id:int}/resolve", operation_id="resolveSyncConflict", status_code=200
    )
    async def resolve(
        self, tx: Tx, actor: CurrentActor, conflict_id: DbId, data: JSONBody[ResolveBody]
    ) -> ConflictPublic:
        conflict = await service.resolve_conflict(
            tx, conflict_id, data.resolution, data.note, actor
        )
        return ConflictPublic.model_validate(conflict.model_dump())

    @get("/mutations", operation_id="listSyncMutations")
    async def mutations(
        self,
        tx: Tx,
        client_id: Annotated[str, Parameter(pattern=CLIENT_ID, max_length=64)],
        after: Annotated[int, Parameter(ge=0, le=2**53)] = 0,
        limit: Annotated[int, Parameter(ge=1, le=1000)] = 500,
    ) -> list[MutationLogEntry]:
        rows = await service.mutation_log(tx, client_id, after, limit)
        return [MutationLogEntry.model_validate(r.model_dump()) for r in rows]

    @get("/work-orders/{work_order_id:int}", operation_id="getSyncWorkOrderValue")
    async def work_order_value(self, tx: Tx, work_order_id: DbId) -> dict[str, Any]:
        return await service.work_order_value(tx, work_order_id)
