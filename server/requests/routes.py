"""Service types, dispatcher intake and queue, citizens' intake (their tracking view:
server/tracking/)."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, get, post
from litestar.params import FromQuery, JSONBody, Parameter
from sqlmodel import SQLModel

from server.accounts.auth import CurrentActor, admin_guard, dispatcher_guard, public_guard
from server.params import AppSettings, DbId, Tx
from server.ratelimit import Rule, by_address, rate_limit_guard
from server.requests import service
from server.requests.models import (
    CitizenRequestCreate,
    ServiceRequestCreate,
    ServiceRequestCreated,
    ServiceRequestDetail,
    ServiceRequestPage,
    ServiceTypeCreate,
    ServiceTypePublic,
)


class CitizenRequestCreated(SQLModel):
    tracking_token: str
    status: str


class ServiceTypeController(Controller):
    path = "/api/v1/service-types"
    tags = ["reference"]

    @get("/", operation_id="listServiceTypes", guards=[public_guard])
    async def list_service_types(self, tx: Tx) -> list[ServiceTypePublic]:
        rows = await service.list_service_types(tx)
        return [ServiceTypePublic.model_validate(st.model_dump()) for st in rows]

    @post("/", operation_id="createServiceType", guards=[admin_guard])
    async def create_service_type(
        self, tx: Tx, data: JSONBody[ServiceTypeCreate]
    ) -> ServiceTypePublic:
        st = await service.create_service_type(tx, data)
        return ServiceTypePublic.model_validate(st.model_dump())


class ServiceRequestController(Controller):
    path = "/api/v1/requests"
    guards = [dispatcher_guard]
    tags = ["requests"]

    @get("/", operation_id="listRequests", summary="The dispatch queue (oldest first)")
    async def list_requests(
        self,
        tx: Tx,
        status: Annotated[str | None, Parameter(description="Comma list")] = None,
        unassigned: FromQuery[bool | None] = None,
        service_code: FromQuery[str | None] = None,
        borough: FromQuery[str | None] = None,
        limit: Annotated[int, Parameter(ge=1, le=500)] = 50,
        offset: Annotated[int, Parameter(ge=0, le=1_000_000)] = 0,
    ) -> ServiceRequestPage:
        return await service.request_page(
            tx,
            status=[s.strip() for s in (status or "").split(",") if s.strip()],
            unassigned=unassigned,
            service_code=service_code,
            borough=borough,
            limit=limit,
            offset=offset,
        )

    @post("/", operation_id="createRequest", summary="Intake by a 311 agent (phone)")
    async def create_request(
        self,
        tx: Tx,
        actor: CurrentActor,
        settings: AppSettings,
        data: JSONBody[ServiceRequestCreate],
    ) -> ServiceRequestCreated:
        return await service.intake_by_agent(tx, data, settings, actor)

    @get("/{request_id:int}", operation_id="getRequest")
    async def get_request(
        self, tx: Tx, settings: AppSettings, request_id: DbId
    ) -> ServiceRequestDetail:
        return await service.request_detail(tx, request_id, settings.duplicate_radius_m)

    @get("/{request_id:int}/duplicates", operation_id="suggestDuplicates")
    async def duplicates(
        self, tx: Tx, settings: AppSettings, request_id: DbId
    ) -> list[dict[str, Any]]:
        """Open requests of the same type within the duplicate radius (50 m by default)."""
        return await service.duplicates_of(tx, request_id, settings.duplicate_radius_m)


class CitizenController(Controller):
    """Public intake for citizens (the PWA's citizen page; tracking: server/tracking/)."""

    path = "/api/v1/public/requests"
    tags = ["citizens"]
    guards = [public_guard]

    @post(
        "/",
        operation_id="submitCitizenRequest",
        guards=[rate_limit_guard(Rule("report", lambda s: s.rate_limit_reports, by_address))],
    )
    async def submit(
        self, tx: Tx, settings: AppSettings, data: JSONBody[CitizenRequestCreate]
    ) -> CitizenRequestCreated:
        data = data.model_copy(
            update={"channel": "web" if data.channel == "phone" else data.channel}
        )
        request = await service.create_request(tx, data, settings)
        return CitizenRequestCreated(tracking_token=request.tracking_token, status=request.status)
