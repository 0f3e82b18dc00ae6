"""The PostgreSQL admin connection the tests and simulators use to create and drop databases."""

from __future__ import annotations

import os

PG_ADMIN = os.environ.get("TOURNEE_TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")


async def admin_sql(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def database_url(name: str) -> str:
    """The URL of database ``name`` on the admin connection's server."""
    return f"{PG_ADMIN.rsplit('/', 1)[0]}/{name}"
