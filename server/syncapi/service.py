"""Offline sync services: push (push.py), pull (pull.py), the dispatcher's desk (desk.py).

The protocol is docs/sync-protocol.md; the decisions are docs/adr/0010–0012.
"""

from server.syncapi.desk import (
    ConflictFilters,
    list_conflicts,
    load_conflict,
    mutation_log,
    resolve_conflict,
    work_order_value,
)
from server.syncapi.pull import pull
from server.syncapi.push import push

__all__ = [
    "ConflictFilters",
    "list_conflicts",
    "load_conflict",
    "mutation_log",
    "pull",
    "push",
    "resolve_conflict",
    "work_order_value",
]
