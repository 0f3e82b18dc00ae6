"""Open311 GeoReport v2 on top of the dispatch domain.

Requests filed here go through :func:`server.requests.service.create_request` (channel
``open311``), so they get the same jurisdiction check, borough, audit row and domain event as
any other intake. Public output never carries reporter contact data.
"""

from __future__ import annotations

import hashlib
import math
import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.audit import AuditEvent
from server.dbtypes import MAX_ID, utcnow
from server.errors import DomainError, Forbidden, Invalid, NotFound
from server.open311.models import (
    ApiKeyPublic,
    AttributeDefinition,
    Open311ApiKey,
    Open311RequestExtra,
    Open311ServiceAttribute,
)
from server.open311.render import w3c
from server.photos import service as photos
from server.photos import uploads as photo_uploads
from server.photos.models import Photo, RequestPhoto, WorkOrderPhoto
from server.requests import service as requests_service
from server.requests.models import ServiceRequest, ServiceRequestCreate, ServiceType
from server.settings import Settings
from server.workorders.models import WorkOrder

SPECIFICATION = "http://wiki.open311.org/GeoReport_v2"
API_CHANGESET = datetime(2026, 1, 1, tzinfo=UTC)
DEFAULT_WINDOW = timedelta(days=90)
MAX_RESULTS = 1000

# ------------------------------------------------------------------ errors


class Open311NotFound(DomainError):
    def __init__(self, problem_code: str, /, **params: Any) -> None:
        super().__init__(problem_code, 404, **params)


def invalid(name: str) -> Invalid:
    return Invalid("open311_parameter_invalid", name=name)


# ------------------------------------------------------------------ W3C datetimes

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


# ------------------------------------------------------------------ API keys


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
    rows = (await tx.execute(select(Open311ApiKey).order_by(Open311ApiKey.id))).scalars()  # type: ignore[arg-type]
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
        await tx.execute(select(Open311ApiKey).where(Open311ApiKey.key_hash == key_digest(raw)))
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


# ------------------------------------------------------------------ services

_GROUPS = {
    "snow": {"fr": "Déneigement", "en": "Snow removal"},
    "waste": {"fr": "Matières résiduelles", "en": "Waste collection"},
    "other": {"fr": "Travaux publics", "en": "Public works"},
}
_AGENCY = {
    "snow": {"fr": "Ville de Québec — Déneigement", "en": "City of Québec — Snow removal"},
    "waste": {
        "fr": "Ville de Québec — Matières résiduelles",
        "en": "City of Québec — Waste management",
    },
    "other": {"fr": "Ville de Québec — Travaux publics", "en": "City of Québec — Public works"},
}
KEY_SERVICE = {
    "fr": "Demandez une clé d'API à l'administration de Tournée de votre ville.",
    "en": "Ask your city's Tournée administrators for an API key.",
}


def _lang(row: Any, base: str, lang: str) -> Any:
    return getattr(row, f"{base}_{lang}")


async def _active_types(tx: AsyncSession) -> list[ServiceType]:
    rows = await tx.execute(
        select(ServiceType).where(ServiceType.active.is_(True)).order_by(ServiceType.code)  # type: ignore[attr-defined, arg-type]
    )
    return list(rows.scalars())


async def _type_by_code(tx: AsyncSession, code: str) -> ServiceType | None:
    st = (
        await tx.execute(select(ServiceType).where(ServiceType.code == code))
    ).scalar_one_or_none()
    return st if st is not None and st.active else None


async def _attributes(tx: AsyncSession, service_type_id: int) -> list[Open311ServiceAttribute]:
    rows = await tx.execute(
        select(Open311ServiceAttribute)
        .where(Open311ServiceAttribute.service_type_id == service_type_id)
        .order_by(Open311ServiceAttribute.order, Open311ServiceAttribute.code)  # type: ignore[arg-type]
    )
    return list(rows.scalars())


