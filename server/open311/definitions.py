"""Open311 service list and service definitions: the active service types, their attribute
definitions (admin-edited) and the check of a client's answers to them."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from server.errors import Invalid, NotFound
from server.open311.models import (
    AttributeDefinition,
    Open311ServiceAttribute,
)
from server.open311.render import w3c
from server.open311.service import Open311NotFound, parse_w3c
from server.requests.models import ServiceType

_GROUPS = {
    "snow": {"fr": "Déneigement", "en": "Snow removal"},
    "waste": {"fr": "Matières résiduelles", "en": "Waste collection"},
    "other": {"fr": "Travaux publics", "en": "Public works"},
}


def localized(row: Any, base: str, lang: str) -> Any:
    return getattr(row, f"{base}_{lang}")


async def _active_types(tx: AsyncSession) -> list[ServiceType]:
    rows = await tx.execute(
        select(ServiceType).where(col(ServiceType.active).is_(True)).order_by(col(ServiceType.code))
    )
    return list(rows.scalars())


async def type_by_code(tx: AsyncSession, code: str) -> ServiceType | None:
    st = (
        await tx.execute(select(ServiceType).where(col(ServiceType.code) == code))
    ).scalar_one_or_none()
    return st if st is not None and st.active else None


async def attributes_of(tx: AsyncSession, service_type_id: int) -> list[Open311ServiceAttribute]:
    rows = await tx.execute(
        select(Open311ServiceAttribute)
        .where(col(Open311ServiceAttribute.service_type_id) == service_type_id)
        .order_by(col(Open311ServiceAttribute.order), col(Open311ServiceAttribute.code))
    )
    return list(rows.scalars())


async def list_services(tx: AsyncSession, lang: str) -> list[dict[str, Any]]:
    with_attributes = set(
        (
            await tx.execute(select(col(Open311ServiceAttribute.service_type_id)).distinct())
        ).scalars()
    )
    return [
        {
            "service_code": st.code,
            "service_name": localized(st, "name", lang),
            "description": localized(st, "description", lang),
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
        "datatype_description": localized(attr, "datatype_description", lang),
        "order": attr.order,
        "description": localized(attr, "description", lang),
        "values": [{"key": v["key"], "name": v[f"name_{lang}"]} for v in attr.values],
    }


async def service_definition(tx: AsyncSession, code: str, lang: str) -> dict[str, Any]:
    st = await type_by_code(tx, code)
    if st is None or st.id is None:
        raise Open311NotFound("open311_service_not_found", code=code[:80])
    attrs = await attributes_of(tx, st.id)
    return {
        "service_code": st.code,
        "attributes": [_attribute_document(a, lang) for a in attrs],
    }


async def replace_attributes(
    tx: AsyncSession, code: str, definitions: Sequence[AttributeDefinition]
) -> list[AttributeDefinition]:
    """Admin: replace a service type's attribute definitions."""
    st = await type_by_code(tx, code)
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
    for old in await attributes_of(tx, st.id):
        await tx.delete(old)
    await tx.flush()
    for definition in definitions:
        data = definition.model_dump()
        tx.add(Open311ServiceAttribute(service_type_id=st.id, **data))
    await tx.flush()
    return list(definitions)


async def attribute_definitions(tx: AsyncSession, code: str) -> list[AttributeDefinition]:
    st = await type_by_code(tx, code)
    if st is None or st.id is None:
        raise NotFound("service_type", code)
    return [
        AttributeDefinition.model_validate(a.model_dump()) for a in await attributes_of(tx, st.id)
    ]


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
