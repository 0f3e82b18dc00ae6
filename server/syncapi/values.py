"""Offline sync: the value of a work order in a device's store (docs/sync-protocol.md section 5),
children included; the pull sends it, the dispatcher's desk shows it beside a conflict."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from server.photos.models import Photo, WorkOrderPhoto
from server.syncapi.models import SyncConflict
from server.workorders.models import MaterialEntry, WorkOrder, WorkOrderNote


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


async def work_order_values(
    tx: AsyncSession,
    orders: Sequence[WorkOrder],
    codes: dict[int, str],
    *,
    away: set[int],
    crew_id: int | None,
) -> dict[int, dict[str, Any]]:
    """The pull value of each order, children loaded with one query per kind."""
    ids = [wo.id for wo in orders if wo.id is not None]
    if not ids:
        return {}
    notes = await _children(tx, WorkOrderNote, ids, _note_value)
    materials = await _children(tx, MaterialEntry, ids, _material_value)
    photos = await _photos(tx, ids)
    conflicts = await _conflicts(tx, ids, crew_id)
    values = {}
    for wo in orders:
        assert wo.id is not None
        values[wo.id] = {
            **_order_value(wo, codes),
            "reassigned_away": wo.id in away,
            "field_versions": dict(wo.field_versions or {}),
            "notes": notes[wo.id],
            "materials": materials[wo.id],
            "photos": photos[wo.id],
            "conflicts": conflicts[wo.id],
        }
    return values


def _order_value(wo: WorkOrder, codes: dict[int, str]) -> dict[str, Any]:
    return {
        "id": wo.id,
        "version": wo.version,
        "status": wo.status,
        "service_code": codes.get(wo.service_type_id, ""),
        "title": wo.title,
        "description": wo.description,
        "address": wo.address,
        "lat": wo.lat,
        "lon": wo.lon,
        "borough_code": wo.borough_code,
        "priority": wo.priority,
        "due_at": iso(wo.due_at),
        "crew_id": wo.crew_id,
        "outcome": wo.outcome,
        "outcome_note": wo.outcome_note,
        "completed_at": iso(wo.completed_at),
        "cancelled_at": iso(wo.cancelled_at),
        "cancel_reason": wo.cancel_reason,
        "work_performed": wo.work_performed,
    }


async def _children(
    tx: AsyncSession, model: Any, ids: list[int], value: Callable[[Any], dict[str, Any]]
) -> dict[int, list[dict[str, Any]]]:
    """Rows of ``model`` (notes, material entries) by work order, in id order."""
    by_order: dict[int, list[dict[str, Any]]] = {i: [] for i in ids}
    rows = await tx.execute(select(model).where(model.work_order_id.in_(ids)).order_by(model.id))
    for row in rows.scalars():
        by_order[row.work_order_id].append(value(row))
    return by_order


def _note_value(n: WorkOrderNote) -> dict[str, Any]:
    return {"id": n.id, "body": n.body, "author": n.author, "created_at": iso(n.created_at)}


def _material_value(e: MaterialEntry) -> dict[str, Any]:
    return {
        "id": e.id,
        "material_code": e.material_code,
        "quantity": e.quantity,
        "unit": e.unit,
        "voids": e.voids_id,
        "created_at": iso(e.created_at),
    }


async def _photos(tx: AsyncSession, ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    """Attached photos by work order, each saying whether the server holds its bytes."""
    photos: dict[int, list[dict[str, Any]]] = {i: [] for i in ids}
    photo_rows = list(
        (
            await tx.execute(
                select(WorkOrderPhoto)
                .where(col(WorkOrderPhoto.work_order_id).in_(ids))
                .order_by(col(WorkOrderPhoto.id))
            )
        ).scalars()
    )
    received: set[str] = set()
    if photo_rows:
        received = set(
            (
                await tx.execute(
                    select(col(Photo.sha256)).where(
                        col(Photo.sha256).in_({p.sha256 for p in photo_rows})
                    )
                )
            ).scalars()
        )
    for p in photo_rows:
        photos[p.work_order_id].append(
            {
                "id": p.id,
                "sha256": p.sha256,
                "kind": p.kind,
                "received": p.sha256 in received,
                "created_at": iso(p.created_at),
            }
        )
    return photos


async def _conflicts(
    tx: AsyncSession, ids: list[int], crew_id: int | None
) -> dict[int, list[dict[str, Any]]]:
    """Conflicts by work order (only the crew's own when ``crew_id`` is given)."""
    conflicts: dict[int, list[dict[str, Any]]] = {i: [] for i in ids}
    query = select(SyncConflict).where(col(SyncConflict.work_order_id).in_(ids))
    if crew_id is not None:
        query = query.where(col(SyncConflict.crew_id) == crew_id)
    for c in (await tx.execute(query.order_by(col(SyncConflict.id)))).scalars():
        conflicts[c.work_order_id or 0].append(
            {
                "id": c.id,
                "kind": c.kind,
                "status": c.status,
                "resolution": c.resolution,
                "mutation_id": c.mutation_id,
                "client_id": c.client_id,
            }
        )
    return conflicts
