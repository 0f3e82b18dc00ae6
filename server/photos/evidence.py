"""Photo evidence of a completed work order: each attachment's distance and flags, what the
service type requires and what is still missing, the dispatcher's view of it.

The ``on_*`` functions are the event hooks (``events.photo_attached``,
``events.work_order_changed``, a photo's bytes arriving).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from server.dbtypes import utcnow
from server.geo import haversine_m
from server.i18n import translate
from server.photos.models import (
    EvidencePhoto,
    Photo,
    WorkOrderEvidence,
    WorkOrderEvidencePublic,
    WorkOrderPhoto,
)
from server.photos.service import get_photo, original_url, to_public
from server.requests.models import ServiceType
from server.settings import Settings, get_settings
from server.workorders.models import WorkOrder

FLAG_FAR = "far_from_site"


FLAG_NO_LOCATION = "no_location"


FLAG_EXIF_FAR = "exif_location_mismatch"


FLAG_OLD = "taken_long_before_completion"


FLAG_EXIF_TIME = "exif_time_mismatch"


FLAG_AWAITING = "awaiting_upload"


def evaluate(
    attachment: WorkOrderPhoto, photo: Photo | None, wo: WorkOrder, settings: Settings
) -> tuple[float | None, list[str]]:
    """(distance from the job site in metres, flags) for one attached photo.

    Position: the device's Geolocation at capture time, else EXIF GPS. Time: the earlier of the
    device's capture time and EXIF DateTimeOriginal. Both sources disagreeing is itself a flag
    (a photo picked from the gallery rather than taken on the spot).
    """
    flags: list[str] = []
    max_distance = settings.evidence_max_distance_m
    max_age = timedelta(hours=settings.evidence_max_age_h)
    device = (
        (attachment.captured_lat, attachment.captured_lon)
        if attachment.captured_lat is not None and attachment.captured_lon is not None
        else None
    )
    exif = (
        (photo.exif_lat, photo.exif_lon)
        if photo is not None and photo.exif_lat is not None and photo.exif_lon is not None
        else None
    )
    position = device or exif
    distance = haversine_m(wo.lat, wo.lon, *position) if position else None
    if photo is None:
        flags.append(FLAG_AWAITING)
    if distance is not None and distance > max_distance:
        flags.append(FLAG_FAR)
    if position is None and photo is not None:
        flags.append(FLAG_NO_LOCATION)
    if device and exif and haversine_m(*device, *exif) > max_distance:
        flags.append(FLAG_EXIF_FAR)
    exif_time = photo.exif_taken_at if photo is not None else None
    # the earliest credible time: a gallery photo attached today still shows its EXIF date
    taken = min((t for t in (attachment.captured_at, exif_time) if t is not None), default=None)
    if taken is not None and wo.completed_at is not None and taken < wo.completed_at - max_age:
        flags.append(FLAG_OLD)
    if attachment.captured_at and exif_time and abs(attachment.captured_at - exif_time) > max_age:
        flags.append(FLAG_EXIF_TIME)
    return (round(distance, 1) if distance is not None else None), flags


async def _reevaluate(
    tx: AsyncSession, attachments: Iterable[WorkOrderPhoto], wo: WorkOrder, settings: Settings
) -> None:
    for attachment in attachments:
        photo = await get_photo(tx, attachment.sha256)
        distance, flags = evaluate(attachment, photo, wo, settings)
        if attachment.distance_m != distance or list(attachment.flags or []) != flags:
            attachment.distance_m = distance
            attachment.flags = flags
            tx.add(attachment)
    await tx.flush()


async def _attachments_of(tx: AsyncSession, work_order_id: int) -> list[WorkOrderPhoto]:
    rows = await tx.execute(
        select(WorkOrderPhoto)
        .where(col(WorkOrderPhoto.work_order_id) == work_order_id)
        .order_by(col(WorkOrderPhoto.created_at), col(WorkOrderPhoto.id))
    )
    return list(rows.scalars())


async def present_kinds(tx: AsyncSession, work_order_id: int) -> set[str]:
    """Kinds of evidence whose bytes the server holds (an attachment alone is not evidence)."""
    rows = await tx.execute(
        select(col(WorkOrderPhoto.kind))
        .join(Photo, col(Photo.sha256) == col(WorkOrderPhoto.sha256))
        .where(col(WorkOrderPhoto.work_order_id) == work_order_id)
    )
    return set(rows.scalars())


async def missing_kinds(tx: AsyncSession, work_order_id: int, required: list[str]) -> list[str]:
    present = await present_kinds(tx, work_order_id)
    return [kind for kind in required if kind not in present]


async def refresh_evidence(tx: AsyncSession, work_order_id: int) -> WorkOrderEvidence | None:
    """Re-check an open evidence record; it turns ``complete`` once nothing is missing."""
    evidence = await tx.get(WorkOrderEvidence, work_order_id)
    if evidence is None or evidence.status == "complete":
        return evidence
    missing = await missing_kinds(tx, work_order_id, list(evidence.required))
    now = utcnow()
    if missing != list(evidence.missing):
        evidence.missing = missing
        evidence.updated_at = now
    if not missing:
        evidence.status = "complete"
        evidence.resolved_at = now
        evidence.updated_at = now
    tx.add(evidence)
    await tx.flush()
    return evidence


async def open_evidence(tx: AsyncSession, wo: WorkOrder, settings: Settings) -> None:
    """On completion: record what the service type requires and what is still missing."""
    assert wo.id is not None
    service_type = await tx.get(ServiceType, wo.service_type_id)
    required = [str(kind) for kind in (service_type.evidence_required if service_type else [])]
    evidence = await tx.get(WorkOrderEvidence, wo.id)
    if not required:
        if evidence is not None:
            await tx.delete(evidence)
            await tx.flush()
        return
    now = utcnow()
    missing = await missing_kinds(tx, wo.id, required)
    if evidence is None:
        evidence = WorkOrderEvidence(work_order_id=wo.id, completed_at=now, due_at=now)
    evidence.required = required
    evidence.missing = missing
    evidence.completed_at = wo.completed_at or now
    # the delay runs from the completion's arrival: a device offline all day syncs its
    # completion and its photos together, and deserves the same grace
    evidence.due_at = now + timedelta(minutes=settings.photo_missing_delay_min)
    evidence.status = "pending" if missing else "complete"
    evidence.flagged_at = None
    evidence.resolved_at = None if missing else now
    evidence.updated_at = now
    tx.add(evidence)
    await tx.flush()


async def on_photo_attached(
    tx: AsyncSession, attachment: WorkOrderPhoto, work_order: WorkOrder
) -> None:
    """events.photo_attached: flags of the new attachment, and the work order's evidence."""
    settings = get_settings()
    await _reevaluate(tx, [attachment], work_order, settings)
    assert work_order.id is not None
    await refresh_evidence(tx, work_order.id)


