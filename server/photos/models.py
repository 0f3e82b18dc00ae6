"""Photo evidence attached to work orders.

``WorkOrderPhoto`` is the reference a crew creates (offline, keyed by a UUID made on the
device) from a sync mutation: it names the photo's sha256, which may arrive before or after the
bytes. The bytes and their derivatives are tracked by the upload pipeline (issue 4).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index
from sqlmodel import Field, SQLModel

from server.dbtypes import JSONList, UTCDateTime, utcnow


class WorkOrderPhoto(SQLModel, table=True):
    __tablename__ = "work_order_photo"
    __table_args__ = (Index("ix_wo_photo_wo", "work_order_id"),)

    id: str = Field(primary_key=True, max_length=36)  # UUID made on the device
    work_order_id: int = Field(foreign_key="work_order.id")
    sha256: str = Field(max_length=64, index=True)
    kind: str = Field(default="after", max_length=10)  # before | after | other
    captured_at: datetime | None = Field(default=None, sa_type=UTCDateTime)  # device clock
    captured_lat: float | None = None
    captured_lon: float | None = None
    captured_accuracy_m: float | None = None
    device_id: int | None = Field(default=None, foreign_key="access_token.id")
    user_id: int | None = Field(default=None, foreign_key="user_account.id")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    # evidence checks (distance from the site, taken long before completion, ...)
    distance_m: float | None = None
    flags: list[Any] = Field(default_factory=list, sa_type=JSONList)
