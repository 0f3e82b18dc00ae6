"""Citizen intake: create requests, find likely duplicates, list the dispatch queue."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from server import events
from server.accounts.auth import Actor
from server.audit import record
from server.city.service import borough_of
from server.errors import Conflict, Invalid, NotFound
from server.geo import bbox_around, haversine_m, in_bounds
from server.requests.events import RequestCreated
from server.requests.models import (
    ServiceRequest,
    ServiceRequestCreate,
    ServiceRequestCreated,
    ServiceRequestDetail,
    ServiceRequestPage,
    ServiceRequestPublic,
    ServiceType,
    ServiceTypeCreate,
)
from server.settings import Settings


async def service_type_by_code(tx: AsyncSession, code: str) -> ServiceType:
    found = (
        await tx.execute(select(ServiceType).where(col(ServiceType.code) == code))
    ).scalar_one_or_none()
    if found is None or not found.active:
        raise Invalid("service_type_unknown", code=code)
    return found


async def service_types_by_id(tx: AsyncSession, ids: set[int]) -> dict[int, ServiceType]:
    if not ids:
        return {}
    rows = (await tx.execute(select(ServiceType).where(col(ServiceType.id).in_(ids)))).scalars()
    return {st.id: st for st in rows if st.id is not None}


async def list_service_types(tx: AsyncSession) -> list[ServiceType]:
    return list((await tx.execute(select(ServiceType).order_by(col(ServiceType.code)))).scalars())


async def create_service_type(tx: AsyncSession, data: ServiceTypeCreate) -> ServiceType:
    if (
        await tx.execute(select(col(ServiceType.id)).where(col(ServiceType.code) == data.code))
    ).first():
        raise Conflict("duplicate_code", code=data.code)
    st = ServiceType.model_validate(data.model_dump())
    tx.add(st)
    await tx.flush()
    return st


async def create_request(
    tx: AsyncSession, data: ServiceRequestCreate, settings: Settings, actor: Any = None
) -> ServiceRequest:
    service_type = await service_type_by_code(tx, data.service_code)
    if not in_bounds(data.lat, data.lon, settings.bounds):
        raise Invalid("outside_jurisdiction")
    assert service_type.id is not None
    request = ServiceRequest(
        service_type_id=service_type.id,
        description=data.description.strip(),
        lat=data.lat,
        lon=data.lon,
        address=data.address.strip(),
        borough_code=await borough_of(tx, data.lat, data.lon),
        reporter_name=data.reporter_name,
        reporter_phone=data.reporter_phone,
        reporter_email=data.reporter_email,
        language=data.language,
        channel=data.channel,
        tracking_token=secrets.token_urlsafe(24),
    )
    tx.add(request)
    await tx.flush()
    assert request.id is not None
    await record(
        tx,
        entity_type="service_request",
        entity_id=request.id,
        action="created",
        actor=actor,
        changes={"channel": [None, data.channel], "service_code": [None, data.service_code]},
    )
    await events.emit(RequestCreated(tx, request))
    return request


async def get_request(tx: AsyncSession, request_id: int) -> ServiceRequest:
    found = await tx.get(ServiceRequest, request_id)
    if found is None:
        raise NotFound("service_request", request_id)
    return found


async def request_by_token(tx: AsyncSession, tracking_token: str) -> ServiceRequest:
    """The request a citizen's private tracking token names (404 says nothing about others)."""
    request = (
        await tx.execute(
            select(ServiceRequest).where(col(ServiceRequest.tracking_token) == tracking_token)
        )
    ).scalar_one_or_none()
    if request is None:
        raise NotFound("service_request", "?")
    return request


