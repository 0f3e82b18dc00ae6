"""Dispatcher and crew HTTP routes for work orders."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, Response, get, post
from litestar.params import FromQuery, JSONBody, Parameter

from server.accounts.auth import CurrentActor, crew_guard, dispatcher_guard
from server.errors import Invalid
from server.params import DbId, QueryDbId, Tx
from server.workorders import notes, queries, service
from server.workorders.models import (
    AssignBody,
    BulkAssignBody,
    BulkResult,
    CancelBody,
    MergeBody,
    NoteCreate,
    NotePublic,
    PriorityBody,
    TransitionBody,
    WorkOrder,
    WorkOrderCreate,
    WorkOrderDetail,
    WorkOrderForCrew,
    WorkOrderPage,
    WorkOrderPublic,
)

Limit = Annotated[int, Parameter(ge=1, le=500, description="Page size (1–500).")]
Offset = Annotated[int, Parameter(ge=0, le=1_000_000)]


def _csv(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


def _bbox(value: str | None) -> tuple[float, float, float, float] | None:
    if not value:
        return None
    try:
        parts = [float(p) for p in value.split(",")]
    except ValueError as exc:
        raise Invalid("bbox_invalid") from exc
    if len(parts) != 4 or parts[0] > parts[2] or parts[1] > parts[3]:
        raise Invalid("bbox_invalid")
    return (parts[0], parts[1], parts[2], parts[3])


async def _one(tx: Tx, wo: WorkOrder) -> WorkOrderPublic:
    (public,) = await queries.to_public_many(tx, [wo])
    return public


async def _transition(
    tx: Tx, actor: CurrentActor, work_order_id: int, data: JSONBody[TransitionBody]
) -> WorkOrderPublic:
    """The same action for a dispatcher and for a crew (crew visibility is checked in service)."""
    wo = await service.transition(
        tx,
        work_order_id,
        data.action,
        actor,
        outcome_name=data.outcome,
        note=data.note,
        reason=data.reason,
        expected_version=data.expected_version,
    )
    return await _one(tx, wo)


class WorkOrderController(Controller):
    path = "/api/v1/work-orders"
    guards = [dispatcher_guard]
    tags = ["work orders"]

    @get("/", operation_id="listWorkOrders", summary="List and filter work orders by SLA due time")
    async def list_work_orders(
        self,
        tx: Tx,
        status: Annotated[str | None, Parameter(description="Comma list of statuses")] = None,
        service_code: FromQuery[str | None] = None,
        crew_id: QueryDbId = None,
        borough: FromQuery[str | None] = None,
        bbox: Annotated[
            str | None, Parameter(description="min_lon,min_lat,max_lon,max_lat")
        ] = None,
        overdue: FromQuery[bool | None] = None,
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> WorkOrderPage:
        filters = queries.WorkOrderFilters(
            status=_csv(status),
            service_code=service_code,
            crew_id=crew_id,
            borough=borough,
            bbox=_bbox(bbox),
            overdue=overdue,
            limit=limit,
            offset=offset,
        )
        return await queries.page(tx, filters)

    @post(
        "/", operation_id="createWorkOrder", summary="Create a work order from requests or planned"
    )
    async def create_work_order(
        self, tx: Tx, actor: CurrentActor, data: JSONBody[WorkOrderCreate]
    ) -> WorkOrderPublic:
        wo = await service.create_work_order(tx, data, actor)
        return await _one(tx, wo)

    @get("/{work_order_id:int}", operation_id="getWorkOrder")
    async def get_work_order(
        self, tx: Tx, actor: CurrentActor, work_order_id: DbId
    ) -> WorkOrderDetail:
        return await queries.dispatcher_detail(tx, work_order_id, actor)

    @post("/{work_order_id:int}/assign", operation_id="assignWorkOrder", status_code=200)
    async def assign(
        self, tx: Tx, actor: CurrentActor, work_order_id: DbId, data: JSONBody[AssignBody]
    ) -> WorkOrderPublic:
        wo = await service.assign(tx, work_order_id, data.crew_id, actor, data.expected_version)
        return await _one(tx, wo)

    @post("/bulk-assign", operation_id="bulkAssignWorkOrders", status_code=200)
    async def bulk_assign(
        self, tx: Tx, actor: CurrentActor, data: JSONBody[BulkAssignBody]
    ) -> BulkResult:
        orders = []
        for work_order_id in dict.fromkeys(data.work_order_ids):
            orders.append(await service.assign(tx, work_order_id, data.crew_id, actor))
        items = await queries.to_public_many(tx, orders)
        return BulkResult(updated=[wo.id for wo in items], items=items)

    @post("/{work_order_id:int}/priority", operation_id="reprioritiseWorkOrder", status_code=200)
    async def reprioritise(
        self, tx: Tx, actor: CurrentActor, work_order_id: DbId, data: JSONBody[PriorityBody]
    ) -> WorkOrderPublic:
        wo = await service.set_priority(
            tx, work_order_id, data.priority, actor, data.expected_version
        )
        return await _one(tx, wo)

    @post("/{work_order_id:int}/cancel", operation_id="cancelWorkOrder", status_code=200)
    async def cancel(
        self, tx: Tx, actor: CurrentActor, work_order_id: DbId, data: JSONBody[CancelBody]
    ) -> WorkOrderPublic:
        wo = await service.cancel(tx, work_order_id, data.reason, actor, data.expected_version)
        return await _one(tx, wo)

    @post("/{work_order_id:int}/transition", operation_id="transitionWorkOrder", status_code=200)
    async def transition(
        self, tx: Tx, actor: CurrentActor, work_order_id: DbId, data: JSONBody[TransitionBody]
    ) -> WorkOrderPublic:
        return await _transition(tx, actor, work_order_id, data)

    @post(
        "/{work_order_id:int}/notes",
        operation_id="addWorkOrderNote",
        summary="A dispatcher's note to the crew (reaches the phones with their next pull)",
        status_code=201,
    )
    async def add_note(
        self, tx: Tx, actor: CurrentActor, work_order_id: DbId, data: JSONBody[NoteCreate]
    ) -> Response[NotePublic]:
        """Idempotent with ``note_id``: 201 when added, 200 when that note was already there."""
        note, created = await notes.add_office_note(tx, work_order_id, data, actor)
        return Response(note, status_code=201 if created else 200)

    @post("/{work_order_id:int}/merge", operation_id="mergeRequestsIntoWorkOrder", status_code=200)
    async def merge(
        self, tx: Tx, actor: CurrentActor, work_order_id: DbId, data: JSONBody[MergeBody]
    ) -> WorkOrderDetail:
        wo = await service.merge_requests(tx, work_order_id, data.request_ids, actor)
        result = await queries.detail(tx, wo, actor)
        assert isinstance(result, WorkOrderDetail)
        return result


class CrewWorkController(Controller):
    """What a crew phone sees: its own crew's work orders only, no reporter contact."""

    path = "/api/v1/crew/work-orders"
    guards = [crew_guard]
    tags = ["crew"]

    @get("/", operation_id="listMyWorkOrders")
    async def list_mine(
        self,
        tx: Tx,
        actor: CurrentActor,
        status: Annotated[str | None, Parameter(description="Comma list of statuses")] = None,
        limit: Limit = 200,
        offset: Offset = 0,
    ) -> WorkOrderPage:
        filters = queries.WorkOrderFilters(
            status=_csv(status) or service.OPEN,
            crew_id=actor.crew_id if actor.crew_id is not None else -1,
            limit=limit,
            offset=offset,
        )
        return await queries.page(tx, filters, crew_order=True)

    @get("/{work_order_id:int}", operation_id="getMyWorkOrder")
    async def get_mine(self, tx: Tx, actor: CurrentActor, work_order_id: DbId) -> WorkOrderForCrew:
        return await queries.crew_detail(tx, work_order_id, actor)

    @post("/{work_order_id:int}/transition", operation_id="transitionMyWorkOrder", status_code=200)
    async def transition_mine(
        self, tx: Tx, actor: CurrentActor, work_order_id: DbId, data: JSONBody[TransitionBody]
    ) -> WorkOrderPublic:
        return await _transition(tx, actor, work_order_id, data)
