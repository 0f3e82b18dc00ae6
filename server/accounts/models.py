"""Users, sign-in sessions and crew devices.

Dispatchers and admins sign in for a session (a bearer token that expires); each crew phone
signs in once and becomes a *device* with its own long-lived, revocable token. Only the
sha256 of a token is stored.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from sqlmodel import Field, SQLModel

from server.dbtypes import MAX_ID, UTCDateTime, matching, utcnow

ROLE_PATTERN = r"^(admin|dispatcher|crew)$"


class UserBase(SQLModel):
    username: str = Field(
        min_length=2, max_length=60, schema_extra=matching(r"^[a-z0-9][a-z0-9._-]*$")
    )
    display_name: str = Field(min_length=1, max_length=120)
    role: str = Field(schema_extra=matching(ROLE_PATTERN), max_length=20)
    crew_id: int | None = Field(default=None, foreign_key="crew.id", ge=1, le=MAX_ID)
    language: str = Field(default="fr", schema_extra=matching(r"^(fr|en)$"), max_length=2)


class User(UserBase, table=True):
    __tablename__ = "user_account"

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(max_length=60, unique=True)
    password_hash: str = Field(max_length=255)
    active: bool = Field(default=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class UserCreate(UserBase):
    password: str = Field(min_length=8, max_length=200)


class UserUpdate(SQLModel):
    display_name: str | None = Field(default=None, min_length=1, max_length=120)
    role: Literal["admin", "dispatcher", "crew"] | None = None
    crew_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    language: Literal["fr", "en"] | None = None
    active: bool | None = None
    password: str | None = Field(default=None, min_length=8, max_length=200)


class UserPublic(UserBase):
    id: int
    active: bool


class AccessToken(SQLModel, table=True):
    """A bearer credential: a dispatcher's session or a crew phone (``kind == "device"``)."""

    __tablename__ = "access_token"

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(max_length=64, unique=True)
    kind: str = Field(max_length=10)  # "session" | "device"
    user_id: int = Field(foreign_key="user_account.id", index=True)
    crew_id: int | None = Field(default=None, foreign_key="crew.id", index=True)
    label: str = Field(default="", max_length=120)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_seen_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    revoked_by_id: int | None = Field(default=None, foreign_key="user_account.id")


class StreamTicket(SQLModel, table=True):
    """A single-use, short-lived stand-in for a bearer token in an SSE URL (EventSource cannot
    send headers). Stored so that any API process redeems it; only its sha256 is kept."""

    __tablename__ = "stream_ticket"

    id: int | None = Field(default=None, primary_key=True)
    ticket_hash: str = Field(max_length=64, unique=True)
    token_id: int = Field(foreign_key="access_token.id", index=True)
    expires_at: datetime = Field(sa_type=UTCDateTime, index=True)
    used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class StreamTicketPublic(SQLModel):
    ticket: str = Field(description="Pass as ?ticket= to an SSE route, once, before expires_at")
    expires_at: datetime


class LoginRequest(SQLModel):
    username: str = Field(min_length=1, max_length=60)
    password: str = Field(min_length=1, max_length=200)
    device_label: str | None = Field(
        default=None,
        max_length=120,
        description="Crew phones: a label such as 'Téléphone Beauport 1'. "
        "Signing in with a label creates a revocable device token.",
    )


class LoginResponse(SQLModel):
    token: str
    kind: str
    expires_at: datetime | None
    user: UserPublic
    device_id: int | None = None


class DevicePublic(SQLModel):
    id: int
    crew_id: int | None
    user_id: int
    username: str
    label: str
    created_at: datetime
    last_seen_at: datetime | None
    revoked_at: datetime | None
    active: bool
