"""Test data: a clean database with the demo reference data and users, and sign-in helpers."""

from __future__ import annotations

import asyncio
from functools import cache
from typing import Any

from sqlalchemy import text
from sqlmodel import SQLModel

from server.accounts.auth import hash_password
from server.db import Database
from server.seed import DEMO_PASSWORDS, seed_reference, seed_users
from server.settings import Settings

PASSWORDS = DEMO_PASSWORDS


@cache
def _hashes() -> dict[str, str]:
    # Argon2 is deliberately slow: hash the three demo passwords once per test run.
    return {role: hash_password(pw) for role, pw in DEMO_PASSWORDS.items()}


async def reset_and_seed(db: Database) -> dict[str, int]:
    await reset(db)
    async with db.transaction() as tx:
        crews = await seed_reference(tx)
        await seed_users(tx, crews, _hashes())
    return crews


def reset_and_seed_now(settings: Settings) -> None:
    """:func:`reset_and_seed` on the database of ``settings``, from synchronous code."""

    async def seed() -> None:
        db = Database(settings)
        try:
            await reset_and_seed(db)
        finally:
            await db.dispose()

    asyncio.run(seed())


async def reset(db: Database) -> None:
    """Empty every table (the schema stays)."""
    tables = [t.name for t in SQLModel.metadata.sorted_tables]
    async with db.transaction() as tx:
        if db.settings.is_postgres:
            names = ", ".join(f'"{name}"' for name in tables)
            await tx.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        else:
            for name in reversed(tables):
                await tx.execute(text(f'DELETE FROM "{name}"'))
            if await _has_sequence(tx):
                await tx.execute(text("DELETE FROM sqlite_sequence"))


async def _has_sequence(tx: Any) -> bool:
    row = (
        await tx.execute(text("SELECT name FROM sqlite_master WHERE name='sqlite_sequence'"))
    ).first()
    return row is not None


async def login(client: Any, username: str, role: str, **extra: Any) -> dict[str, str]:
    response = await client.post(
        "/api/v1/auth/login", json={"username": username, "password": PASSWORDS[role], **extra}
    )
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}
