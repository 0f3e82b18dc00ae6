"""Open311 GeoReport v2 on top of the dispatch domain.

Requests filed here go through :func:`server.requests.service.create_request` (channel
``open311``), so they get the same jurisdiction check, borough, audit row and domain event as
any other intake. Public output never carries reporter contact data.

The modules: ``definitions`` (service list and definitions, attribute answers), ``intake``
(requests in), ``queries`` and ``documents`` (requests out); this one holds the API keys, the
parameters every endpoint shares and the discovery document.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from server.dbtypes import utcnow
from server.errors import DomainError, Forbidden, Invalid, NotFound
from server.open311.models import (
    ApiKeyPublic,
    Open311ApiKey,
)
from server.open311.render import w3c
from server.settings import Settings

SPECIFICATION = "http://wiki.open311.org/GeoReport_v2"


API_CHANGESET = datetime(2026, 1, 1, tzinfo=UTC)


DEFAULT_WINDOW = timedelta(days=90)


MAX_RESULTS = 1000


class Open311NotFound(DomainError):
    def __init__(self, problem_code: str, /, **params: Any) -> None:
        super().__init__(problem_code, 404, **params)


def invalid(name: str) -> Invalid:
    return Invalid("open311_parameter_invalid", name=name)


_W3C = re.compile(
    r"^(?P<y>\d{4})(?:-(?P<mo>\d{2})(?:-(?P<d>\d{2})"
    r"(?:[T ](?P<h>\d{2}):(?P<mi>\d{2})(?::(?P<s>\d{2})(?:[.,](?P<f>\d+))?)?"
    r"(?P<tz>Z|z|[+-]\d{2}:?\d{2})?)?)?)?$"
)


def parse_w3c(raw: str, name: str) -> datetime:
    """Any W3C datetime profile (YYYY … YYYY-MM-DDThh:mm:ss.sTZD) → aware UTC.

    Offsets and any number of fractional digits are accepted; a time without a zone is UTC.
    """
    match = _W3C.match(raw.strip())
    if not match:
        raise Invalid("open311_date_invalid", name=name)
    g = match.groupdict()
    try:
        tz = UTC
        if g["tz"] and g["tz"] not in ("Z", "z"):
            sign = 1 if g["tz"][0] == "+" else -1
            digits = g["tz"][1:].replace(":", "")
            offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
            if offset >= timedelta(hours=24):
                raise ValueError("offset")
            from datetime import timezone

            tz = timezone(sign * offset)
        moment = datetime(
            int(g["y"]),
            int(g["mo"] or 1),
            int(g["d"] or 1),
            int(g["h"] or 0),
            int(g["mi"] or 0),
            int(g["s"] or 0),
            int((g["f"] or "0")[:6].ljust(6, "0")),
            tzinfo=tz,
        )
        return moment.astimezone(UTC)
    except (ValueError, OverflowError) as exc:
        raise Invalid("open311_date_invalid", name=name) from exc


def key_digest(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()


async def create_api_key(
    tx: AsyncSession, name: str, user_id: int | None
) -> tuple[Open311ApiKey, str]:
    raw = secrets.token_urlsafe(32)
    key = Open311ApiKey(
        name=name.strip(),
        key_prefix=raw[:8],
        key_hash=key_digest(raw),
        created_by_user_id=user_id,
    )
    tx.add(key)
    await tx.flush()
    return key, raw


async def list_api_keys(tx: AsyncSession) -> list[ApiKeyPublic]:
    rows = (await tx.execute(select(Open311ApiKey).order_by(col(Open311ApiKey.id)))).scalars()
    return [ApiKeyPublic.model_validate(k.model_dump()) for k in rows]


async def revoke_api_key(tx: AsyncSession, key_id: int) -> Open311ApiKey:
    key = await tx.get(Open311ApiKey, key_id)
    if key is None:
        raise NotFound("open311_api_key", key_id)
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        tx.add(key)
        await tx.flush()
    return key


async def authenticate(tx: AsyncSession, raw: str | None) -> Open311ApiKey:
    if not raw:
        raise Forbidden("open311_api_key_required")
    key = (
        await tx.execute(
            select(Open311ApiKey).where(col(Open311ApiKey.key_hash) == key_digest(raw))
        )
    ).scalar_one_or_none()
    if key is None or key.revoked_at is not None:
        raise Forbidden("open311_api_key_invalid")
    now = utcnow()
    if key.last_used_at is None or now - key.last_used_at > timedelta(minutes=1):
        key.last_used_at = now
        tx.add(key)
    return key


def check_jurisdiction(settings: Settings, jurisdiction_id: str | None) -> None:
    if jurisdiction_id and jurisdiction_id.strip() != settings.jurisdiction_id:
        raise Open311NotFound("open311_jurisdiction_unknown", jurisdiction_id=jurisdiction_id[:80])


KEY_SERVICE = {
    "fr": "Demandez une clé d'API à l'administration de Tournée de votre ville.",
    "en": "Ask your city's Tournée administrators for an API key.",
}


def discovery(settings: Settings, lang: str) -> dict[str, Any]:
    return {
        "changeset": w3c(API_CHANGESET),
        "contact": settings.open311_contact,
        "key_service": KEY_SERVICE[lang],
        "endpoints": [
            {
                "specification": SPECIFICATION,
                "url": f"{settings.public_url.rstrip('/')}/open311/v2",
                "changeset": w3c(API_CHANGESET),
                "type": "production",
                "formats": ["text/xml", "application/json"],
            }
        ],
    }
