"""Column types and small database helpers shared by every domain."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import JSON, DateTime, Table, select
from sqlalchemy.engine import CursorResult, Dialect, Result
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import TypeDecorator
from sqlmodel import SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend.

    PostgreSQL stores ``timestamptz``; SQLite stores naive UTC text. Values always come back
    aware (UTC), and naive values are refused on the way in: a naive time is a bug.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"not a datetime: {value!r}")
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class JSONList(TypeDecorator[list[Any]]):
    impl = JSON
    cache_ok = True


class JSONDict(TypeDecorator[dict[str, Any]]):
    impl = JSON
    cache_ok = True


MAX_ID = 2_147_483_647  # ids are 32-bit integers on every backend


def matching(pattern: str) -> dict[str, Any]:
    """``Field(schema_extra=matching(r"^...$"))``: a string constraint pydantic 2 enforces.

    SQLModel's ``regex`` argument is silently ignored under pydantic 2 (it validated nothing:
    docs/adr/0004); ``pattern`` is enforced, and repeated for Litestar's OpenAPI generator,
    which does not read it from pydantic's metadata.
    """
    return {"pattern": pattern, "json_schema_extra": {"pattern": pattern}}


async def references_existing_row(
    tx: AsyncSession, model: type[SQLModel], field: str, value: object
) -> bool:
    """Whether ``value`` names an existing row of the table ``model.field``'s foreign key points
    to (a check a domain can make on another domain's table without importing it)."""
    column = table_of(model).c[field]
    (foreign_key,) = column.foreign_keys
    target = foreign_key.column
    found = await tx.execute(select(target).where(target == value).limit(1))
    return found.first() is not None


def dialect_name(tx: AsyncSession) -> str:
    """``"postgresql"`` or ``"sqlite"``: the database behind a session."""
    return str(tx.get_bind().dialect.name)


def table_of(model: type[SQLModel]) -> Table:
    """The model's Core table (for ``insert(...)`` of many plain rows in one executemany)."""
    return SQLModel.metadata.tables[str(model.__tablename__)]


def rowcount(result: Result[Any]) -> int:
    """Rows an UPDATE or DELETE matched (its result is a CursorResult)."""
    return int(cast("CursorResult[Any]", result).rowcount)
