"""Offline sync: constants and helpers shared by push, pull and the desk."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from server.accounts.auth import Actor
from server.errors import DomainError, Forbidden
from server.syncapi import feed
from sync.states import OPEN_STATUSES

PROTOCOL = 1
SCHEMA_VERSION = 1
OPEN = tuple(sorted(s.value for s in OPEN_STATUSES))

OUTCOME_NAMES: dict[str, tuple[str, str]] = {
    "fixed": ("Réglé", "Fixed"),
    "no_condition_found": ("Aucun problème constaté", "No condition found"),
    "duplicate": ("Doublon", "Duplicate"),
    "not_city_responsibility": ("Hors responsabilité de la Ville", "Not city responsibility"),
    "referred": ("Transféré", "Referred"),
    "unable_to_access": ("Accès impossible", "Unable to access"),
    "partially_done": ("Partiellement fait", "Partially done"),
}


def check_envelope(actor: Actor, protocol: int) -> int:
    if protocol != PROTOCOL:
        raise DomainError("protocol_unsupported", 400, protocol=protocol)
    if actor.device_id is None:
        raise Forbidden("device_required")
    if actor.crew_id is None:
        raise Forbidden("device_required")
    return actor.crew_id


def insert_for(tx: AsyncSession) -> Any:
    return pg_insert if feed.is_postgres(tx) else sqlite_insert