async def list_services(tx: AsyncSession, lang: str) -> list[dict[str, Any]]:
    with_attributes = set(
        (await tx.execute(select(Open311ServiceAttribute.service_type_id).distinct())).scalars()
    )
    return [
        {
            "service_code": st.code,
            "service_name": _lang(st, "name", lang),
            "description": _lang(st, "description", lang),
            "metadata": st.id in with_attributes,
            "type": "realtime",
            "keywords": st.category,
            "group": _GROUPS.get(st.category, _GROUPS["other"])[lang],
        }
        for st in await _active_types(tx)
    ]


def _attribute_document(attr: Open311ServiceAttribute, lang: str) -> dict[str, Any]:
    return {
        "variable": attr.variable,
        "code": attr.code,
        "datatype": attr.datatype,
        "required": attr.required,
        "datatype_description": _lang(attr, "datatype_description", lang),
        "order": attr.order,
        "description": _lang(attr, "description", lang),
        "values": [{"key": v["key"], "name": v[f"name_{lang}"]} for v in attr.values],
    }


async def service_definition(tx: AsyncSession, code: str, lang: str) -> dict[str, Any]:
    st = await _type_by_code(tx, code)
    if st is None or st.id is None:
        raise Open311NotFound("open311_service_not_found", code=code[:80])
    attrs = await _attributes(tx, st.id)
    return {
        "service_code": st.code,
        "attributes": [_attribute_document(a, lang) for a in attrs],
    }


async def replace_attributes(
    tx: AsyncSession, code: str, definitions: Sequence[AttributeDefinition]
) -> list[AttributeDefinition]:
    """Admin: replace a service type's attribute definitions."""
    st = await _type_by_code(tx, code)
    if st is None or st.id is None:
        raise Invalid("service_type_unknown", code=code)
    seen: set[str] = set()
    for definition in definitions:
        if definition.code in seen:
            raise Invalid("duplicate_code", code=definition.code)
        seen.add(definition.code)
        is_list = definition.datatype in ("singlevaluelist", "multivaluelist")
        if is_list != bool(definition.values):
            raise Invalid("open311_attribute_values_mismatch", code=definition.code)
    for old in await _attributes(tx, st.id):
        await tx.delete(old)
    await tx.flush()
    for definition in definitions:
        data = definition.model_dump()
        tx.add(Open311ServiceAttribute(service_type_id=st.id, **data))
    await tx.flush()
    return list(definitions)


async def attribute_definitions(tx: AsyncSession, code: str) -> list[AttributeDefinition]:
    st = await _type_by_code(tx, code)
    if st is None or st.id is None:
        raise NotFound("service_type", code)
    return [
        AttributeDefinition.model_validate(a.model_dump()) for a in await _attributes(tx, st.id)
    ]


# ------------------------------------------------------------------ attribute answers

_ATTRIBUTE_KEY = re.compile(r"^attribute\[([^\[\]]{1,60})\](\[\])?$")
_LIMITS = {"string": 300, "text": 4000}


