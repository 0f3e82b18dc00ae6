"""What the citizen holding a tracking token sees: no contact data, no crew names."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import SQLModel

from server.photos.models import PhotoUrls
from server.photos.service import public_completion_photo
from server.requests.models import ServiceType
from server.requests.service import request_by_token
from server.settings import Settings
from server.workorders.models import WorkOrder


class CitizenRequestStatus(SQLModel):
    """What the citizen holding the tracking token sees: no contact data, no crew names."""

    service_code: str
    service_name_fr: str
    service_name_en: str
    status: str
    work_order_status: str | None
    outcome: str | None
    address: str
    created_at: datetime
    updated_at: datetime
    completion_photo: PhotoUrls | None = None  # public copies only, once they are made


async def track(tx: AsyncSession, settings: Settings, tracking_token: str) -> CitizenRequestStatus:
    """The request behind ``tracking_token`` (404 for an unknown token, which says nothing)."""
    request = await request_by_token(tx, tracking_token)
    st = await tx.get(ServiceType, request.service_type_id)
    assert st is not None
    wo = await tx.get(WorkOrder, request.work_order_id) if request.work_order_id else None
    return CitizenRequestStatus(
        service_code=st.code,
        service_name_fr=st.name_fr,
        service_name_en=st.name_en,
        status=request.status,
        work_order_status=wo.status if wo else None,
        outcome=wo.outcome if wo else None,
        address=request.address,
        created_at=request.created_at,
        updated_at=request.updated_at,
        completion_photo=(
            await public_completion_photo(tx, settings, wo.id) if wo and wo.id else None
        ),
    )
