"""Audit history: who changed what, when, from which device, old → new."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import Field, SQLModel

from server.dbtypes import JSONDict, UTCDateTime, utcnow


class AuditEvent(SQLModel, table=True):
    __tablename__ = "audit_event"
    __table_args__ = (Index("ix_audit_entity", "entity_type", "entity_id", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    entity_type: str = Field(max_length=40)
    entity_id: int
    action: str = Field(max_length=60)
    actor_user_id: int | None = Field(default=None, foreign_key="user_account.id")
    actor_role: str | None = Field(default=None, max_length=20)
    device_id: int | None = Field(default=None, foreign_key="access_token.id")
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    changes: dict[str, Any] = Field(default_factory=dict, sa_type=JSONDict)
    reason: str | None = Field(default=None, max_length=500)


class AuditEventPublic(SQLModel):
    id: int
    action: str
    actor_user_id: int | None
    actor_role: str | None
    device_id: int | None
    at: datetime
    changes: dict[str, Any]
    reason: str | None


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, list[Any]]:
    """``{field: [old, new]}`` for the fields whose value changed."""
    return {
        key: [_jsonable(before.get(key)), _jsonable(after.get(key))]
        for key in after
        if before.get(key) != after.get(key)
    }


async def record(
    tx: AsyncSession,
    *,
    entity_type: str,
    entity_id: int,
    action: str,
    actor: Any,
    changes: dict[str, Any],
    reason: str | None = None,
) -> AuditEvent:
    """Add an audit row for ``actor`` (a :class:`server.accounts.auth.Actor`; None: the system)."""
    event = AuditEvent(
        entity_type=entity_type,
        entity_id=entity_id,
        action=action,
        actor_user_id=getattr(actor, "user_id", None),
        actor_role=getattr(actor, "role", "system"),
        device_id=getattr(actor, "device_id", None),
        changes=changes,
        reason=reason,
    )
    tx.add(event)
    return event
