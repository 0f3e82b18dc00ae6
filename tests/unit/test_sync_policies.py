"""Table-driven tests of the pure merge policies, mutation parsing and the pull cookie."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

import pytest

from sync.cursor import Cookie, cookie_key, decode_cookie, encode_cookie
from sync.mutations import (
    AddMaterial,
    AttachPhoto,
    Complete,
    MutationInvalid,
    SetField,
    SetStatus,
    parse_mutation,
    split_name,
)
from sync.policies import (
    ConflictKind,
    MutationOutcome,
    OrderView,
    Severity,
    decide_append,
    decide_completion,
    decide_dispatch_field,
    decide_status,
    is_concurrent,
    severity_of,
)
from sync.states import STATUS_PRECEDENCE, Action, Outcome, Status

A, AWC, R = (
    MutationOutcome.APPLIED,
    MutationOutcome.APPLIED_WITH_CONFLICT,
    MutationOutcome.REJECTED,
)


def view(
    status: Status, *, version: int = 3, crew: bool = True, holds: bool = True, **kw: Any
) -> OrderView:
    return OrderView(status, crew, version, holds, **kw)


# (current, status_version, base_version, target, holds) -> (outcome, action, conflict, code)
STATUS_CASES = [
    # causal writes: the state machine decides
    (Status.ASSIGNED, 3, 3, Status.EN_ROUTE, True, A, Action.START_ROUTE, None, None),
    (Status.ASSIGNED, 3, 5, Status.ON_SITE, True, A, Action.ARRIVE, None, None),
    (Status.ON_SITE, 3, 3, Status.ON_HOLD, True, A, Action.HOLD, None, None),
    (Status.ON_HOLD, 3, 3, Status.ON_SITE, True, A, Action.RESUME, None, None),
    (
        Status.ASSIGNED,
        3,
        3,
        Status.ON_HOLD,
        True,
        R,
        None,
        ConflictKind.INVALID_TRANSITION,
        "illegal_transition",
    ),
    (Status.EN_ROUTE, 3, 3, Status.EN_ROUTE, True, A, None, None, None),
    # concurrent writes: precedence, and legality from the current status
    (Status.EN_ROUTE, 4, 3, Status.ON_SITE, True, A, Action.ARRIVE, None, None),
    (
        Status.ON_SITE,
        4,
        3,
        Status.EN_ROUTE,
        True,
        AWC,
        None,
        ConflictKind.STATUS_SUPERSEDED,
        "status_superseded",
    ),
    (
        Status.CANCELLED,
        4,
        3,
        Status.ON_SITE,
        True,
        AWC,
        None,
        ConflictKind.STATUS_SUPERSEDED,
        "status_superseded",
    ),
    (
        Status.COMPLETED,
        4,
        3,
        Status.ON_HOLD,
        True,
        AWC,
        None,
        ConflictKind.STATUS_SUPERSEDED,
        "status_superseded",
    ),
    (
        Status.NEW,
        4,
        3,
        Status.EN_ROUTE,
        True,
        AWC,
        None,
        ConflictKind.STATUS_SUPERSEDED,
        "status_superseded",
    ),
    (
        Status.ON_HOLD,
        4,
        3,
        Status.ON_SITE,
        True,
        AWC,
        None,
        ConflictKind.STATUS_SUPERSEDED,
        "status_superseded",
    ),
    (Status.ASSIGNED, 4, None, Status.EN_ROUTE, True, A, Action.START_ROUTE, None, None),
    # from a crew the order was reassigned away from
    (
        Status.ASSIGNED,
        3,
        3,
        Status.EN_ROUTE,
        False,
        AWC,
        None,
        ConflictKind.REASSIGNED_AWAY,
        "reassigned_away",
    ),
]


@pytest.mark.parametrize(
    "current, status_version, base, target, holds, outcome, action, conflict, code", STATUS_CASES
)
def test_decide_status(
    current: Status,
    status_version: int,
    base: int | None,
    target: Status,
    holds: bool,
    outcome: MutationOutcome,
    action: Action | None,
    conflict: ConflictKind | None,
    code: str | None,
) -> None:
    crew = current is not Status.NEW
    verdict = decide_status(
        view(current, version=status_version, crew=crew, holds=holds), target, base
    )
    assert (verdict.outcome, verdict.action, verdict.conflict, verdict.code) == (
        outcome,
        action,
        conflict,
        code,
    )


def test_concurrent_precedence_is_the_documented_order() -> None:
    order = sorted(STATUS_PRECEDENCE, key=STATUS_PRECEDENCE.__getitem__, reverse=True)
    assert [s.value for s in order] == [
        "cancelled",
        "completed",
        "on_hold",
        "on_site",
        "en_route",
        "assigned",
        "new",
    ]


# (status, has crew, holds, server outcome/note, outcome, note) -> (outcome, action, conflict, flag)
COMPLETION_CASES = [
    (Status.ON_SITE, True, True, None, None, A, Action.COMPLETE, None, False),
    (Status.ASSIGNED, True, True, None, None, A, Action.COMPLETE, None, False),
    (Status.ON_HOLD, True, True, None, None, A, Action.COMPLETE, None, False),
    (
        Status.CANCELLED,
        True,
        True,
        None,
        None,
        AWC,
        None,
        ConflictKind.COMPLETION_NOT_APPLIED,
        True,
    ),
    (Status.NEW, False, True, None, None, AWC, None, ConflictKind.COMPLETION_NOT_APPLIED, True),
    (Status.COMPLETED, True, True, Outcome.FIXED, "ok", A, None, None, False),
    (
        Status.COMPLETED,
        True,
        True,
        Outcome.REFERRED,
        "ok",
        AWC,
        None,
        ConflictKind.COMPLETION_DUPLICATE,
        False,
    ),
    (
        Status.ON_SITE,
        True,
        False,
        None,
        None,
        AWC,
        Action.COMPLETE,
        ConflictKind.REASSIGNED_AWAY,
        False,
    ),
    (
        Status.CANCELLED,
        True,
        False,
        None,
        None,
        AWC,
        None,
        ConflictKind.COMPLETION_NOT_APPLIED,
        True,
    ),
]


@pytest.mark.parametrize(
    "status, has_crew, holds, server_outcome, server_note, outcome, action, conflict, flag",
    COMPLETION_CASES,
)
def test_decide_completion(
    status: Status,
    has_crew: bool,
    holds: bool,
    server_outcome: Outcome | None,
    server_note: str | None,
    outcome: MutationOutcome,
    action: Action | None,
    conflict: ConflictKind | None,
    flag: bool,
) -> None:
    order = view(
        status, crew=has_crew, holds=holds, outcome=server_outcome, outcome_note=server_note
    )
    verdict = decide_completion(order, Outcome.FIXED, "ok", base_version=1)
    assert (verdict.outcome, verdict.action, verdict.conflict, verdict.work_performed) == (
        outcome,
        action,
        conflict,
        flag,
    )


APPEND_CASES = [
    # exists, same, holds -> outcome, code
    (False, False, True, A, None),
    (True, True, True, A, None),
    (True, False, True, R, "uuid_reused"),
    (False, False, False, AWC, "reassigned_away"),
    (True, True, False, A, None),
]


@pytest.mark.parametrize("exists, same, holds, outcome, code", APPEND_CASES)
def test_decide_append(
    exists: bool, same: bool, holds: bool, outcome: MutationOutcome, code: str | None
) -> None:
    verdict = decide_append(exists=exists, same=same, crew_holds_order=holds)
    assert (verdict.outcome, verdict.code) == (outcome, code)


def test_dispatch_fields_are_suggestions_and_severities() -> None:
    assert decide_dispatch_field("priority").conflict is ConflictKind.SUGGESTION
    assert severity_of(ConflictKind.COMPLETION_NOT_APPLIED) is Severity.HIGH
    assert all(isinstance(severity_of(kind), Severity) for kind in ConflictKind)


@pytest.mark.parametrize(
    "field_version, base, concurrent",
    [(3, 3, False), (3, 4, False), (4, 3, True), (1, None, True), (1, 0, True)],
)
def test_is_concurrent(field_version: int, base: int | None, concurrent: bool) -> None:
    assert is_concurrent(field_version, base) is concurrent


# --------------------------------------------------------------------------- mutations

U = str(uuid.UUID(int=1))
PARSE_OK = [
    (
        "workorder.set_status@1",
        {"work_order_id": 1, "status": "on_site"},
        SetStatus(1, Status.ON_SITE, None),
    ),
    (
        "workorder.complete@1",
        {"work_order_id": 2, "outcome": "fixed", "note": ""},
        Complete(2, Outcome.FIXED, "", None),
    ),
    (
        "workorder.add_material@1",
        {"work_order_id": 3, "entry_id": U, "material_code": "salt", "quantity": 2, "unit": "kg"},
        AddMaterial(3, U, "salt", 2.0, "kg"),
    ),
    (
        "workorder.attach_photo@1",
        {"work_order_id": 4, "photo_id": U.upper(), "sha256": "0" * 64},
        AttachPhoto(4, U, "0" * 64, "after", None, None, None, None),
    ),
    (
        "workorder.set_field@1",
        {"work_order_id": 5, "field": "priority", "value": 1},
        SetField(5, "priority", 1),
    ),
]


@pytest.mark.parametrize("name, args, expected", PARSE_OK)
def test_parse_mutation(name: str, args: dict[str, Any], expected: object) -> None:
    assert parse_mutation(name, args) == expected


PARSE_BAD = [
    ("nope", {}, "mutation_unknown"),
    ("workorder.fly@1", {}, "mutation_unknown"),
    ("workorder.add_note@2", {}, "mutation_version_unsupported"),
    ("workorder.add_note@0", {}, "mutation_version_unsupported"),
    ("workorder.add_note@1", [], "args_invalid"),
    ("workorder.add_note@1", {"work_order_id": True, "note_id": U, "body": "x"}, "args_invalid"),
    (
        "workorder.add_note@1",
        {"work_order_id": 1, "note_id": "x" * 36, "body": "x"},
        "args_invalid",
    ),
    ("workorder.add_note@1", {"work_order_id": 1, "note_id": U, "body": "  "}, "args_invalid"),
    ("workorder.add_note@1", {"work_order_id": 1, "note_id": U, "body": "a\x00"}, "args_invalid"),
    (
        "workorder.add_material@1",
        {"work_order_id": 1, "entry_id": U, "material_code": "s", "quantity": 0, "unit": "kg"},
        "args_invalid",
    ),
    (
        "workorder.add_material@1",
        {
            "work_order_id": 1,
            "entry_id": U,
            "material_code": "s",
            "quantity": float("nan"),
            "unit": "kg",
        },
        "args_invalid",
    ),
    ("workorder.void_material@1", {"work_order_id": 1, "entry_id": U, "voids": U}, "args_invalid"),
    ("workorder.set_status@1", {"work_order_id": 1, "status": "completed"}, "status_not_settable"),
    # an unknown status is not settable either (docs/sync-protocol.md section 4)
    ("workorder.set_status@1", {"work_order_id": 1, "status": "flying"}, "status_not_settable"),
    ("workorder.set_status@1", {"work_order_id": 1, "status": 3}, "args_invalid"),
    # NUL anywhere (name, an arg's value or key), a trailing newline after the version
    (
        "workorder.add_note@1\x00",
        {"work_order_id": 1, "note_id": U, "body": "x"},
        "mutation_unknown",
    ),
    ("workorder.add_note@1\n", {"work_order_id": 1, "note_id": U, "body": "x"}, "mutation_unknown"),
    (
        "workorder.set_field@1",
        {"work_order_id": 1, "field": "title", "value": ["\x00"]},
        "args_invalid",
    ),
    (
        "workorder.set_field@1",
        {"work_order_id": 1, "field": "title", "value": {"\x00": 1}},
        "args_invalid",
    ),
    ("workorder.complete@1", {"work_order_id": 1, "outcome": "meh"}, "outcome_unknown"),
    (
        "workorder.complete@1",
        {"work_order_id": 1, "outcome": "fixed", "completed_at": "hier"},
        "args_invalid",
    ),
    (
        "workorder.complete@1",
        {"work_order_id": 1, "outcome": "fixed", "completed_at": "2025-01-01T10:00:00"},
        "args_invalid",
    ),
    (
        "workorder.attach_photo@1",
        {"work_order_id": 1, "photo_id": U, "sha256": "A" * 64},
        "args_invalid",
    ),
    (
        "workorder.attach_photo@1",
        {"work_order_id": 1, "photo_id": U, "sha256": "a" * 64, "kind": "selfie"},
        "args_invalid",
    ),
    (
        "workorder.set_field@1",
        {"work_order_id": 1, "field": "status", "value": "x"},
        "args_invalid",
    ),
    ("workorder.set_field@1", {"work_order_id": 1, "field": "priority"}, "args_invalid"),
]


@pytest.mark.parametrize("name, args, code", PARSE_BAD)
def test_parse_mutation_refusals(name: str, args: Any, code: str) -> None:
    with pytest.raises(MutationInvalid) as info:
        parse_mutation(name, args)
    assert info.value.code == code


def test_split_name() -> None:
    assert split_name("workorder.complete@12") == ("workorder.complete", 12)
    with pytest.raises(MutationInvalid):
        split_name("Workorder.complete@1")


# --------------------------------------------------------------------------- cookie


@pytest.mark.parametrize(
    "cookie",
    [
        Cookie(seq=10, at=1700000000.5, crew=3, ref="abc"),
        Cookie(
            seq=0,
            at=1.0,
            crew=1,
            ref="",
            after=7,
            next_seq=99,
            next_at=2.0,
            lmid=4,
            full=True,
            phase=0,
        ),
    ],
)
def test_cookie_round_trip(cookie: Cookie) -> None:
    assert decode_cookie(encode_cookie(cookie, KEY, "client-a1"), KEY, "client-a1") == cookie


KEY = cookie_key("test-secret")


def test_cookie_is_signed_and_bound_to_its_client_id() -> None:
    cookie = Cookie(seq=10, at=1700000000.5, crew=3, ref="abc")
    text = encode_cookie(cookie, KEY, "client-a1")
    payload, _, tag = text.partition(".")
    # another device (same crew), another installation's secret, no signature: not trusted
    assert decode_cookie(text, KEY, "client-b2") is None
    assert decode_cookie(text, cookie_key("other-secret"), "client-a1") is None
    assert decode_cookie(payload, KEY, "client-a1") is None
    # the payload re-encoded with seq 10**9 ahead (the old unsigned form), old tag kept
    forged = base64.urlsafe_b64encode(
        json.dumps({"v": 2, "seq": 10**9, "at": 1700000000.5, "crew": 3, "ref": "abc"}).encode()
    )
    assert decode_cookie(forged.decode().rstrip("=") + "." + tag, KEY, "client-a1") is None
    flipped = ("A" if tag[0] != "A" else "B") + tag[1:]
    assert decode_cookie(f"{payload}.{flipped}", KEY, "client-a1") is None


@pytest.mark.parametrize(
    "text",
    [
        None,
        "",
        "garbage!",
        "e30",
        "eyJ2IjoyfQ",
        "x" * 3000,
        "eyJ2IjoxLCJzZXEiOi0xLCJhdCI6MSwiY3JldyI6MSwicmVmIjoiIn0",
    ],
)
def test_unusable_cookies_mean_a_full_resync(text: str | None) -> None:
    assert decode_cookie(text, KEY, "client-a1") is None
