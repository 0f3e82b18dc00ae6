"""Named, versioned sync mutations: parsing and validating their arguments.

Pure standard library. A device sends ``{"name": "workorder.complete@1", "args": {...}}``; the
server calls :func:`parse_mutation` and gets a typed, validated value or a
:class:`MutationInvalid` carrying a stable code (``mutation_unknown``,
``mutation_version_unsupported``, ``args_invalid``, ``outcome_unknown``,
``status_not_settable``). Older versions of a mutation are *upcast* to the current one here,
for as long as apps in the field may still send them (``UPCASTERS``). The protocol is
documented in ``docs/sync-protocol.md`` section 4.
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Any

from sync.states import TRANSITIONS, Action, Outcome, Role, Status, allowed_actions

__all__ = [
    "CURRENT_VERSIONS",
    "DISPATCH_FIELDS",
    "PHOTO_KINDS",
    "SETTABLE_STATUSES",
    "AddMaterial",
    "AddNote",
    "AttachPhoto",
    "Complete",
    "MutationInvalid",
    "ParsedMutation",
    "SetField",
    "SetStatus",
    "VoidMaterial",
    "crew_transition_table",
    "has_nul",
    "parse_mutation",
    "split_name",
    "without_nul",
]

SETTABLE_STATUSES: frozenset[Status] = frozenset({Status.EN_ROUTE, Status.ON_SITE, Status.ON_HOLD})
"""Targets of ``workorder.set_status``: field progress only (completion has its own mutation)."""

DISPATCH_FIELDS: frozenset[str] = frozenset(
    {"priority", "due_at", "crew_id", "location", "title", "description", "address"}
)
"""Fields owned by dispatch: a crew's attempt becomes a suggestion (``workorder.set_field``)."""

PHOTO_KINDS: frozenset[str] = frozenset({"before", "after", "other"})


def crew_transition_table() -> dict[str, dict[str, object]]:
    """What a crew phone may offer from each status, read from :data:`sync.states.TRANSITIONS`.

    ``{status: {"set_status": [targets of workorder.set_status], "complete": bool}}`` for an
    order that has a crew (a crew only sees its own). The pull sends it to the phones as
    reference data (``crew_transition/<status>``) and the app draws its buttons from it, so
    the app cannot offer a move the server refuses (docs/adr/0061).
    """
    table: dict[str, dict[str, object]] = {}
    for status in Status:
        actions = allowed_actions(status, Role.CREW, has_crew=True)
        targets = {TRANSITIONS[status, a].target for a in actions if a is not Action.COMPLETE}
        table[status.value] = {
            "status": status.value,
            "set_status": [s.value for s in Status if s in targets and s in SETTABLE_STATUSES],
            "complete": Action.COMPLETE in actions,
        }
    return table


