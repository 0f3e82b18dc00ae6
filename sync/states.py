"""Work-order state machine: which status changes are legal, and for whom.

Pure standard library: snapshots in, verdicts out. The server asks :func:`next_status` before
it mutates a work order; the sync layer uses :data:`STATUS_PRECEDENCE` to settle concurrent
status writes and :func:`action_for_target` to turn an offline client's target status into an
action. The prose version of the rules, with a diagram, is ``docs/states.md``; a unit test
checks that the document's transition table and this module agree.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

__all__ = [
    "OPEN_STATUSES",
    "STATUS_PRECEDENCE",
    "TERMINAL_STATUSES",
    "TRANSITIONS",
    "Action",
    "Outcome",
    "RefusalCode",
    "Role",
    "Status",
    "Transition",
    "TransitionRefused",
    "action_for_target",
    "allowed_actions",
    "next_status",
]


class Status(StrEnum):
    """Where a work order stands."""

    NEW = "new"
    ASSIGNED = "assigned"
    EN_ROUTE = "en_route"
    ON_SITE = "on_site"
    ON_HOLD = "on_hold"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class Outcome(StrEnum):
    """What the crew found or did; required to complete a work order."""

    FIXED = "fixed"
    NO_CONDITION_FOUND = "no_condition_found"
    DUPLICATE = "duplicate"
    NOT_CITY_RESPONSIBILITY = "not_city_responsibility"
    REFERRED = "referred"
    UNABLE_TO_ACCESS = "unable_to_access"
    PARTIALLY_DONE = "partially_done"


class Role(StrEnum):
    """Who is asking. ``SYSTEM`` (scheduled jobs, sync merges) may do what a dispatcher may."""

    ADMIN = "admin"
    DISPATCHER = "dispatcher"
    CREW = "crew"
    SYSTEM = "system"


class Action(StrEnum):
    """A requested change of status."""

    ASSIGN = "assign"
    UNASSIGN = "unassign"
    START_ROUTE = "start_route"
    ARRIVE = "arrive"
    HOLD = "hold"
    RESUME = "resume"
    COMPLETE = "complete"
    CANCEL = "cancel"
    REOPEN = "reopen"


class RefusalCode(StrEnum):
    """Stable machine codes carried by :class:`TransitionRefused` (never rename a value)."""

    ILLEGAL_TRANSITION = "illegal_transition"
    """The action does not exist from the current status."""
    ROLE_NOT_ALLOWED = "role_not_allowed"
    """The action exists from the current status, but not for this role."""
    CREW_REQUIRED = "crew_required"
    """A field action (start_route, arrive, hold, resume, complete) on an order with no crew."""
    OUTCOME_REQUIRED = "outcome_required"
    """``complete`` without an outcome."""
    OUTCOME_NOT_ALLOWED = "outcome_not_allowed"
    """An outcome given with any action other than ``complete``."""
    REASON_REQUIRED = "reason_required"
    """``cancel`` without a reason (empty or blank counts as none)."""


TERMINAL_STATUSES: frozenset[Status] = frozenset({Status.COMPLETED, Status.CANCELLED})
OPEN_STATUSES: frozenset[Status] = frozenset(Status) - TERMINAL_STATUSES

STATUS_PRECEDENCE: dict[Status, int] = {
    Status.NEW: 0,
    Status.ASSIGNED: 1,
    Status.EN_ROUTE: 2,
    Status.ON_SITE: 3,
    Status.ON_HOLD: 4,
    Status.COMPLETED: 5,
    Status.CANCELLED: 6,
}
"""Higher wins when two writers changed the status concurrently (SYNC.md). Treat as read-only."""

_OFFICE: frozenset[Role] = frozenset({Role.ADMIN, Role.DISPATCHER, Role.SYSTEM})
_ANYONE: frozenset[Role] = frozenset(Role)


@dataclass(frozen=True, slots=True)
class Transition:
    """One row of the transition table: ``source --action--> target``."""

    source: Status
    action: Action
    target: Status
    """Resulting status when the order has a crew."""
    target_without_crew: Status | None
    """Resulting status when it has none; ``None`` means refused with ``crew_required``."""
    roles: frozenset[Role]


def _rows() -> dict[tuple[Status, Action], Transition]:
    rows: dict[tuple[Status, Action], Transition] = {}

    def add(
        sources: frozenset[Status] | set[Status],
        action: Action,
        target: Status,
        target_without_crew: Status | None,
        roles: frozenset[Role],
    ) -> None:
        for source in sorted(sources, key=STATUS_PRECEDENCE.__getitem__):
            rows[source, action] = Transition(source, action, target, target_without_crew, roles)

    in_progress = {Status.ASSIGNED, Status.EN_ROUTE, Status.ON_SITE, Status.ON_HOLD}
    # Dispatch decisions.
    add({Status.NEW} | in_progress, Action.ASSIGN, Status.ASSIGNED, Status.ASSIGNED, _OFFICE)
    add(in_progress, Action.UNASSIGN, Status.NEW, Status.NEW, _OFFICE)
    add(OPEN_STATUSES, Action.CANCEL, Status.CANCELLED, Status.CANCELLED, _OFFICE)
    add(TERMINAL_STATUSES, Action.REOPEN, Status.ASSIGNED, Status.NEW, _OFFICE)
    # Field work: the crew, or the office on its behalf; the order must have a crew.
    add({Status.ASSIGNED}, Action.START_ROUTE, Status.EN_ROUTE, None, _ANYONE)
    add({Status.ASSIGNED, Status.EN_ROUTE}, Action.ARRIVE, Status.ON_SITE, None, _ANYONE)
    add({Status.ON_SITE}, Action.HOLD, Status.ON_HOLD, None, _ANYONE)
    add({Status.ON_HOLD}, Action.RESUME, Status.ON_SITE, None, _ANYONE)
    add(in_progress, Action.COMPLETE, Status.COMPLETED, None, _ANYONE)
    return rows


TRANSITIONS: Mapping[tuple[Status, Action], Transition] = MappingProxyType(_rows())
"""Every legal ``(current status, action)`` pair; anything missing is ``illegal_transition``."""


class TransitionRefused(Exception):
    """A status change the rules do not allow.

    ``code`` is a stable machine string (a :class:`RefusalCode`, which is a ``str``) for the API
    and the PWA to translate; ``str(exc)`` is an English message for developers and logs.
    """

    code: RefusalCode
    current: Status
    action: Action
    role: Role

    def __init__(self, code: RefusalCode, current: Status, action: Action, role: Role) -> None:
        self.code = code
        self.current = current
        self.action = action
        self.role = role
        super().__init__(_MESSAGES[code].format(current=current, action=action, role=role))

    def __reduce__(self) -> tuple[type[TransitionRefused], tuple[object, ...]]:
        return (type(self), (self.code, self.current, self.action, self.role))

    def __repr__(self) -> str:
        return (
            f"TransitionRefused(code={self.code.value!r}, current={self.current.value!r}, "
            f"action={self.action.value!r}, role={self.role.value!r})"
        )


_MESSAGES: Mapping[RefusalCode, str] = MappingProxyType(
    {
        RefusalCode.ILLEGAL_TRANSITION: "cannot {action} a work order that is {current}",
        RefusalCode.ROLE_NOT_ALLOWED: "role {role} may not {action} a work order that is {current}",
        RefusalCode.CREW_REQUIRED: (
            "cannot {action} a work order that is {current}: it has no crew assigned"
        ),
        RefusalCode.OUTCOME_REQUIRED: "an outcome is required to {action} a work order",
        RefusalCode.OUTCOME_NOT_ALLOWED: (
            "an outcome is only accepted with complete, not with {action}"
        ),
        RefusalCode.REASON_REQUIRED: "a non-blank reason is required to {action} a work order",
    }
)


def next_status(
    current: Status,
    action: Action,
    role: Role,
    *,
    has_crew: bool,
    outcome: Outcome | None = None,
    reason: str | None = None,
) -> Status:
    """Return the status that ``action`` by ``role`` leads to from ``current``.

    ``has_crew`` says whether the work order currently has a crew assigned (it decides where
    ``reopen`` lands and whether field actions are possible). Checks run in a fixed order, so
    the first failing one names the refusal: illegal_transition, role_not_allowed,
    crew_required, outcome_required / outcome_not_allowed, reason_required.

    Raises :class:`TransitionRefused`.
    """
    rule = TRANSITIONS.get((current, action))
    if rule is None:
        raise TransitionRefused(RefusalCode.ILLEGAL_TRANSITION, current, action, role)
    if role not in rule.roles:
        raise TransitionRefused(RefusalCode.ROLE_NOT_ALLOWED, current, action, role)
    target = rule.target if has_crew else rule.target_without_crew
    if target is None:
        raise TransitionRefused(RefusalCode.CREW_REQUIRED, current, action, role)
    if action is Action.COMPLETE:
        if outcome is None:
            raise TransitionRefused(RefusalCode.OUTCOME_REQUIRED, current, action, role)
    elif outcome is not None:
        raise TransitionRefused(RefusalCode.OUTCOME_NOT_ALLOWED, current, action, role)
    if action is Action.CANCEL and (reason is None or not reason.strip()):
        raise TransitionRefused(RefusalCode.REASON_REQUIRED, current, action, role)
    return target


def allowed_actions(current: Status, role: Role, *, has_crew: bool) -> frozenset[Action]:
    """Actions ``role`` may take from ``current`` (given the required outcome or reason)."""
    return frozenset(
        rule.action
        for rule in TRANSITIONS.values()
        if rule.source is current
        and role in rule.roles
        and (has_crew or rule.target_without_crew is not None)
    )


def _target_index() -> dict[tuple[Status, Status], Action]:
    index: dict[tuple[Status, Status], Action] = {}
    for rule in TRANSITIONS.values():
        for target in {rule.target, rule.target_without_crew}:
            if target is None or target is rule.source:
                continue
            key = (rule.source, target)
            if index.setdefault(key, rule.action) is not rule.action:  # pragma: no cover
                raise AssertionError(f"two actions lead from {key[0]} to {key[1]}")
    return index


_ACTION_FOR_TARGET: Mapping[tuple[Status, Status], Action] = MappingProxyType(_target_index())


def action_for_target(current: Status, target: Status) -> Action | None:
    """The action that moves a work order from ``current`` to ``target``, or ``None``.

    Offline clients record the status they moved to; the server turns it back into an action
    and then checks it with :func:`next_status` (role, crew, outcome, reason). Each pair of
    different statuses is reached by at most one action. ``target == current`` gives ``None``:
    it is not a change (the one self-loop, ``assigned --assign--> assigned``, is a dispatcher
    reassigning, which a client cannot express as a bare target status).
    ``reopen`` is returned for both ``assigned`` and ``new`` out of a terminal status;
    :func:`next_status` then decides which one it really is from ``has_crew``.
    """
    return _ACTION_FOR_TARGET.get((current, target))
