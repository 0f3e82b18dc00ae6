"""Wipe what a simulated run created, keeping reference data, users and their device tokens.

The stateful test runs many short histories on one database; each must start from the same
state (or Hypothesis could not shrink a failure) without paying Argon2 sign-ins again. Tables
not listed in :data:`KEEP` are activity and are emptied, so a table added later is wiped by
default.
"""

from __future__ import annotations

import asyncio
import threading

from sqlalchemy import text
from sqlmodel import SQLModel

KEEP = frozenset(
    {
        "user_account",
        "access_token",
        "crew",
        "borough",
        "service_type",
        "open311_service_attribute",
        "sync_counter",  # a monotonic change stamp: never goes back
    }
)


async def _wipe() -> None:
    from server import models  # noqa: F401  (registers every table)
    from server.db import Database
    from server.settings import get_settings

    db = Database(get_settings())
    try:
        async with db.transaction() as tx:
            for table in reversed(SQLModel.metadata.sorted_tables):
                if table.name not in KEEP:
                    await tx.execute(text(f'DELETE FROM "{table.name}"'))
    finally:
        await db.dispose()


def wipe_activity() -> None:
    """Run :func:`_wipe` on its own event loop (callers may already be inside one)."""
    errors: list[BaseException] = []

    def target() -> None:
        try:
            asyncio.run(_wipe())
        except BaseException as exc:  # re-raised in the caller's thread
            errors.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
