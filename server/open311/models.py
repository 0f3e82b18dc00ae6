"""Open311 tables: client API keys, service-type attribute definitions, request extras.

Attribute definitions live here (not on ``service_type``) because only Open311 clients see them
as a typed form; the dispatch flow stores the answers alongside the request.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from server.dbtypes import JSONDict, JSONList, UTCDateTime, matching, utcnow

DATATYPES = ("string", "number", "datetime", "text", "singlevaluelist", "multivaluelist")
DATATYPE_PATTERN = r"^(string|number|datetime|text|singlevaluelist|multivaluelist)$"
ATTRIBUTE_CODE_PATTERN = r"^[a-z0-9][a-z0-9_-]*$"


class Open311ApiKey(SQLModel, table=True):
    """A client (a 311 app, a FixMyStreet site) allowed to file requests. Only a hash is kept."""

    __tablename__ = "open311_api_key"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=120)
    key_prefix: str = Field(max_length=8)  # shown to admins to tell keys apart
    key_hash: str = Field(max_length=64, unique=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    created_by_user_id: int | None = Field(
        default=None, foreign_key="user_account.id", ondelete="SET NULL"
    )
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class Open311ServiceAttribute(SQLModel, table=True):
    """One field of a service definition (GET services/{service_code})."""

    __tablename__ = "open311_service_attribute"
    __table_args__ = (UniqueConstraint("service_type_id", "code", name="uq_open311_attr_code"),)

    id: int | None = Field(default=None, primary_key=True)
    # definitions go with their service type
    service_type_id: int = Field(foreign_key="service_type.id", index=True, ondelete="CASCADE")
    code: str = Field(max_length=60)
    datatype: str = Field(max_length=16)
    required: bool = Field(default=False)
    variable: bool = Field(default=True)
    order: int = Field(default=1)
    description_fr: str = Field(max_length=500)
    description_en: str = Field(max_length=500)
    datatype_description_fr: str | None = Field(default=None, max_length=300)
    datatype_description_en: str | None = Field(default=None, max_length=300)
    # [{"key": ..., "name_fr": ..., "name_en": ...}] for the list datatypes
    values: list[Any] = Field(default_factory=list, sa_type=JSONList)


class Open311RequestExtra(SQLModel, table=True):
    """What an Open311 client sent beyond the core request: answers, client ids, photos."""

    __tablename__ = "open311_request_extra"
    __table_args__ = (Index("ix_open311_extra_key", "api_key_id"),)

    service_request_id: int = Field(foreign_key="service_request.id", primary_key=True)
    api_key_id: int | None = Field(default=None, foreign_key="open311_api_key.id")
    attributes: dict[str, Any] = Field(default_factory=dict, sa_type=JSONDict)
    address_id: str | None = Field(default=None, max_length=100)
    device_id: str | None = Field(default=None, max_length=100)
    account_id: str | None = Field(default=None, max_length=100)


# ------------------------------------------------------------------ admin API types


class ApiKeyCreate(SQLModel):
    name: str = Field(min_length=1, max_length=120)


class ApiKeyPublic(SQLModel):
    id: int
    name: str
    key_prefix: str
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None


class ApiKeyCreated(ApiKeyPublic):
    api_key: str  # shown once


class AttributeValue(SQLModel):
    key: str = Field(min_length=1, max_length=60)
    name_fr: str = Field(min_length=1, max_length=200)
    name_en: str = Field(min_length=1, max_length=200)


class AttributeDefinition(SQLModel):
    code: str = Field(min_length=1, max_length=60, schema_extra=matching(ATTRIBUTE_CODE_PATTERN))
    datatype: str = Field(schema_extra=matching(DATATYPE_PATTERN), max_length=16)
    required: bool = False
    variable: bool = True
    order: int = Field(default=1, ge=1, le=1000)
    description_fr: str = Field(min_length=1, max_length=500)
    description_en: str = Field(min_length=1, max_length=500)
    datatype_description_fr: str | None = Field(default=None, max_length=300)
    datatype_description_en: str | None = Field(default=None, max_length=300)
    values: list[AttributeValue] = Field(default_factory=list, max_length=200)
