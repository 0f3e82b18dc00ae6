"""Service types (the catalogue) and service requests (citizen intake)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Index
from sqlmodel import Field, SQLModel

from server.dbtypes import JSONList, UTCDateTime, matching, utcnow

CATEGORY_PATTERN = r"^(snow|waste|other)$"
CHANNEL_PATTERN = r"^(phone|web|app|open311)$"
CITIZEN_CHANNEL_PATTERN = r"^(phone|web|app)$"


class ServiceTypeBase(SQLModel):
    code: str = Field(min_length=2, max_length=60, schema_extra=matching(r"^[a-z0-9][a-z0-9-]*$"))
    name_fr: str = Field(min_length=1, max_length=120)
    name_en: str = Field(min_length=1, max_length=120)
    description_fr: str = Field(default="", max_length=1000)
    description_en: str = Field(default="", max_length=1000)
    category: str = Field(schema_extra=matching(CATEGORY_PATTERN), max_length=10)
    default_priority: int = Field(default=3, ge=1, le=4)
    sla_hours: int = Field(default=72, ge=1, le=24 * 90)
    evidence_required: list[str] = Field(default_factory=list, sa_type=JSONList)
    crew_kind: str | None = Field(
        default=None, schema_extra=matching(CATEGORY_PATTERN), max_length=10
    )


class ServiceType(ServiceTypeBase, table=True):
    __tablename__ = "service_type"

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=60, unique=True)
    active: bool = Field(default=True)


class ServiceTypeCreate(ServiceTypeBase):
    # SQLModel drops `regex` on optional fields: a Literal keeps the check.
    crew_kind: Literal["snow", "waste", "other"] | None = None


class ServiceTypePublic(ServiceTypeBase):
    id: int
    active: bool


class ServiceRequest(SQLModel, table=True):
    __tablename__ = "service_request"
    __table_args__ = (
        Index("ix_request_type_status", "service_type_id", "status"),
        Index("ix_request_created", "created_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    service_type_id: int = Field(foreign_key="service_type.id")
    description: str = Field(default="", max_length=4000)
    lat: float
    lon: float
    address: str = Field(default="", max_length=300)
    borough_code: str | None = Field(default=None, foreign_key="borough.code")
    reporter_name: str | None = Field(default=None, max_length=120)
    reporter_phone: str | None = Field(default=None, max_length=40)
    reporter_email: str | None = Field(default=None, max_length=200)
    language: str = Field(default="fr", max_length=2)
    channel: str = Field(max_length=10)
    # received -> scheduled (linked to an open work order) -> closed
    status: str = Field(default="received", max_length=12)
    tracking_token: str = Field(max_length=64, unique=True)
    # a picture URL the reporter's client sent (Open311 media_url): http(s), never fetched
    media_url: str | None = Field(default=None, max_length=500)
    work_order_id: int | None = Field(default=None, foreign_key="work_order.id", index=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    closed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class ServiceRequestCreate(SQLModel):
    service_code: str = Field(min_length=1, max_length=60)
    description: str = Field(default="", max_length=4000)
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    address: str = Field(default="", max_length=300)
    reporter_name: str | None = Field(default=None, max_length=120)
    reporter_phone: str | None = Field(default=None, max_length=40)
    reporter_email: str | None = Field(default=None, max_length=200)
    language: str = Field(default="fr", schema_extra=matching(r"^(fr|en)$"))
    channel: str = Field(default="phone", schema_extra=matching(CHANNEL_PATTERN))


class CitizenRequestCreate(ServiceRequestCreate):
    """What a citizen's app may send: never ``open311`` (that channel is the Open311 API's)."""

    channel: str = Field(default="web", schema_extra=matching(CITIZEN_CHANNEL_PATTERN))


class ServiceRequestPublic(SQLModel):
    """Dispatcher view: includes the reporter's contact."""

    id: int
    service_code: str
    description: str
    lat: float
    lon: float
    address: str
    borough_code: str | None
    reporter_name: str | None
    reporter_phone: str | None
    reporter_email: str | None
    language: str
    channel: str
    status: str
    media_url: str | None = None
    work_order_id: int | None
    created_at: datetime
    updated_at: datetime


class ServiceRequestCreated(ServiceRequestPublic):
    tracking_token: str
    duplicates: list[dict[str, Any]] = []


class RequestForCrew(SQLModel):
    """What a crew member sees of a linked request: no reporter contact."""

    id: int
    description: str
    address: str
    created_at: datetime
    channel: str


class ServiceRequestPage(SQLModel):
    items: list[ServiceRequestPublic]
    total: int
    limit: int
    offset: int


class ServiceRequestDetail(ServiceRequestPublic):
    duplicates: list[dict[str, Any]]