async def likely_duplicates(
    tx: AsyncSession, request: ServiceRequest, radius_m: float, limit: int = 10
) -> list[dict[str, Any]]:
    """Open requests of the same type within ``radius_m``, nearest first."""
    min_lat, min_lon, max_lat, max_lon = bbox_around(request.lat, request.lon, radius_m)
    rows = (
        await tx.execute(
            select(ServiceRequest).where(
                col(ServiceRequest.service_type_id) == request.service_type_id,
                col(ServiceRequest.status) != "closed",
                col(ServiceRequest.id) != request.id,
                col(ServiceRequest.lat).between(min_lat, max_lat),
                col(ServiceRequest.lon).between(min_lon, max_lon),
            )
        )
    ).scalars()
    found: list[tuple[float, dict[str, Any]]] = []
    for other in rows:
        distance = haversine_m(request.lat, request.lon, other.lat, other.lon)
        if distance <= radius_m:
            found.append(
                (
                    distance,
                    {
                        "request_id": other.id,
                        "work_order_id": other.work_order_id,
                        "distance_m": round(distance, 1),
                        "created_at": other.created_at.isoformat(),
                        "address": other.address,
                    },
                )
            )
    found.sort(key=lambda pair: pair[0])
    return [item for _, item in found[:limit]]


async def list_requests(
    tx: AsyncSession,
    *,
    status: Sequence[str] | None,
    unassigned: bool | None,
    service_code: str | None,
    borough: str | None,
    limit: int,
    offset: int,
) -> tuple[list[ServiceRequest], int]:
    query = select(ServiceRequest)
    if status:
        query = query.where(col(ServiceRequest.status).in_(status))
    if unassigned is True:
        query = query.where(col(ServiceRequest.work_order_id).is_(None))
    elif unassigned is False:
        query = query.where(col(ServiceRequest.work_order_id).is_not(None))
    if service_code:
        st = await service_type_by_code(tx, service_code)
        query = query.where(col(ServiceRequest.service_type_id) == st.id)
    if borough:
        query = query.where(col(ServiceRequest.borough_code) == borough)
    total = (await tx.execute(select(func.count()).select_from(query.subquery()))).scalar_one()
    rows = (
        await tx.execute(
            query.order_by(col(ServiceRequest.created_at), col(ServiceRequest.id))
            .limit(limit)
            .offset(offset)
        )
    ).scalars()
    return list(rows), int(total)


def to_public(request: ServiceRequest, service_type: ServiceType) -> ServiceRequestPublic:
    data = request.model_dump()
    data["service_code"] = service_type.code
    return ServiceRequestPublic.model_validate(data)


async def _public(tx: AsyncSession, request: ServiceRequest) -> ServiceRequestPublic:
    types = await service_types_by_id(tx, {request.service_type_id})
    return to_public(request, types[request.service_type_id])


async def request_page(
    tx: AsyncSession,
    *,
    status: Sequence[str] | None,
    unassigned: bool | None,
    service_code: str | None,
    borough: str | None,
    limit: int,
    offset: int,
) -> ServiceRequestPage:
    """The dispatch queue, one page, in the dispatcher's view."""
    rows, total = await list_requests(
        tx,
        status=status,
        unassigned=unassigned,
        service_code=service_code,
        borough=borough,
        limit=limit,
        offset=offset,
    )
    types = await service_types_by_id(tx, {r.service_type_id for r in rows})
    items = [to_public(r, types[r.service_type_id]) for r in rows]
    return ServiceRequestPage(items=items, total=total, limit=limit, offset=offset)


async def intake_by_agent(
    tx: AsyncSession, data: ServiceRequestCreate, settings: Settings, actor: Actor
) -> ServiceRequestCreated:
    """A 311 agent records a call: the request, its tracking token, likely duplicates."""
    request = await create_request(tx, data, settings, actor)
    duplicates = await likely_duplicates(tx, request, settings.duplicate_radius_m)
    public = await _public(tx, request)
    return ServiceRequestCreated(
        **public.model_dump(), tracking_token=request.tracking_token, duplicates=duplicates
    )


async def request_detail(
    tx: AsyncSession, request_id: int, radius_m: float
) -> ServiceRequestDetail:
    request = await get_request(tx, request_id)
    public = await _public(tx, request)
    duplicates = await likely_duplicates(tx, request, radius_m)
    return ServiceRequestDetail(**public.model_dump(), duplicates=duplicates)


async def duplicates_of(tx: AsyncSession, request_id: int, radius_m: float) -> list[dict[str, Any]]:
    return await likely_duplicates(tx, await get_request(tx, request_id), radius_m)