async def on_photo_stored(tx: AsyncSession, sha256: str, settings: Settings) -> None:
    """The bytes arrived: re-evaluate every attachment naming them (EXIF data is known now)."""
    attachments = list(
        (
            await tx.execute(select(WorkOrderPhoto).where(col(WorkOrderPhoto.sha256) == sha256))
        ).scalars()
    )
    by_order: dict[int, list[WorkOrderPhoto]] = {}
    for attachment in attachments:
        by_order.setdefault(attachment.work_order_id, []).append(attachment)
    for work_order_id, group in by_order.items():
        wo = await tx.get(WorkOrder, work_order_id)
        if wo is None:
            continue
        await _reevaluate(tx, group, wo, settings)
        await refresh_evidence(tx, work_order_id)


async def on_work_order_changed(
    tx: AsyncSession, wo: WorkOrder, before: dict[str, Any], action: str, actor: Any
) -> None:
    """events.work_order_changed: completion opens the evidence check; reopening drops it."""
    if not before or wo.id is None:
        return
    was_completed = before.get("status") == "completed"
    is_completed = wo.status == "completed"
    moved = before.get("lat") != wo.lat or before.get("lon") != wo.lon
    settings = get_settings()
    if (is_completed and not was_completed) or moved:
        await _reevaluate(tx, await _attachments_of(tx, wo.id), wo, settings)
    if is_completed and not was_completed:
        await open_evidence(tx, wo, settings)
    elif was_completed and not is_completed:
        await tx.execute(
            delete(WorkOrderEvidence).where(col(WorkOrderEvidence.work_order_id) == wo.id)
        )


def flag_label(flag: str, language: str, attachment: WorkOrderPhoto, settings: Settings) -> str:
    return translate(
        f"photo_flag_{flag}",
        language,
        distance=round(attachment.distance_m or 0),
        max_distance=round(settings.evidence_max_distance_m),
        max_age=settings.evidence_max_age_h,
    )


async def work_order_evidence(
    tx: AsyncSession, wo: WorkOrder, settings: Settings, language: str
) -> WorkOrderEvidencePublic:
    assert wo.id is not None
    attachments = await _attachments_of(tx, wo.id)
    photos: list[EvidencePhoto] = []
    for attachment in attachments:
        photo = await get_photo(tx, attachment.sha256)
        flags = [str(f) for f in attachment.flags or []]
        photos.append(
            EvidencePhoto(
                **attachment.model_dump(
                    include={
                        "id",
                        "sha256",
                        "kind",
                        "captured_at",
                        "captured_lat",
                        "captured_lon",
                        "captured_accuracy_m",
                        "created_at",
                        "distance_m",
                    }
                ),
                flags=flags,
                flag_labels=[flag_label(f, language, attachment, settings) for f in flags],
                uploaded=photo is not None,
                photo=to_public(photo, settings) if photo is not None else None,
                original_url=original_url(settings, attachment.sha256),
            )
        )
    evidence = await tx.get(WorkOrderEvidence, wo.id)
    if evidence is not None:
        required = [str(k) for k in evidence.required]
        status = evidence.status
    else:
        service_type = await tx.get(ServiceType, wo.service_type_id)
        required = [str(k) for k in (service_type.evidence_required if service_type else [])]
        status = "not_required" if not required else "open"
    missing = await missing_kinds(tx, wo.id, required)
    return WorkOrderEvidencePublic(
        work_order_id=wo.id,
        required=required,
        missing=missing,
        status=status,
        flagged_at=evidence.flagged_at if evidence else None,
        due_at=evidence.due_at if evidence else None,
        photos=photos,
    )
