"""Offline sync: clients and their mutation log, conflicts, change feed.

Tables:
- ``sync_client``: one row per app installation (``client_id``): the ack watermark.
- ``sync_mutation``: every processed mutation with its outcome (the log replays answer from).
- ``sync_conflict``: overridden, flagged or rejected writes, for dispatchers to resolve.
- (notes and the material ledger are work-order data: server/workorders/models.py)
- ``work_order_crew_exit``: a crew lost a work order (reassigned): drives ``del`` in pulls and
  the acceptance of edits from a crew the order was reassigned away from.
- ``sync_counter``: SQLite only, the change stamp (docs/adr/0011).

Request and response types of the wire protocol (docs/sync-protocol.md) are at the end.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from pydantic import BeforeValidator
from sqlalchemy import BigInteger, Column, Index, text
from sqlmodel import Field, SQLModel

from server.dbtypes import MAX_ID, JSONDict, UTCDateTime, matching, utcnow


class SyncClient(SQLModel, table=True):
    __tablename__ = "sync_client"

    client_id: str = Field(primary_key=True, max_length=64)
    user_id: int = Field(foreign_key="user_account.id", index=True)
    device_id: int | None = Field(default=None, foreign_key="access_token.id")
    crew_id: int | None = Field(default=None, foreign_key="crew.id")
    last_mutation_id: int = Field(default=0, sa_type=BigInteger)
    schema_version: int = Field(default=0)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_push_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class SyncMutation(SQLModel, table=True):
    __tablename__ = "sync_mutation"
    __table_args__ = (Index("ix_sync_mutation_wo", "work_order_id"),)

    client_id: str = Field(primary_key=True, foreign_key="sync_client.client_id", max_length=64)
    id: int = Field(primary_key=True, sa_type=BigInteger, sa_column_kwargs={"autoincrement": False})
    name: str = Field(max_length=100)
    work_order_id: int | None = None
    base_version: int | None = Field(default=None, sa_type=BigInteger)
    client_ts: str | None = Field(default=None, max_length=64)
    args: dict[str, Any] = Field(default_factory=dict, sa_type=JSONDict)
    outcome: str = Field(max_length=24)
    code: str | None = Field(default=None, max_length=60)
    conflict_id: int | None = None
    user_id: int | None = Field(default=None, foreign_key="user_account.id")
    device_id: int | None = Field(default=None, foreign_key="access_token.id")
    received_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class SyncConflict(SQLModel, table=True):
    __tablename__ = "sync_conflict"
    __table_args__ = (
        Index("ix_sync_conflict_status_kind", "status", "kind"),
        Index("ix_sync_conflict_wo", "work_order_id", "crew_id"),
        Index("ix_sync_conflict_crew", "crew_id", "status"),
    )

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=30)
    severity: str = Field(max_length=10)
    status: str = Field(default="open", max_length=10)  # open | resolved
    work_order_id: int | None = Field(default=None, foreign_key="work_order.id")
    crew_id: int | None = Field(default=None, foreign_key="crew.id")
    user_id: int | None = Field(default=None, foreign_key="user_account.id")
    device_id: int | None = Field(default=None, foreign_key="access_token.id")
    client_id: str | None = Field(default=None, max_length=64)
    mutation_id: int | None = Field(default=None, sa_type=BigInteger)
    mutation_name: str | None = Field(default=None, max_length=100)
    code: str | None = Field(default=None, max_length=60)
    field: str | None = Field(default=None, max_length=40)
    server_value: Any = Field(default=None, sa_type=JSONDict)
    client_value: Any = Field(default=None, sa_type=JSONDict)
    detail: dict[str, Any] = Field(default_factory=dict, sa_type=JSONDict)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    resolution: str | None = Field(default=None, max_length=30)
    resolution_note: str | None = Field(default=None, max_length=1000)
    resolved_by: int | None = Field(default=None, foreign_key="user_account.id")
    resolved_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class CrewExit(SQLModel, table=True):
    """The crew ``crew_id`` lost the work order at ``left_at`` (latest time, upserted)."""

    __tablename__ = "work_order_crew_exit"
    __table_args__ = (
        Index("ix_crew_exit_seq", "crew_id", "change_seq"),
        Index("ix_crew_exit_left", "crew_id", "left_at"),
    )

    work_order_id: int = Field(primary_key=True, foreign_key="work_order.id")
    crew_id: int = Field(primary_key=True, foreign_key="crew.id")
    left_at: datetime = Field(sa_type=UTCDateTime)
    change_seq: int = Field(default=0, sa_type=BigInteger)


class SyncCounter(SQLModel, table=True):
    """SQLite's change stamp (PostgreSQL uses transaction ids): one row, ``name='change'``."""

    __tablename__ = "sync_counter"

    name: str = Field(primary_key=True, max_length=20)
    value: int = Field(
        default=0, sa_column=Column(BigInteger, nullable=False, server_default=text("0"))
    )


