"""Open311 requests in: a client's submission checked and filed through
:func:`server.requests.service.create_request` (channel ``open311``), with its answers, photos
and client ids kept beside the request."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from server.errors import Invalid
from server.open311.definitions import attributes_of, type_by_code, validate_answers
from server.open311.models import (
    Open311ApiKey,
    Open311RequestExtra,
)
from server.open311.service import invalid
from server.photos import service as photos
from server.photos import uploads as photo_uploads
from server.photos.models import RequestPhoto
from server.requests import service as requests_service
from server.requests.models import ServiceRequest, ServiceRequestCreate
from server.settings import Settings

MAX_MEDIA_URL = 500


def checked_media_url(raw: str | None) -> str | None:
    """A client's ``media_url``: an absolute http(s) URL with a host, no spaces or control
    characters, at most 500 characters. Kept and shown as a link; the server never fetches it."""
    if raw is None:
        return None
    try:
        parts = urlsplit(raw)
        valid = (
            parts.scheme.lower() in ("http", "https")
            and bool(parts.hostname)
            and not any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in raw)
            and "\\" not in raw
        )
    except ValueError:
        valid = False
    if not valid:
        raise invalid("media_url")
    return raw


@dataclass
class Submission:
    """The fields of POST requests, merged from the query string and the body (body wins)."""

    fields: dict[str, str]
    answers: dict[str, list[str]]
    photos: list[bytes] = field(default_factory=list)

    def get(self, name: str, limit: int) -> str | None:
        value = (self.fields.get(name) or "").strip()
        if not value:
            return None
        if len(value) > limit:
            raise invalid(name)
        return value


def _float(sub: Submission, name: str, low: float, high: float) -> float | None:
    raw = sub.get(name, 40)
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError as exc:
        raise invalid(name) from exc
    if not math.isfinite(value) or not low <= value <= high:
        raise invalid(name)
    return value


async def _locate_by_address(tx: AsyncSession, address: str) -> tuple[float, float] | None:
    """No geocoder here: reuse the position of an earlier request at the very same address."""
    row = (
        await tx.execute(
            select(col(ServiceRequest.lat), col(ServiceRequest.lon))
            .where(func.lower(col(ServiceRequest.address)) == address.lower())
            .order_by(col(ServiceRequest.created_at).desc())
            .limit(1)
        )
    ).first()
    return (float(row[0]), float(row[1])) if row else None


async def create_request(
    tx: AsyncSession,
    settings: Settings,
    sub: Submission,
    api_key: Open311ApiKey,
    lang: str,
) -> ServiceRequest:
    code = sub.get("service_code", 60)
    if code is None:
        raise Invalid("open311_parameter_required", name="service_code")
    st = await type_by_code(tx, code)
    if st is None or st.id is None:
        raise Invalid("service_type_unknown", code=code)
    lat = _float(sub, "lat", -90, 90)
    lon = _float(sub, "long", -180, 180)
    address = sub.get("address_string", 300)
    address_id = sub.get("address_id", 100)
    if (lat is None) != (lon is None):
        raise Invalid("open311_parameter_required", name="lat, long")
    if lat is None or lon is None:
        if address is None and address_id is None:
            raise Invalid("open311_location_required")
        found = await _locate_by_address(tx, address) if address else None
        if found is None:
            raise Invalid("open311_address_not_located")
        lat, lon = found
    answers = validate_answers(await attributes_of(tx, st.id), sub.answers)
    first, last = sub.get("first_name", 60), sub.get("last_name", 60)
    name = " ".join(p for p in (first, last) if p) or None
    media_url = checked_media_url(sub.get("media_url", MAX_MEDIA_URL))
    try:
        data = ServiceRequestCreate(
            service_code=st.code,
            description=sub.get("description", 4000) or "",
            lat=lat,
            lon=lon,
            address=address or "",
            reporter_name=name,
            reporter_phone=sub.get("phone", 40),
            reporter_email=sub.get("email", 200),
            language=lang,
            channel="open311",
        )
    except ValidationError as exc:
        raise Invalid("open311_parameter_invalid", name="body") from exc
    request = await requests_service.create_request(tx, data, settings)
    assert request.id is not None
    if media_url:
        request.media_url = media_url
        tx.add(request)
    if sub.photos:
        store = photos.make_photo_store(settings)
        for sha256 in dict.fromkeys(
            [
                await photo_uploads.ingest_photo_bytes(tx, store, blob, settings)
                for blob in sub.photos
            ]
        ):
            tx.add(RequestPhoto(service_request_id=request.id, sha256=sha256))
    tx.add(
        Open311RequestExtra(
            service_request_id=request.id,
            api_key_id=api_key.id,
            attributes=answers,
            address_id=address_id,
            device_id=sub.get("device_id", 100),
            account_id=sub.get("account_id", 100),
        )
    )
    await tx.flush()
    return request
