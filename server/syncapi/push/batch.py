"""Push: what one batch of mutations carries between its steps (loaded rows, rows to insert,
per-order facts), and the small readings of a mutation every step shares."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from server.accounts.auth import Actor
from server.dbtypes import table_of, utcnow
from server.photos.models import WorkOrderPhoto
from server.syncapi.models import (
    MutationIn,
    SyncClient,
    SyncConflict,
)
from server.workorders.models import MaterialEntry, WorkOrder, WorkOrderNote
from sync.policies import (
    Verdict,
)
from sync.states import Status

STATUS_WRITES = ("workorder.set_status", "workorder.complete")


def status_version(wo: WorkOrder) -> int:
    return int((wo.field_versions or {}).get("status", 1))


@dataclass(frozen=True, slots=True)
class Note:
    """A note the batch added (what the idempotence checks read; the row is a plain insert)."""

    id: str
    work_order_id: int
    body: str


@dataclass(frozen=True, slots=True)
class Entry:
    """A material entry the batch added (as :class:`Note`)."""

    id: str
    work_order_id: int
    material_code: str
    quantity: float
    unit: str
    voids_id: str | None


@dataclass
class Batch:
    """Rows a batch needs, loaded once (no N+1)."""

    actor: Actor
    crew_id: int
    client_id: str
    orders: dict[int, WorkOrder]
    exits: set[int]  # work orders this crew was reassigned away from
    notes: dict[str, WorkOrderNote | Note]
    materials: dict[str, MaterialEntry | Entry]
    voided: set[str]  # material entries already voided
    photos: dict[str, WorkOrderPhoto]
    with_requests: set[int]  # work orders with linked service requests (status changes only)
    away_conflicts: dict[int, int | SyncConflict] = field(default_factory=dict)  # wo id -> open
    # new notes and material entries, inserted as plain rows (one executemany per table) by
    # write_rows, not as ORM objects: building 50 SQLModel objects cost more than their insert
    note_rows: list[dict[str, Any]] = field(default_factory=list)
    entry_rows: list[dict[str, Any]] = field(default_factory=list)
    now: datetime = field(default_factory=utcnow)
    touched: set[int] = field(default_factory=set)  # orders whose embedded lists changed
    # wo id -> (base_version, target) of this client's last status write on it that was not
    # rejected: what its screen showed for its next one (sync.policies.seen_status)
    previous: dict[int, tuple[int | None, Status]] = field(default_factory=dict)


@dataclass
class Applied:
    verdict: Verdict
    conflict: int | SyncConflict | None = None  # an id, or a row whose id the next flush sets

    @property
    def conflict_id(self) -> int | None:
        if isinstance(self.conflict, SyncConflict):
            return self.conflict.id
        return self.conflict


CLIENTS: Any = table_of(SyncClient)


def work_order_id(m: MutationIn) -> int | None:
    value = m.args.get("work_order_id")
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 2_147_483_647:
        return value
    return None
