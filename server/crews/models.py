"""Crews (their borough is the city's: server/city/)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from sqlmodel import Field, SQLModel

from server.dbtypes import UTCDateTime, matching, utcnow


class CrewBase(SQLModel):
    code: str = Field(max_length=60, min_length=1, schema_extra=matching(r"^[a-z0-9][a-z0-9-]*$"))
    name: str = Field(max_length=120, min_length=1)
    borough_code: str = Field(foreign_key="borough.code", max_length=40)
    kind: str = Field(max_length=20, schema_extra=matching(r"^(snow|waste|other)$"))


class Crew(CrewBase, table=True):
    __tablename__ = "crew"

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=60, unique=True)
    active: bool = Field(default=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class CrewCreate(CrewBase):
    pass


class CrewUpdate(SQLModel):
    name: str | None = Field(default=None, max_length=120, min_length=1)
    borough_code: str | None = Field(default=None, max_length=40)
    kind: Literal["snow", "waste", "other"] | None = None
    active: bool | None = None


class CrewMemberPublic(SQLModel):
    id: int
    username: str
    display_name: str


class CrewPublic(CrewBase):
    id: int
    active: bool
    members: list[CrewMemberPublic] = []
    open_work_orders: int = 0