# --------------------------------------------------------------------------- wire types

CLIENT_ID = r"^[A-Za-z0-9_-]{8,64}$"


def _exact_int(value: Any) -> Any:
    if type(value) is not int:  # not "7", 7.0, true (a bool is an int to Python)
        raise ValueError("an integer is required")
    return value


# The envelope is decoded strictly: an integer field refuses "7", 7.0 and true (pydantic's lax
# mode would take them, true as 1), so a client bug shows at once instead of being guessed at.
# A validator rather than pydantic's Strict(): Litestar validates with strict=False, which
# overrides a field's Strict().
StrictInt = Annotated[int, BeforeValidator(_exact_int)]


class MutationIn(SQLModel):
    id: StrictInt = Field(ge=1, le=2**53)
    # ``name``, ``client_ts`` and ``args`` are the mutation's content: anything wrong inside
    # them (a NUL character included) rejects that mutation alone, never the batch.
    name: str = Field(max_length=100)
    base_version: StrictInt | None = Field(
        default=None,
        ge=0,
        le=2**53,
        # Litestar's OpenAPI generator drops a 0 bound (falsy): state it for client authors
        schema_extra={"json_schema_extra": {"minimum": 0}},
    )
    client_ts: str | None = Field(default=None, max_length=64)
    args: dict[str, Any] = Field(default_factory=dict)


class PushRequest(SQLModel):
    protocol: StrictInt = Field(ge=0, le=1000)
    schema_version: StrictInt = Field(ge=0, le=1_000_000)
    client_id: str = Field(max_length=64, schema_extra=matching(CLIENT_ID))
    mutations: list[MutationIn] = Field(min_length=1, max_length=200)


class PullRequest(SQLModel):
    protocol: StrictInt = Field(ge=0, le=1000)
    schema_version: StrictInt = Field(ge=0, le=1_000_000)
    client_id: str = Field(max_length=64, schema_extra=matching(CLIENT_ID))
    cookie: str | None = Field(default=None, max_length=2000)
    limit: StrictInt = Field(default=200, ge=1, le=1000)


@dataclass
class MutationResult:
    id: int
    outcome: str
    conflict_id: int | None = None
    code: str | None = None
    replayed: bool = False


@dataclass
class PushResponse:
    last_mutation_id: int
    results: list[MutationResult]
    server_time: datetime


@dataclass
class PatchOp:
    op: str  # put | del
    key: str
    value: dict[str, Any] | None = None


@dataclass
class PullResponse:
    cookie: str | None
    last_mutation_id: int
    reset: bool
    has_more: bool
    upgrade: bool
    server_time: datetime
    patch: list[PatchOp]


class ConflictPublic(SQLModel):
    id: int
    kind: str
    severity: str
    status: str
    work_order_id: int | None
    crew_id: int | None
    user_id: int | None
    device_id: int | None
    client_id: str | None
    mutation_id: int | None
    mutation_name: str | None
    code: str | None
    field: str | None
    server_value: Any
    client_value: Any
    detail: dict[str, Any]
    created_at: datetime
    resolution: str | None
    resolution_note: str | None
    resolved_by: int | None
    resolved_at: datetime | None


class ConflictPage(SQLModel):
    items: list[ConflictPublic]
    total: int
    limit: int
    offset: int


RESOLUTION_PATTERN = r"^(accept_completion|keep_cancellation|reopen|accept_suggestion|dismiss)$"


class ResolveBody(SQLModel):
    resolution: str = Field(max_length=30, schema_extra=matching(RESOLUTION_PATTERN))
    note: str | None = Field(default=None, max_length=1000)


class MutationLogEntry(SQLModel):
    id: int
    name: str
    outcome: str
    code: str | None
    conflict_id: int | None
    work_order_id: int | None
    received_at: datetime


MAX_DB_ID = MAX_ID
