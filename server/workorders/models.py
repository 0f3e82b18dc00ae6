"""Work orders, their notes (crews' and the office's) and their material ledger.

``work_order_note`` / ``material_entry``: UUID-keyed append-only sets made on devices (or by
dispatchers for notes); they reach the phones with the order's next pull."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from sqlalchemy import BigInteger, Index, text
from sqlmodel import Field, SQLModel

from server.audit import AuditEventPublic
from server.dbtypes import MAX_ID, JSONDict, UTCDateTime, utcnow
from server.requests.models import RequestForCrew, ServiceRequestPublic


class WorkOrderNote(SQLModel, table=True):
    __tablename__ = "work_order_note"
    __table_args__ = (Index("ix_wo_note_wo", "work_order_id"),)

    id: str = Field(primary_key=True, max_length=36)  # UUID made on the device
    work_order_id: int = Field(foreign_key="work_order.id")
    body: str = Field(max_length=2000)
    user_id: int | None = Field(default=None, foreign_key="user_account.id")
    author: str = Field(default="", max_length=60)
    device_id: int | None = Field(default=None, foreign_key="access_token.id")
    crew_id: int | None = Field(default=None, foreign_key="crew.id")
    client_ts: str | None = Field(default=None, max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class MaterialEntry(SQLModel, table=True):
    """One line of a work order's material ledger; a correction is a void entry (``voids_id``)."""

    __tablename__ = "material_entry"
    __table_args__ = (
        Index("ix_material_wo", "work_order_id"),
        Index("ux_material_voids", "voids_id", unique=True),
    )

    id: str = Field(primary_key=True, max_length=36)  # UUID made on the device
    work_order_id: int = Field(foreign_key="work_order.id")
    material_code: str = Field(max_length=60)
    quantity: float
    unit: str = Field(max_length=20)
    voids_id: str | None = Field(default=None, max_length=36)
    reason: str | None = Field(default=None, max_length=500)
    user_id: int | None = Field(default=None, foreign_key="user_account.id")
    device_id: int | None = Field(default=None, foreign_key="access_token.id")
    crew_id: int | None = Field(default=None, foreign_key="crew.id")
    client_ts: str | None = Field(default=None, max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class NoteCreate(SQLModel):
    """A dispatcher's note to the crew (it reaches the phones with the order's next pull)."""

    body: str = Field(min_length=1, max_length=2000)
    # optional: a retried POST with the same id adds nothing (made by the console)
    note_id: uuid.UUID | None = None


class NotePublic(SQLModel):
    id: str
    work_order_id: int
    body: str
    author: str
    from_office: bool  # written by a dispatcher (no crew, no device)
    created_at: datetime


class WorkOrder(SQLModel, table=True):
    __tablename__ = "work_order"
    __table_args__ = (
        Index("ix_wo_status_due", "status", "due_at"),
        Index("ix_wo_crew_status", "crew_id", "status"),
        Index("ix_wo_location", "lat", "lon"),
        # offline sync: incremental pull by crew scope, tail ageing (server/syncapi)
        Index("ix_wo_crew_change", "crew_id", "change_seq"),
        Index("ix_wo_crew_closed", "crew_id", "closed_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    service_type_id: int = Field(foreign_key="service_type.id", index=True)
    title: str = Field(default="", max_length=200)
    description: str = Field(default="", max_length=4000)
    lat: float
    lon: float
    address: str = Field(default="", max_length=300)
    borough_code: str | None = Field(default=None, foreign_key="borough.code", index=True)
    priority: int = Field(default=3)
    status: str = Field(default="new", max_length=12)
    outcome: str | None = Field(default=None, max_length=40)
    outcome_note: str | None = Field(default=None, max_length=2000)
    crew_id: int | None = Field(default=None, foreign_key="crew.id")
    due_at: datetime = Field(sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    assigned_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    completed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    cancelled_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    cancel_reason: str | None = Field(default=None, max_length=500)
    planned: bool = Field(default=False)
    version: int = Field(default=1)
    # set once by the SLA job when the order went overdue (server/jobs.py)
    escalated_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # offline sync (server/syncapi/feed.py keeps these): change stamp, per-field versions,
    # when it closed (completed or cancelled), crew completion facts kept while not completed
    change_seq: int = Field(
        default=0, sa_type=BigInteger, sa_column_kwargs={"server_default": text("0")}
    )
    field_versions: dict[str, Any] = Field(
        default_factory=dict, sa_type=JSONDict, sa_column_kwargs={"server_default": text("'{}'")}
    )
    closed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    work_performed: bool = Field(default=False, sa_column_kwargs={"server_default": text("false")})


class WorkOrderPublic(SQLModel):
    id: int
    service_code: str
    service_name: str
    category: str
    title: str
    description: str
    lat: float
    lon: float
    address: str
    borough_code: str | None
    priority: int
    status: str
    outcome: str | None
    outcome_note: str | None
    crew_id: int | None
    due_at: datetime
    overdue: bool
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None
    cancelled_at: datetime | None
    cancel_reason: str | None
    planned: bool
    request_count: int
    version: int
    escalated_at: datetime | None = None
    work_performed: bool = False  # crew completion facts kept on a cancelled order (sync)


class WorkOrderDetail(WorkOrderPublic):
    requests: list[ServiceRequestPublic]
    history: list[AuditEventPublic]
    notes: list[NotePublic] = Field(default_factory=list)  # crews' and the office's, oldest first


class WorkOrderForCrew(WorkOrderPublic):
    requests: list[RequestForCrew]
    history: list[AuditEventPublic]


class WorkOrderPage(SQLModel):
    items: list[WorkOrderPublic]
    total: int
    limit: int
    offset: int


class WorkOrderCreate(SQLModel):
    """From one or more requests (their location is used) or planned work with a location."""

    request_ids: list[Annotated[int, Field(ge=1, le=MAX_ID)]] = Field(
        default_factory=list, max_length=200
    )
    service_code: str | None = Field(default=None, max_length=60)
    title: str = Field(default="", max_length=200)
    description: str = Field(default="", max_length=4000)
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)
    address: str = Field(default="", max_length=300)
    priority: int | None = Field(default=None, ge=1, le=4)
    crew_id: int | None = Field(default=None, ge=1, le=MAX_ID)


class AssignBody(SQLModel):
    crew_id: int = Field(ge=1, le=MAX_ID)
    expected_version: int | None = Field(default=None, ge=1, le=MAX_ID)


class BulkAssignBody(SQLModel):
    work_order_ids: list[Annotated[int, Field(ge=1, le=MAX_ID)]] = Field(
        min_length=1, max_length=500
    )
    crew_id: int = Field(ge=1, le=MAX_ID)


class PriorityBody(SQLModel):
    priority: int = Field(ge=1, le=4)
    expected_version: int | None = Field(default=None, ge=1, le=MAX_ID)


class CancelBody(SQLModel):
    reason: str = Field(min_length=1, max_length=500)
    expected_version: int | None = Field(default=None, ge=1, le=MAX_ID)


class TransitionBody(SQLModel):
    action: str = Field(max_length=20)
    outcome: str | None = Field(default=None, max_length=40)
    note: str | None = Field(default=None, max_length=2000)
    reason: str | None = Field(default=None, max_length=500)
    expected_version: int | None = Field(default=None, ge=1, le=MAX_ID)


class MergeBody(SQLModel):
    request_ids: list[Annotated[int, Field(ge=1, le=MAX_ID)]] = Field(min_length=1, max_length=200)


class BulkResult(SQLModel):
    updated: list[int]
    items: list[WorkOrderPublic]


def as_dict(wo: WorkOrder) -> dict[str, Any]:
    return wo.model_dump()