def collect_attribute_answers(pairs: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    """``attribute[code]=v``, repeated ``attribute[code]`` and ``attribute[code][]`` → lists."""
    answers: dict[str, list[str]] = {}
    for key, value in pairs:
        match = _ATTRIBUTE_KEY.match(key)
        if match:
            answers.setdefault(match.group(1), []).append(value)
    return answers


def validate_answers(
    definitions: Sequence[Open311ServiceAttribute], answers: dict[str, list[str]]
) -> dict[str, Any]:
    """Check answers against the definitions; unknown codes are ignored (clients add extras)."""
    stored: dict[str, Any] = {}
    for attr in definitions:
        if not attr.variable:
            continue
        raw = [v.strip() for v in answers.get(attr.code, []) if v.strip()]
        if not raw:
            if attr.required:
                raise Invalid("open311_attribute_required", code=attr.code)
            continue
        keys = {v["key"] for v in attr.values}
        if attr.datatype == "multivaluelist":
            chosen = list(dict.fromkeys(raw))
            if any(v not in keys for v in chosen):
                raise Invalid("open311_attribute_invalid", code=attr.code)
            stored[attr.code] = chosen
            continue
        if len(set(raw)) > 1:
            raise Invalid("open311_attribute_invalid", code=attr.code)
        value = raw[0]
        if attr.datatype == "singlevaluelist":
            if value not in keys:
                raise Invalid("open311_attribute_invalid", code=attr.code)
            stored[attr.code] = value
        elif attr.datatype == "number":
            try:
                number = float(value)
            except ValueError as exc:
                raise Invalid("open311_attribute_invalid", code=attr.code) from exc
            if not math.isfinite(number):
                raise Invalid("open311_attribute_invalid", code=attr.code)
            stored[attr.code] = (
                int(number) if number.is_integer() and abs(number) < 2**53 else number
            )
        elif attr.datatype == "datetime":
            try:
                stored[attr.code] = w3c(parse_w3c(value, attr.code))
            except Invalid as exc:
                raise Invalid("open311_attribute_invalid", code=attr.code) from exc
        else:  # string, text
            if len(value) > _LIMITS.get(attr.datatype, 300):
                raise Invalid("open311_attribute_invalid", code=attr.code)
            stored[attr.code] = value
    return stored


# ------------------------------------------------------------------ creating requests

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
            select(ServiceRequest.lat, ServiceRequest.lon)
            .where(func.lower(ServiceRequest.address) == address.lower())
            .order_by(ServiceRequest.created_at.desc())  # type: ignore[attr-defined]
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
    st = await _type_by_code(tx, code)
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
    answers = validate_answers(await _attributes(tx, st.id), sub.answers)
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


# ------------------------------------------------------------------ public documents

_WO_NOTES = {
    "new": {"fr": "Reçue; en attente de planification.", "en": "Received; awaiting scheduling."},
    "assigned": {
        "fr": "Planifiée : confiée à une équipe.",
        "en": "Scheduled: assigned to a crew.",
    },
    "en_route": {"fr": "Une équipe est en route.", "en": "A crew is on its way."},
    "on_site": {"fr": "L'équipe est sur place.", "en": "The crew is on site."},
    "on_hold": {
        "fr": "Travaux suspendus temporairement.",
        "en": "Work temporarily on hold.",
    },
    "completed": {"fr": "Travaux terminés.", "en": "Work completed."},
    "cancelled": {"fr": "Demande fermée sans intervention.", "en": "Request closed without work."},
}
_OUTCOME_NOTES = {
    "fixed": {"fr": "Problème réglé.", "en": "Problem fixed."},
    "no_condition_found": {
        "fr": "Aucun problème constaté sur place.",
        "en": "No problem found on site.",
    },
    "duplicate": {"fr": "Doublon d'une autre demande.", "en": "Duplicate of another request."},
    "not_city_responsibility": {
        "fr": "Ne relève pas de la Ville.",
        "en": "Not the city's responsibility.",
    },
    "referred": {"fr": "Transmise à un autre service.", "en": "Referred to another department."},
    "unable_to_access": {
        "fr": "Accès impossible au lieu des travaux.",
        "en": "The site could not be reached.",
    },
    "partially_done": {"fr": "Travaux faits en partie.", "en": "Work partly done."},
}
_REOPENED = {
    "fr": "Demande rouverte : elle sera traitée de nouveau.",
    "en": "Request reopened: it will be handled again.",
}
# FixMyStreet update statuses (upper case), from the work order's status and outcome
_UPDATE_STATUS = {
    "new": "OPEN",
    "assigned": "ACTION_SCHEDULED",
    "en_route": "IN_PROGRESS",
    "on_site": "IN_PROGRESS",
    "on_hold": "IN_PROGRESS",
    "cancelled": "CLOSED",
}
_OUTCOME_STATUS = {
    "fixed": "FIXED",
    "no_condition_found": "NO_FURTHER_ACTION",
    "duplicate": "DUPLICATE",
    "not_city_responsibility": "NOT_COUNCILS_RESPONSIBILITY",
    "referred": "INTERNAL_REFERRAL",
    "unable_to_access": "UNABLE_TO_FIX",
    "partially_done": "CLOSED",
}


def _notes(wo_status: str | None, outcome: str | None, request_status: str, lang: str) -> str:
    if wo_status is None:
        key = "completed" if request_status == "closed" else "new"
        return _WO_NOTES[key][lang]
    note = _WO_NOTES.get(wo_status, _WO_NOTES["new"])[lang]
    if wo_status == "completed" and outcome in _OUTCOME_NOTES:
        note = f"{note} {_OUTCOME_NOTES[outcome][lang]}"
    return note


def update_status(wo_status: str, outcome: str | None) -> str:
    if wo_status == "completed":
        return _OUTCOME_STATUS.get(outcome or "", "CLOSED")
    return _UPDATE_STATUS.get(wo_status, "OPEN")


async def _ready(tx: AsyncSession, shas: Iterable[str]) -> set[str]:
    """The photos whose public, metadata-free derivatives exist."""
    wanted = set(shas)
    if not wanted:
        return set()
    rows = await tx.execute(
        select(Photo.sha256).where(
            Photo.sha256.in_(wanted),  # type: ignore[attr-defined]
            Photo.derivatives_at.is_not(None),  # type: ignore[union-attr]
        )
    )
    return set(rows.scalars())


def _photo_url(settings: Settings, sha256: str | None, ready: set[str]) -> str | None:
    if not sha256 or sha256 not in ready:
        return None
    return photos.public_photo_urls(settings, sha256).display


async def request_documents(
    tx: AsyncSession,
    settings: Settings,
    requests: Sequence[ServiceRequest],
    lang: str,
) -> list[dict[str, Any]]:
    types = await requests_service.service_types_by_id(tx, {r.service_type_id for r in requests})
    wo_ids = {r.work_order_id for r in requests if r.work_order_id is not None}
    wos: dict[int, WorkOrder] = {}
    if wo_ids:
        rows = await tx.execute(select(WorkOrder).where(WorkOrder.id.in_(wo_ids)))  # type: ignore[union-attr]
        wos = {wo.id: wo for wo in rows.scalars() if wo.id is not None}
    extras: dict[int, Open311RequestExtra] = {}
    ids = [r.id for r in requests if r.id is not None]
    if ids:
        rows2 = await tx.execute(
            select(Open311RequestExtra).where(
                Open311RequestExtra.service_request_id.in_(ids)  # type: ignore[attr-defined]
            )
        )
        extras = {e.service_request_id: e for e in rows2.scalars()}
    first_photo: dict[int, str] = {}
    if ids:
        rows3 = await tx.execute(
            select(RequestPhoto)
            .where(RequestPhoto.service_request_id.in_(ids))  # type: ignore[attr-defined]
            .order_by(RequestPhoto.id)  # type: ignore[arg-type]
        )
        for photo in rows3.scalars():
            first_photo.setdefault(photo.service_request_id, photo.sha256)
    ready = await _ready(tx, first_photo.values())
    documents = []
    for request in requests:
        st = types[request.service_type_id]
        wo = wos.get(request.work_order_id) if request.work_order_id else None
        extra = extras.get(request.id) if request.id is not None else None
        updated = max(request.updated_at, wo.updated_at) if wo else request.updated_at
        expected = wo.due_at if wo else request.created_at + timedelta(hours=st.sla_hours)
        sha = first_photo.get(request.id) if request.id is not None else None
        documents.append(
            {
                "service_request_id": str(request.id),
                "status": "closed" if request.status == "closed" else "open",
                "status_notes": _notes(
                    wo.status if wo else None, wo.outcome if wo else None, request.status, lang
                ),
                "service_name": _lang(st, "name", lang),
                "service_code": st.code,
                "description": request.description or None,
                "agency_responsible": _AGENCY.get(st.category, _AGENCY["other"])[lang],
                "service_notice": None,
                "requested_datetime": w3c(request.created_at),
                "updated_datetime": w3c(updated),
                "expected_datetime": w3c(expected),
                "address": request.address or "",
                "address_id": extra.address_id if extra else None,
                "zipcode": None,
                "lat": request.lat,
                "long": request.lon,
                "media_url": _photo_url(settings, sha, ready) or request.media_url,
            }
        )
    return documents


@dataclass(frozen=True)
class RequestQuery:
    ids: list[str]
    service_codes: list[str]
    statuses: list[str]
    start: datetime | None
    end: datetime | None


def _csv(raw: str | None) -> list[str]:
    return [p.strip() for p in (raw or "").split(",") if p.strip()]


def build_query(params: dict[str, str]) -> RequestQuery:
    statuses = [s.lower() for s in _csv(params.get("status"))]
    for status in statuses:
        if status not in ("open", "closed"):
            raise Invalid("open311_status_invalid", status=status[:40])
    start = params.get("start_date")
    end = params.get("end_date")
    return RequestQuery(
        ids=_csv(params.get("service_request_id")),
        service_codes=_csv(params.get("service_code")),
        statuses=statuses,
        start=parse_w3c(start, "start_date") if start and start.strip() else None,
        end=parse_w3c(end, "end_date") if end and end.strip() else None,
    )


def _window(start: datetime | None, end: datetime | None) -> tuple[datetime, datetime | None]:
    if start is None:
        start = (end or utcnow()) - DEFAULT_WINDOW
    return start, end


def _ids(raw: Iterable[str]) -> list[int]:
    ids = []
    for part in raw:
        if part.isascii() and part.isdigit() and 1 <= int(part) <= MAX_ID:
            ids.append(int(part))
    return ids


@dataclass(frozen=True)
class Page:
    number: int = 1
    size: int = MAX_RESULTS


def page_of(params: dict[str, str]) -> Page:
    """``page`` (from 1) and ``page_size`` (1–1000, default 1000): the common extension."""
    values = []
    for name, default, high in (("page", 1, 1_000_000), ("page_size", MAX_RESULTS, MAX_RESULTS)):
        raw = (params.get(name) or "").strip()
        if not raw:
            values.append(default)
            continue
        if not (raw.isascii() and raw.isdigit() and len(raw) <= 8) or not 1 <= int(raw) <= high:
            raise invalid(name)
        values.append(int(raw))
    return Page(number=values[0], size=values[1])


async def find_requests(
    tx: AsyncSession, query: RequestQuery, page: Page | None = None
) -> list[ServiceRequest]:
    page = page or Page()
    stmt = select(ServiceRequest)
    if query.ids:
        # service_request_id overrides every other filter
        stmt = stmt.where(ServiceRequest.id.in_(_ids(query.ids) or [0]))  # type: ignore[union-attr]
    else:
        if query.service_codes:
            stmt = stmt.join(ServiceType, ServiceType.id == ServiceRequest.service_type_id).where(  # type: ignore[arg-type]
                ServiceType.code.in_(query.service_codes)  # type: ignore[attr-defined]
            )
        if query.statuses and set(query.statuses) != {"open", "closed"}:
            if "closed" in query.statuses:
                stmt = stmt.where(ServiceRequest.status == "closed")
            else:
                stmt = stmt.where(ServiceRequest.status != "closed")
        start, end = _window(query.start, query.end)
        stmt = stmt.where(ServiceRequest.created_at >= start)
        if end is not None:
            stmt = stmt.where(ServiceRequest.created_at <= end)
    # newest first, the id breaking ties: a stable order, so pages neither skip nor repeat
    stmt = (
        stmt.order_by(ServiceRequest.created_at.desc(), ServiceRequest.id.desc())  # type: ignore[attr-defined, union-attr]
        .limit(page.size)
        .offset((page.number - 1) * page.size)
    )
    return list((await tx.execute(stmt)).scalars())


async def request_by_id(tx: AsyncSession, raw_id: str) -> ServiceRequest:
    ids = _ids([raw_id])
    found = await tx.get(ServiceRequest, ids[0]) if ids else None
    if found is None:
        raise Open311NotFound("open311_request_not_found", id=raw_id[:40])
    return found


async def request_by_token(tx: AsyncSession, token: str) -> ServiceRequest:
    found = (
        await tx.execute(select(ServiceRequest).where(ServiceRequest.tracking_token == token[:64]))
    ).scalar_one_or_none()
    if found is None:
        raise Open311NotFound("open311_token_not_found")
    return found


# ------------------------------------------------------------------ FixMyStreet updates

_STATUS_ACTIONS = (
    "assigned",
    "reassigned",
    "unassign",
    "start_route",
    "arrive",
    "hold",
    "resume",
    "complete",
    "cancel",
    "reopen",
    "merged",
)


async def request_updates(
    tx: AsyncSession,
    settings: Settings,
    start: datetime | None,
    end: datetime | None,
    lang: str,
) -> list[dict[str, Any]]:
    """One update per (work-order status change, linked request); ids are stable."""
    start, end = _window(start, end)
    stmt = select(AuditEvent).where(
        AuditEvent.entity_type == "work_order",
        AuditEvent.action.in_(_STATUS_ACTIONS),  # type: ignore[attr-defined]
        AuditEvent.at >= start,
    )
    if end is not None:
        stmt = stmt.where(AuditEvent.at <= end)
    stmt = stmt.order_by(AuditEvent.at, AuditEvent.id).limit(MAX_RESULTS * 4)  # type: ignore[arg-type]
    events = [e for e in (await tx.execute(stmt)).scalars() if "status" in (e.changes or {})]
    if not events:
        return []
    wo_ids = {e.entity_id for e in events}
    linked: dict[int, list[ServiceRequest]] = {}
    rows = await tx.execute(
        select(ServiceRequest)
        .where(ServiceRequest.work_order_id.in_(wo_ids))  # type: ignore[union-attr]
        .order_by(ServiceRequest.id)  # type: ignore[arg-type]
    )
    for request in rows.scalars():
        assert request.work_order_id is not None
        linked.setdefault(request.work_order_id, []).append(request)
    after_photos = await _after_photos(tx, wo_ids)
    ready = await _ready(tx, after_photos.values())
    updates: list[dict[str, Any]] = []
    for event in events:
        new_status = event.changes["status"][1]
        outcome = (event.changes.get("outcome") or [None, None])[1]
        if new_status == "completed" and outcome is None:
            wo = await tx.get(WorkOrder, event.entity_id)
            outcome = wo.outcome if wo else None
        sha = after_photos.get(event.entity_id) if new_status == "completed" else None
        reopened = event.action == "reopen"
        for request in linked.get(event.entity_id, []):
            if event.at < request.created_at:
                continue
            updates.append(
                {
                    "update_id": f"{event.id}-{request.id}",
                    "service_request_id": str(request.id),
                    "status": "OPEN" if reopened else update_status(str(new_status), outcome),
                    "updated_datetime": w3c(event.at),
                    "description": _REOPENED[lang]
                    if reopened
                    else _notes(str(new_status), outcome, request.status, lang),
                    "media_url": _photo_url(settings, sha, ready),
                }
            )
            if len(updates) >= MAX_RESULTS:
                return updates
    return updates


async def _after_photos(tx: AsyncSession, wo_ids: set[int]) -> dict[int, str]:
    rows = await tx.execute(
        select(WorkOrderPhoto)
        .where(WorkOrderPhoto.work_order_id.in_(wo_ids), WorkOrderPhoto.kind == "after")  # type: ignore[attr-defined]
        .order_by(WorkOrderPhoto.created_at)  # type: ignore[arg-type]
    )
    found: dict[int, str] = {}
    for photo in rows.scalars():
        found.setdefault(photo.work_order_id, photo.sha256)
    return found


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
