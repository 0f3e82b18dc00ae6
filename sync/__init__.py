"""Pure sync core (standard library only): statuses, field policies, merge, ordering."""

from sync.states import (
    OPEN_STATUSES,
    STATUS_PRECEDENCE,
    TERMINAL_STATUSES,
    TRANSITIONS,
    Action,
    Outcome,
    RefusalCode,
    Role,
    Status,
    Transition,
    TransitionRefused,
    action_for_target,
    allowed_actions,
    next_status,
)

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