_NAME = re.compile(r"^([a-z][a-z0-9_.]{0,80})@([0-9]{1,4})$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class MutationInvalid(Exception):
    """A mutation the server cannot apply as sent; ``code`` is stable, ``field`` names the arg."""

    def __init__(self, code: str, field: str | None = None, message: str = "") -> None:
        self.code = code
        self.field = field
        super().__init__(message or (f"{code}: {field}" if field else code))


@dataclass(frozen=True, slots=True)
class SetStatus:
    work_order_id: int
    status: Status
    reason: str | None


@dataclass(frozen=True, slots=True)
class Complete:
    work_order_id: int
    outcome: Outcome
    note: str | None
    completed_at: datetime | None


@dataclass(frozen=True, slots=True)
class AddNote:
    work_order_id: int
    note_id: str
    body: str


@dataclass(frozen=True, slots=True)
class AddMaterial:
    work_order_id: int
    entry_id: str
    material_code: str
    quantity: float
    unit: str


@dataclass(frozen=True, slots=True)
class VoidMaterial:
    work_order_id: int
    entry_id: str
    voids: str
    reason: str | None


@dataclass(frozen=True, slots=True)
class AttachPhoto:
    work_order_id: int
    photo_id: str
    sha256: str
    kind: str
    captured_at: datetime | None
    lat: float | None
    lon: float | None
    accuracy_m: float | None


@dataclass(frozen=True, slots=True)
class SetField:
    work_order_id: int
    field: str
    value: Any


ParsedMutation = (
    SetStatus | Complete | AddNote | AddMaterial | VoidMaterial | AttachPhoto | SetField
)

MAX_ID = 2_147_483_647


def has_nul(value: Any) -> bool:
    """Whether a NUL character is anywhere in a JSON-like value (keys included)."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(has_nul(k) or has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(has_nul(v) for v in value)
    return False


def without_nul(value: Any) -> Any:
    """``value`` with each NUL character replaced by U+FFFD: how a refused payload is kept."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, dict):
        return {without_nul(k): without_nul(v) for k, v in value.items()}
    if isinstance(value, list):
        return [without_nul(v) for v in value]
    return value


def split_name(name: str) -> tuple[str, int]:
    """``"workorder.complete@1"`` → ``("workorder.complete", 1)``; malformed: mutation_unknown."""
    match = _NAME.fullmatch(name) if isinstance(name, str) else None
    if match is None:
        raise MutationInvalid("mutation_unknown", "name")
    return match.group(1), int(match.group(2))


# -- argument readers ---------------------------------------------------------------------------


def _int_id(args: Mapping[str, Any], key: str) -> int:
    value = args.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_ID:
        raise MutationInvalid("args_invalid", key)
    return value


def _text(
    args: Mapping[str, Any], key: str, *, max_len: int, required: bool = True, min_len: int = 1
) -> str | None:
    value = args.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or "\x00" in value:
        raise MutationInvalid("args_invalid", key)
    if not min_len <= len(value.strip() if min_len else value) or len(value) > max_len:
        raise MutationInvalid("args_invalid", key)
    return value


def _req_text(args: Mapping[str, Any], key: str, *, max_len: int) -> str:
    value = _text(args, key, max_len=max_len)
    assert value is not None
    return value


def _uuid(args: Mapping[str, Any], key: str) -> str:
    value = args.get(key)
    if not isinstance(value, str) or len(value) != 36:
        raise MutationInvalid("args_invalid", key)
    try:
        return str(uuid.UUID(value))
    except ValueError as exc:
        raise MutationInvalid("args_invalid", key) from exc


def _number(
    args: Mapping[str, Any], key: str, *, low: float, high: float, required: bool = True
) -> float | None:
    value = args.get(key)
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise MutationInvalid("args_invalid", key)
    number = float(value)
    if not math.isfinite(number) or not low <= number <= high:
        raise MutationInvalid("args_invalid", key)
    return number


def _time(args: Mapping[str, Any], key: str) -> datetime | None:
    value = args.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > 64:
        raise MutationInvalid("args_invalid", key)
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise MutationInvalid("args_invalid", key) from exc
    if parsed.tzinfo is None:
        raise MutationInvalid("args_invalid", key)
    return parsed


# -- the mutators -------------------------------------------------------------------------------


def _set_status(args: Mapping[str, Any]) -> SetStatus:
    wo = _int_id(args, "work_order_id")
    raw = args.get("status")
    try:
        status = Status(raw) if isinstance(raw, str) else None
    except ValueError:
        status = None
    if status is None and not isinstance(raw, str):
        raise MutationInvalid("args_invalid", "status")
    if status is None or status not in SETTABLE_STATUSES:  # unknown or not a crew's to set
        raise MutationInvalid("status_not_settable", "status")
    return SetStatus(wo, status, _text(args, "reason", max_len=500, required=False))


def _complete(args: Mapping[str, Any]) -> Complete:
    wo = _int_id(args, "work_order_id")
    raw = args.get("outcome")
    if not isinstance(raw, str):
        raise MutationInvalid("outcome_unknown", "outcome")
    try:
        outcome = Outcome(raw)
    except ValueError as exc:
        raise MutationInvalid("outcome_unknown", "outcome") from exc
    note = _text(args, "note", max_len=2000, required=False, min_len=0)
    return Complete(wo, outcome, note, _time(args, "completed_at"))


def _add_note(args: Mapping[str, Any]) -> AddNote:
    return AddNote(
        _int_id(args, "work_order_id"),
        _uuid(args, "note_id"),
        _req_text(args, "body", max_len=2000),
    )


def _add_material(args: Mapping[str, Any]) -> AddMaterial:
    quantity = _number(args, "quantity", low=0, high=1_000_000)
    assert quantity is not None
    if quantity <= 0:
        raise MutationInvalid("args_invalid", "quantity")
    return AddMaterial(
        _int_id(args, "work_order_id"),
        _uuid(args, "entry_id"),
        _req_text(args, "material_code", max_len=60),
        quantity,
        _req_text(args, "unit", max_len=20),
    )


def _void_material(args: Mapping[str, Any]) -> VoidMaterial:
    entry_id = _uuid(args, "entry_id")
    voids = _uuid(args, "voids")
    if entry_id == voids:
        raise MutationInvalid("args_invalid", "voids")
    return VoidMaterial(
        _int_id(args, "work_order_id"),
        entry_id,
        voids,
        _text(args, "reason", max_len=500, required=False),
    )


def _attach_photo(args: Mapping[str, Any]) -> AttachPhoto:
    sha = args.get("sha256")
    if not isinstance(sha, str) or not _SHA256.match(sha):
        raise MutationInvalid("args_invalid", "sha256")
    kind = args.get("kind", "after")
    if kind not in PHOTO_KINDS:
        raise MutationInvalid("args_invalid", "kind")
    return AttachPhoto(
        _int_id(args, "work_order_id"),
        _uuid(args, "photo_id"),
        sha,
        str(kind),
        _time(args, "captured_at"),
        _number(args, "lat", low=-90, high=90, required=False),
        _number(args, "lon", low=-180, high=180, required=False),
        _number(args, "accuracy_m", low=0, high=1_000_000, required=False),
    )


def _set_field(args: Mapping[str, Any]) -> SetField:
    wo = _int_id(args, "work_order_id")
    field = args.get("field")
    if not isinstance(field, str) or field not in DISPATCH_FIELDS:
        raise MutationInvalid("args_invalid", "field")
    if "value" not in args:
        raise MutationInvalid("args_invalid", "value")
    value = args["value"]
    if len(repr(value)) > 2000:
        raise MutationInvalid("args_invalid", "value")
    return SetField(wo, field, value)


_PARSERS: Mapping[str, Callable[[Mapping[str, Any]], ParsedMutation]] = MappingProxyType(
    {
        "workorder.set_status": _set_status,
        "workorder.complete": _complete,
        "workorder.add_note": _add_note,
        "workorder.add_material": _add_material,
        "workorder.void_material": _void_material,
        "workorder.attach_photo": _attach_photo,
        "workorder.set_field": _set_field,
    }
)

CURRENT_VERSIONS: Mapping[str, int] = MappingProxyType({name: 1 for name in _PARSERS})
"""The version of each mutation this server implements."""

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]
UPCASTERS: Mapping[tuple[str, int], Upcaster] = MappingProxyType({})
"""``(name, old_version) -> function(args) -> args of old_version + 1``. Add one when a
mutation's arguments change, and keep it while apps in the field may still send the old one."""


def parse_mutation(name: str, args: Any) -> ParsedMutation:
    """Validate and upcast one mutation. Raises :class:`MutationInvalid`."""
    base, version = split_name(name)
    current = CURRENT_VERSIONS.get(base)
    if current is None:
        raise MutationInvalid("mutation_unknown", "name")
    if version > current or version < 1:
        raise MutationInvalid("mutation_version_unsupported", "name")
    if not isinstance(args, dict):
        raise MutationInvalid("args_invalid", "args")
    if has_nul(args):  # no database stores it the same way: refused in any arg
        raise MutationInvalid("args_invalid", "args")
    upgraded: dict[str, Any] = dict(args)
    while version < current:
        upcast = UPCASTERS.get((base, version))
        if upcast is None:
            raise MutationInvalid("mutation_version_unsupported", "name")
        upgraded = upcast(upgraded)
        version += 1
    return _PARSERS[base](upgraded)
