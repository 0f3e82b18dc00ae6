"""Per-field merge policies for offline edits: snapshots in, verdicts out.

Pure standard library. The server loads the work order, builds an :class:`OrderView` and asks
these functions what to do with a crew's offline write; it then applies the verdict. Concurrency
is decided by server versions only: a write is *causal* when the field's version (the order
version at which the field last changed) is at most the ``base_version`` the device edited, and
*concurrent* otherwise. Device clocks never decide anything.

Policies (docs/sync-protocol.md section 4, docs/adr/0010):

- status: a write must first be a legal move from the status the device *saw* when it made it
  (:func:`seen_status`: its replica at ``base_version`` plus its own earlier writes), else it is
  refused whatever arrived before it; then the state machine (:mod:`sync.states`) for causal
  writes, and for concurrent writes a fixed precedence (:data:`sync.states.STATUS_PRECEDENCE`):
  the device's target wins only if it ranks higher and is legal from the current status, else the
  server's status stands and a ``status_superseded`` conflict records the loser. Together these
  make the final status a function of the set of concurrent writes, whatever their arrival order
  (docs/adr/0022);
- completion facts are never discarded: completing an order that was cancelled (or unassigned)
  meanwhile keeps the facts in a high-severity conflict and flags the order "work performed";
- dispatcher-owned fields: a crew's attempt becomes a ``suggestion`` conflict;
- notes, material entries and photos are UUID-keyed append-only sets (:func:`decide_append`);
- edits from a crew the order was reassigned away from are accepted and flagged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from sync.states import (
    STATUS_PRECEDENCE,
    TRANSITIONS,
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
    "crew_path",
    "decide_append",
    "decide_completion",
    "decide_dispatch_field",
    "decide_status",
    "is_concurrent",
    "seen_status",
    "severity_of",
    "status_at",
    "trail_with",
]

TRAIL_LENGTH = 16
"""Status changes remembered per work order (``field_versions["status_trail"]``)."""


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
    seen: Status | None = None
    """The status the device saw when it made the write (:func:`seen_status`); None: unknown
    (no ``base_version``, or older than the remembered trail), then only the current status
    judges the write."""


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
    then: tuple[Action, ...] = ()
    """Further actions to run after ``action``, in order (a concurrent write that wins is applied
    along the crew's shortest path when no single transition leads there)."""


def is_concurrent(field_version: int, base_version: int | None) -> bool:
    """A write is concurrent when the field changed after the version the device edited."""
    return field_version > (base_version or 0)


def _applied(action: Action | None) -> Verdict:
    return Verdict(MutationOutcome.APPLIED, action=action)


def _conflict(
    kind: ConflictKind, *, action: Action | None = None, work_performed: bool = False
) -> Verdict:
    return Verdict(
        MutationOutcome.APPLIED_WITH_CONFLICT,
        action=action,
        conflict=kind,
        code=kind.value,
        work_performed=work_performed,
    )


def _legal(order: OrderView, action: Action | None, outcome: Outcome | None = None) -> str | None:
    """None when ``action`` is legal for a crew from the order's status, else the refusal code."""
    if action is None:
        return "illegal_transition"
    try:
        next_status(order.status, action, Role.CREW, has_crew=order.has_crew, outcome=outcome)
    except TransitionRefused as exc:
        return exc.code.value
    return None


def status_at(
    trail: Sequence[Sequence[object]], status: Status, status_version: int, version: int | None
) -> Status | None:
    """The order's status at ``version``, or None when it cannot be known.

    ``status``/``status_version``: the current status and the version at which it was set;
    ``trail``: ``[version, status]`` pairs of the last status changes, oldest first (the order's
    ``field_versions["status_trail"]``, see :func:`trail_with`).
    """
    if version is None:
        return None
    if version >= status_version:
        return status
    found: Status | None = None
    for entry in trail:
        if len(entry) != 2 or not isinstance(entry[0], int):
            return None
        if entry[0] > version:
            break
        try:
            found = Status(str(entry[1]))
        except ValueError:
            return None
    return found


def trail_with(
    trail: Sequence[Sequence[object]], version: int, status: Status
) -> list[list[object]]:
    """The status trail after a status change to ``status`` at ``version`` (the last
    :data:`TRAIL_LENGTH` changes, oldest first)."""
    entries = [list(entry) for entry in trail if len(entry) == 2]
    entries.append([version, status.value])
    return entries[-TRAIL_LENGTH:]


def seen_status(
    *,
    trail: Sequence[Sequence[object]],
    status: Status,
    status_version: int,
    base_version: int | None,
    previous: tuple[int | None, Status] | None,
) -> Status | None:
    """The status a device saw when it made a status write, or None when unknown.

    ``previous``: the device's own last status write on the same order before this one that was
    not rejected (``set_status`` target, or ``completed`` for ``complete``), as ``(its
    base_version, its target)``; None if there is none. The device's screen showed its own
    earlier write when both were made from the same pulled version (an offline chain: arrive,
    then hold); otherwise the write was made on the pulled version, whose status the trail
    gives. A rejected write is left out: the app drops it from its view once refused, and it
    is rejected in every arrival order alike.
    """
    if base_version is None:
        return None
    if previous is not None and previous[0] == base_version:
        return previous[1]
    return status_at(trail, status, status_version, base_version)


def _refusal_from(seen: Status, target: Status, has_crew: bool) -> str | None:
    """None when a crew may move an order from ``seen`` to ``target``, else the refusal code."""
    action = action_for_target(seen, target)
    if action is None:
        return "illegal_transition"
    try:
        next_status(seen, action, Role.CREW, has_crew=has_crew)
    except TransitionRefused as exc:
        return exc.code.value
    return None


def decide_status(order: OrderView, target: Status, base_version: int | None) -> Verdict:
    """A crew moved the order to ``target`` (en_route, on_site, on_hold) while offline.

    1. From a crew the order was reassigned away from: flagged, not applied.
    2. Not a legal move from the status the device saw (``order.seen``): ``rejected`` whatever
       happened on the server since (so the verdict does not depend on what arrived first).
       The status it saw again (a repeat) is no move: concurrent, it never changes the order.
    3. Already the current status: nothing to do.
    4. Causal (nothing changed the status since ``base_version``): the state machine decides.
    5. Concurrent: applied only if it ranks higher than the current status and is legal from
       it, else ``status_superseded``.
    """
    if not order.crew_holds_order:
        if target is order.status:
            return _applied(None)
        return _conflict(ConflictKind.REASSIGNED_AWAY)
    concurrent = is_concurrent(order.status_version, base_version)
    if order.seen is not None:
        if target is order.seen:
            # Not a move from what the device saw (a repeat): it never changes the order.
            if concurrent and target is not order.status:
                return _conflict(ConflictKind.STATUS_SUPERSEDED)
        else:
            refusal = _refusal_from(order.seen, target, order.has_crew)
            if refusal is not None:
                return Verdict(
                    MutationOutcome.REJECTED,
                    conflict=ConflictKind.INVALID_TRANSITION,
                    code=refusal,
                )
    if target is order.status:
        return _applied(None)
    action = action_for_target(order.status, target)
    refusal = _legal(order, action)
    if not concurrent:
        if refusal is not None:
            return Verdict(
                MutationOutcome.REJECTED, conflict=ConflictKind.INVALID_TRANSITION, code=refusal
            )
        return _applied(action)
    if STATUS_PRECEDENCE[target] > STATUS_PRECEDENCE[order.status]:
        path: tuple[Action, ...] | None = None
        if refusal is None and action is not None:
            path = (action,)
        if path is None and order.seen is not None:
            # The office moved the order back (reassigned it to the same crew) while the crew,
            # offline, moved on: the crew's later status wins, through legal steps.
            path = crew_path(order.status, target, has_crew=order.has_crew)
        if path:
            return Verdict(MutationOutcome.APPLIED, action=path[0], then=path[1:])
    return _conflict(ConflictKind.STATUS_SUPERSEDED)


def crew_path(current: Status, target: Status, *, has_crew: bool) -> tuple[Action, ...] | None:
    """The shortest sequence of crew actions from ``current`` to ``target`` (None: there is
    none). Ties go to the lower-precedence intermediate statuses, so the path is fixed."""
    frontier: list[tuple[Status, tuple[Action, ...]]] = [(current, ())]
    visited = {current}
    while frontier:
        following: list[tuple[Status, tuple[Action, ...]]] = []
        for status, path in frontier:
            for rule in sorted(
                (r for r in TRANSITIONS.values() if r.source is status and Role.CREW in r.roles),
                key=lambda r: STATUS_PRECEDENCE[r.target],
            ):
                reached = rule.target if has_crew else rule.target_without_crew
                if reached is None or reached in visited or rule.action is Action.COMPLETE:
                    continue
                if reached is target:
                    return (*path, rule.action)
                visited.add(reached)
                following.append((reached, (*path, rule.action)))
        frontier = following
    return None


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
