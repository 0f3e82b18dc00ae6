"""Per-field merge policies for offline edits: snapshots in, verdicts out.

Pure standard library. The server loads the work order, builds an :class:`OrderView` and asks
these functions what to do with a crew's offline write; it then applies the verdict. Concurrency
is decided by server versions only: a write is *causal* when the field's version (the order
version at which the field last changed) is at most the ``base_version`` the device edited, and
*concurrent* otherwise. Device clocks never decide anything.

Policies (docs/sync-protocol.md section 4, /work/shared/SYNC.md):

- status: the state machine (:mod:`sync.states`) for causal writes; for concurrent writes a fixed
  precedence (:data:`sync.states.STATUS_PRECEDENCE`): the device's target wins only if it ranks
  higher and is legal from the current status, else the server's status stands and a
  ``status_superseded`` conflict records the loser;
- completion facts are never discarded: completing an order that was cancelled (or unassigned)
  meanwhile keeps the facts in a high-severity conflict and flags the order "work performed";
- dispatcher-owned fields: a crew's attempt becomes a ``suggestion`` conflict;
- notes, material entries and photos are UUID-keyed append-only sets (:func:`decide_append`);
- edits from a crew the order was reassigned away from are accepted and flagged.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from sync.states import (
    STATUS_PRECEDENCE,
    Action,
    Outcome,
    Role,
    Status,
    TransitionRefused,
    action_for_target,
    next_status,
)

__all__ = [
    "ConflictKind",
    "MutationOutcome",
    "OrderView",
    "Severity",
    "Verdict",
    "decide_append",
    "decide_completion",
    "decide_dispatch_field",
    "decide_status",
    "is_concurrent",
    "severity_of",
]


class MutationOutcome(StrEnum):
    """What happened to one pushed mutation (stable wire values)."""

    APPLIED = "applied"
    APPLIED_WITH_CONFLICT = "applied_with_conflict"
    REJECTED = "rejected"


class ConflictKind(StrEnum):
    """Why a conflict record exists (stable wire values)."""

    INVALID_TRANSITION = "invalid_transition"
    REJECTED = "rejected"
    STATUS_SUPERSEDED = "status_superseded"
    COMPLETION_NOT_APPLIED = "completion_not_applied"
    COMPLETION_DUPLICATE = "completion_duplicate"
    SUGGESTION = "suggestion"
    REASSIGNED_AWAY = "reassigned_away"


class Severity(StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"


_SEVERITY: dict[ConflictKind, Severity] = {
    ConflictKind.INVALID_TRANSITION: Severity.NORMAL,
    ConflictKind.REJECTED: Severity.NORMAL,
    ConflictKind.STATUS_SUPERSEDED: Severity.NORMAL,
    ConflictKind.COMPLETION_NOT_APPLIED: Severity.HIGH,
    ConflictKind.COMPLETION_DUPLICATE: Severity.LOW,
    ConflictKind.SUGGESTION: Severity.LOW,
    ConflictKind.REASSIGNED_AWAY: Severity.NORMAL,
}


def severity_of(kind: ConflictKind) -> Severity:
    return _SEVERITY[kind]


@dataclass(frozen=True, slots=True)
class OrderView:
    """What the policies need to know about a work order and the device writing to it."""

    status: Status
    has_crew: bool
    status_version: int
    """Order version at which ``status`` last changed."""
    crew_holds_order: bool
    """The writing device's crew is the order's crew (False: reassigned away from it)."""
    outcome: Outcome | None = None
    outcome_note: str | None = None


@dataclass(frozen=True, slots=True)
class Verdict:
    """What to do: ``action`` to run through the state machine (None: leave the status)."""

    outcome: MutationOutcome
    action: Action | None = None
    conflict: ConflictKind | None = None
    code: str | None = None
    """Per-mutation code for the device (a refusal code or the conflict kind)."""
    work_performed: bool = False
    """Flag the order "work performed" (completion facts kept while the status is not changed)."""


def is_concurrent(field_version: int, base_version: int | None) -> bool:
    """A write is concurrent when the field changed after the version the device edited."""
    return field_version > (base_version or 0)


def _applied(action: Action | None) -> Verdict:
    return Verdict(MutationOutcome.APPLIED, action=action)


def _conflict(kind: ConflictKind, **kw: object) -> Verdict:
    return Verdict(MutationOutcome.APPLIED_WITH_CONFLICT, conflict=kind, code=kind.value, **kw)  # type: ignore[arg-type]


def _legal(order: OrderView, action: Action | None, outcome: Outcome | None = None) -> str | None:
    """None when ``action`` is legal for a crew from the order's status, else the refusal code."""
    if action is None:
        return "illegal_transition"
    try:
        next_status(order.status, action, Role.CREW, has_crew=order.has_crew, outcome=outcome)
    except TransitionRefused as exc:
        return exc.code.value
    return None


def decide_status(order: OrderView, target: Status, base_version: int | None) -> Verdict:
    """A crew moved the order to ``target`` (en_route, on_site, on_hold) while offline."""
    if target is order.status:
        return _applied(None)
    if not order.crew_holds_order:
        return _conflict(ConflictKind.REASSIGNED_AWAY)
    action = action_for_target(order.status, target)
    refusal = _legal(order, action)
    if not is_concurrent(order.status_version, base_version):
        if refusal is not None:
            return Verdict(
                MutationOutcome.REJECTED, conflict=ConflictKind.INVALID_TRANSITION, code=refusal
            )
        return _applied(action)
    if refusal is None and STATUS_PRECEDENCE[target] > STATUS_PRECEDENCE[order.status]:
        return _applied(action)
    return _conflict(ConflictKind.STATUS_SUPERSEDED)


def decide_completion(
    order: OrderView, outcome: Outcome, note: str | None, base_version: int | None
) -> Verdict:
    """A crew completed the order while offline. Completion facts are never discarded."""
    del base_version  # completion is decided by the current status alone, whatever was seen
    if order.status is Status.COMPLETED:
        if order.outcome is outcome and (order.outcome_note or None) == (note or None):
            return _applied(None)
        return _conflict(ConflictKind.COMPLETION_DUPLICATE)
    refusal = _legal(order, Action.COMPLETE, outcome)
    if refusal is not None:
        # Cancelled, or unassigned meanwhile: keep the facts, flag, let dispatch decide.
        return _conflict(ConflictKind.COMPLETION_NOT_APPLIED, work_performed=True)
    if not order.crew_holds_order:
        return _conflict(ConflictKind.REASSIGNED_AWAY, action=Action.COMPLETE)
    return _applied(Action.COMPLETE)


def decide_dispatch_field(field: str) -> Verdict:
    """A crew tried to change a dispatcher-owned field: record it as a suggestion."""
    del field
    return _conflict(ConflictKind.SUGGESTION)


def decide_append(*, exists: bool, same: bool, crew_holds_order: bool) -> Verdict:
    """A UUID-keyed append (note, material entry, photo reference).

    ``exists``: the UUID is already stored; ``same``: with the same content. A re-send is a
    no-op; the same UUID with other content is refused (``uuid_reused``). New entries are
    accepted on any status; from a reassigned-away crew they are accepted and flagged.
    """
    if exists:
        if same:
            return _applied(None)
        return Verdict(MutationOutcome.REJECTED, conflict=ConflictKind.REJECTED, code="uuid_reused")
    if not crew_holds_order:
        return _conflict(ConflictKind.REASSIGNED_AWAY)
    return _applied(None)
