"""Open311 requests out, as documents: the public fields of requests (never reporter contact
data) and the FixMyStreet status updates, in the client's language."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from server.audit import AuditEvent
from server.open311.definitions import localized
from server.open311.models import (
    Open311RequestExtra,
)
from server.open311.queries import window
from server.open311.render import w3c
from server.open311.service import MAX_RESULTS
from server.photos import service as photos
from server.photos.models import Photo, RequestPhoto, WorkOrderPhoto
from server.requests import service as requests_service
from server.requests.models import ServiceRequest
from server.settings import Settings
from server.workorders.models import WorkOrder

_AGENCY = {
    "snow": {"fr": "Ville de Québec — Déneigement", "en": "City of Québec — Snow removal"},
    "waste": {
        "fr": "Ville de Québec — Matières résiduelles",
        "en": "City of Québec — Waste management",
    },
    "other": {"fr": "Ville de Québec — Travaux publics", "en": "City of Québec — Public works"},
}


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
        select(col(Photo.sha256)).where(
            col(Photo.sha256).in_(wanted),
            col(Photo.derivatives_at).is_not(None),
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
        rows = await tx.execute(select(WorkOrder).where(col(WorkOrder.id).in_(wo_ids)))
        wos = {wo.id: wo for wo in rows.scalars() if wo.id is not None}
    extras: dict[int, Open311RequestExtra] = {}
    ids = [r.id for r in requests if r.id is not None]
    if ids:
        rows2 = await tx.execute(
            select(Open311RequestExtra).where(col(Open311RequestExtra.service_request_id).in_(ids))
        )
        extras = {e.service_request_id: e for e in rows2.scalars()}
    first_photo: dict[int, str] = {}
    if ids:
        rows3 = await tx.execute(
            select(RequestPhoto)
            .where(col(RequestPhoto.service_request_id).in_(ids))
            .order_by(col(RequestPhoto.id))
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
                "service_name": localized(st, "name", lang),
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
    start, end = window(start, end)
    stmt = select(AuditEvent).where(
        col(AuditEvent.entity_type) == "work_order",
        col(AuditEvent.action).in_(_STATUS_ACTIONS),
        col(AuditEvent.at) >= start,
    )
    if end is not None:
        stmt = stmt.where(col(AuditEvent.at) <= end)
    stmt = stmt.order_by(col(AuditEvent.at), col(AuditEvent.id)).limit(MAX_RESULTS * 4)
    events = [e for e in (await tx.execute(stmt)).scalars() if "status" in (e.changes or {})]
    if not events:
        return []
    wo_ids = {e.entity_id for e in events}
    linked: dict[int, list[ServiceRequest]] = {}
    rows = await tx.execute(
        select(ServiceRequest)
        .where(col(ServiceRequest.work_order_id).in_(wo_ids))
        .order_by(col(ServiceRequest.id))
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
        .where(col(WorkOrderPhoto.work_order_id).in_(wo_ids), col(WorkOrderPhoto.kind) == "after")
        .order_by(col(WorkOrderPhoto.created_at))
    )
    found: dict[int, str] = {}
    for photo in rows.scalars():
        found.setdefault(photo.work_order_id, photo.sha256)
    return found
