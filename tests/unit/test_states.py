"""The work-order state machine against its documented table (docs/states.md).

The expected behaviour is read from the document, not from ``sync.states``: a change to the
rules must change both, and a drift between them fails here.
"""

from __future__ import annotations

import pickle
import re
from dataclasses import dataclass
from itertools import product
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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
    TransitionRefused,
    action_for_target,
    allowed_actions,
    next_status,
)

DOC = Path(__file__).resolve().parents[2] / "docs" / "states.md"

S, A, R, OC = Status, Action, Role, Outcome
OFFICE = frozenset({R.ADMIN, R.DISPATCHER, R.SYSTEM})
FIELD_ACTIONS = frozenset({A.START_ROUTE, A.ARRIVE, A.HOLD, A.RESUME, A.COMPLETE})


# --- the documented table -------------------------------------------------------------------


@dataclass(frozen=True)
class DocRow:
    source: Status
    action: Action
    target: Status
    target_without_crew: Status | None  # None: crew_required
    roles: frozenset[Role]
    requires: str  # "outcome", "reason" or ""


def _cell(text: str) -> str:
    return text.strip().strip("`")


def read_doc_table() -> dict[tuple[Status, Action], DocRow]:
    text = DOC.read_text(encoding="utf-8")
    match = re.search(r"<!-- transitions:begin -->(.*?)<!-- transitions:end -->", text, re.S)
    assert match, "docs/states.md lost its transitions:begin/end markers"
    role_words = {"office": OFFICE, "anyone": frozenset(Role)}
    rows: dict[tuple[Status, Action], DocRow] = {}
    for line in match.group(1).strip().splitlines()[2:]:  # skip header and separator
        cells = [_cell(c) for c in line.strip().strip("|").split("|")]
        assert len(cells) == 6, line
        source, action, target, no_crew, roles, requires = cells
        key = (Status(source), Action(action))
        assert key not in rows, f"duplicate row {key}"
        rows[key] = DocRow(
            source=Status(source),
            action=Action(action),
            target=Status(target),
            target_without_crew=None if no_crew == "crew_required" else Status(no_crew),
            roles=role_words[roles],
            requires="" if requires == "—" else requires,
        )
    return rows


DOC_TABLE = read_doc_table()


def documented(
    current: Status,
    action: Action,
    role: Role,
    has_crew: bool,
    outcome: Outcome | None,
    reason: str | None,
) -> Status | str:
    """The documented verdict: a status, or a refusal code (checks in the documented order)."""
    row = DOC_TABLE.get((current, action))
    if row is None:
        return "illegal_transition"
    if role not in row.roles:
        return "role_not_allowed"
    target = row.target if has_crew else row.target_without_crew
    if target is None:
        return "crew_required"
    if row.requires == "outcome" and outcome is None:
        return "outcome_required"
    if row.requires != "outcome" and outcome is not None:
        return "outcome_not_allowed"
    if row.requires == "reason" and (reason is None or not reason.strip()):
        return "reason_required"
    return target


def verdict(
    current: Status,
    action: Action,
    role: Role,
    has_crew: bool,
    outcome: Outcome | None = None,
    reason: str | None = None,
) -> Status | str:
    try:
        return next_status(current, action, role, has_crew=has_crew, outcome=outcome, reason=reason)
    except TransitionRefused as refused:
        assert (refused.current, refused.action, refused.role) == (current, action, role)
        return str(refused.code)


# --- explicit cases -------------------------------------------------------------------------

CASES: list[tuple[Status, Action, Role, bool, Outcome | None, str | None, Status | str]] = [
    # current, action, role, has_crew, outcome, reason, expected
    (S.NEW, A.ASSIGN, R.DISPATCHER, False, None, None, S.ASSIGNED),
    (S.NEW, A.ASSIGN, R.ADMIN, False, None, None, S.ASSIGNED),
    (S.NEW, A.ASSIGN, R.SYSTEM, False, None, None, S.ASSIGNED),
    (S.NEW, A.ASSIGN, R.CREW, False, None, None, "role_not_allowed"),
    (S.ASSIGNED, A.ASSIGN, R.DISPATCHER, True, None, None, S.ASSIGNED),
    (S.EN_ROUTE, A.ASSIGN, R.DISPATCHER, True, None, None, S.ASSIGNED),
    (S.ON_SITE, A.ASSIGN, R.ADMIN, True, None, None, S.ASSIGNED),
    (S.ON_HOLD, A.ASSIGN, R.SYSTEM, True, None, None, S.ASSIGNED),
    (S.COMPLETED, A.ASSIGN, R.DISPATCHER, True, None, None, "illegal_transition"),
    (S.CANCELLED, A.ASSIGN, R.DISPATCHER, False, None, None, "illegal_transition"),
    (S.ASSIGNED, A.UNASSIGN, R.DISPATCHER, True, None, None, S.NEW),
    (S.ON_HOLD, A.UNASSIGN, R.ADMIN, True, None, None, S.NEW),
    (S.EN_ROUTE, A.UNASSIGN, R.CREW, True, None, None, "role_not_allowed"),
    (S.NEW, A.UNASSIGN, R.DISPATCHER, False, None, None, "illegal_transition"),
    (S.ASSIGNED, A.START_ROUTE, R.CREW, True, None, None, S.EN_ROUTE),
    (S.ASSIGNED, A.START_ROUTE, R.DISPATCHER, True, None, None, S.EN_ROUTE),
    (S.ASSIGNED, A.START_ROUTE, R.CREW, False, None, None, "crew_required"),
    (S.EN_ROUTE, A.START_ROUTE, R.CREW, True, None, None, "illegal_transition"),
    (S.NEW, A.START_ROUTE, R.CREW, False, None, None, "illegal_transition"),
    (S.EN_ROUTE, A.ARRIVE, R.CREW, True, None, None, S.ON_SITE),
    (S.ASSIGNED, A.ARRIVE, R.CREW, True, None, None, S.ON_SITE),
    (S.ON_SITE, A.ARRIVE, R.CREW, True, None, None, "illegal_transition"),
    (S.ON_SITE, A.HOLD, R.CREW, True, None, "waiting for a part", S.ON_HOLD),
    (S.EN_ROUTE, A.HOLD, R.CREW, True, None, None, "illegal_transition"),
    (S.ON_HOLD, A.RESUME, R.CREW, True, None, None, S.ON_SITE),
    (S.ON_HOLD, A.RESUME, R.SYSTEM, True, None, None, S.ON_SITE),
    (S.ON_SITE, A.RESUME, R.CREW, True, None, None, "illegal_transition"),
    (S.ON_SITE, A.COMPLETE, R.CREW, True, OC.FIXED, None, S.COMPLETED),
    (S.ON_HOLD, A.COMPLETE, R.CREW, True, OC.PARTIALLY_DONE, None, S.COMPLETED),
    (S.EN_ROUTE, A.COMPLETE, R.CREW, True, OC.UNABLE_TO_ACCESS, None, S.COMPLETED),
    (S.ASSIGNED, A.COMPLETE, R.CREW, True, OC.NO_CONDITION_FOUND, None, S.COMPLETED),
    (S.ASSIGNED, A.COMPLETE, R.DISPATCHER, True, OC.DUPLICATE, None, S.COMPLETED),
    (S.ON_SITE, A.COMPLETE, R.CREW, True, None, None, "outcome_required"),
    (S.ON_SITE, A.COMPLETE, R.CREW, False, OC.FIXED, None, "crew_required"),
    (S.NEW, A.COMPLETE, R.DISPATCHER, False, OC.FIXED, None, "illegal_transition"),
    (S.COMPLETED, A.COMPLETE, R.CREW, True, OC.FIXED, None, "illegal_transition"),
    (S.CANCELLED, A.COMPLETE, R.CREW, True, OC.FIXED, None, "illegal_transition"),
    (S.ASSIGNED, A.START_ROUTE, R.CREW, True, OC.FIXED, None, "outcome_not_allowed"),
    (S.NEW, A.ASSIGN, R.DISPATCHER, False, OC.REFERRED, None, "outcome_not_allowed"),
    (S.NEW, A.CANCEL, R.DISPATCHER, False, None, "duplicate of 311-1234", S.CANCELLED),
    (S.ON_SITE, A.CANCEL, R.ADMIN, True, None, "citizen withdrew", S.CANCELLED),
    (S.ON_HOLD, A.CANCEL, R.SYSTEM, True, None, "expired", S.CANCELLED),
    (S.ASSIGNED, A.CANCEL, R.DISPATCHER, True, None, None, "reason_required"),
    (S.ASSIGNED, A.CANCEL, R.DISPATCHER, True, None, "", "reason_required"),
    (S.ASSIGNED, A.CANCEL, R.DISPATCHER, True, None, " \t\n", "reason_required"),
    (S.ASSIGNED, A.CANCEL, R.DISPATCHER, True, OC.DUPLICATE, "dup", "outcome_not_allowed"),
    (S.ASSIGNED, A.CANCEL, R.CREW, True, None, "not mine", "role_not_allowed"),
    (S.COMPLETED, A.CANCEL, R.DISPATCHER, True, None, "oops", "illegal_transition"),
    (S.CANCELLED, A.CANCEL, R.DISPATCHER, True, None, "again", "illegal_transition"),
    (S.COMPLETED, A.REOPEN, R.DISPATCHER, True, None, None, S.ASSIGNED),
    (S.COMPLETED, A.REOPEN, R.DISPATCHER, False, None, None, S.NEW),
    (S.CANCELLED, A.REOPEN, R.ADMIN, True, None, None, S.ASSIGNED),
    (S.CANCELLED, A.REOPEN, R.SYSTEM, False, None, None, S.NEW),
    (S.COMPLETED, A.REOPEN, R.CREW, True, None, None, "role_not_allowed"),
    (S.ON_SITE, A.REOPEN, R.DISPATCHER, True, None, None, "illegal_transition"),
    (S.NEW, A.REOPEN, R.DISPATCHER, False, None, None, "illegal_transition"),
]


@pytest.mark.parametrize(
    ("current", "action", "role", "has_crew", "outcome", "reason", "expected"), CASES
)
def test_explicit_cases(
    current: Status,
    action: Action,
    role: Role,
    has_crew: bool,
    outcome: Outcome | None,
    reason: str | None,
    expected: Status | str,
) -> None:
    assert verdict(current, action, role, has_crew, outcome, reason) == expected
    # The explicit table and the document say the same thing.
    assert documented(current, action, role, has_crew, outcome, reason) == expected


# --- exhaustive comparison with the document ------------------------------------------------

OUTCOME_CHOICES: list[Outcome | None] = [None, *Outcome]
REASON_CHOICES: list[str | None] = [None, "", "   ", "snow bank blocks the lane"]


def test_every_combination_matches_the_documented_table() -> None:
    mismatches = []
    for current, action, role, has_crew, outcome, reason in product(
        Status, Action, Role, (True, False), OUTCOME_CHOICES, REASON_CHOICES
    ):
        got = verdict(current, action, role, has_crew, outcome, reason)
        want = documented(current, action, role, has_crew, outcome, reason)
        if got != want:
            mismatches.append((current, action, role, has_crew, outcome, reason, got, want))
    assert not mismatches, mismatches[:20]


def test_transitions_data_equals_the_documented_table() -> None:
    assert set(TRANSITIONS) == set(DOC_TABLE)
    for key, rule in TRANSITIONS.items():
        row = DOC_TABLE[key]
        assert (rule.source, rule.action) == key
        assert rule.target == row.target, key
        assert rule.target_without_crew == row.target_without_crew, key
        assert rule.roles == row.roles, key


def test_documented_table_follows_the_brief() -> None:
    """Spot-check the document itself against the product rules it must encode."""
    for (source, action), row in DOC_TABLE.items():
        if action in FIELD_ACTIONS:
            assert row.roles == frozenset(Role)
            assert row.target_without_crew is None
        else:
            assert row.roles == OFFICE
        if source in TERMINAL_STATUSES:
            assert action is A.REOPEN
        assert row.requires == {A.COMPLETE: "outcome", A.CANCEL: "reason"}.get(action, "")
    assert {s for s, a in DOC_TABLE if a is A.CANCEL} == OPEN_STATUSES
    assert {s for s, a in DOC_TABLE if a is A.REOPEN} == TERMINAL_STATUSES


def test_mermaid_diagram_matches_the_table() -> None:
    text = DOC.read_text(encoding="utf-8")
    diagram = re.search(r"```mermaid\n(.*?)```", text, re.S)
    assert diagram
    edges = {
        (Status(m[0]), Action(m[2]), Status(m[1]))
        for m in re.findall(r"^\s*(\w+) --> (\w+): (\w+)", diagram.group(1), re.M)
    }
    table_edges = {(r.source, r.action, r.target) for r in DOC_TABLE.values()} | {
        (r.source, r.action, r.target_without_crew)
        for r in DOC_TABLE.values()
        if r.target_without_crew is not None
    }
    assert edges == table_edges


FRENCH_LABELS = {
    S.NEW: "nouveau",
    S.ASSIGNED: "assigné",
    S.EN_ROUTE: "en route",
    S.ON_SITE: "sur place",
    S.ON_HOLD: "en attente",
    S.COMPLETED: "terminé",
    S.CANCELLED: "annulé",
}


@pytest.mark.parametrize("status", list(Status))
def test_status_table_in_the_document(status: Status) -> None:
    text = DOC.read_text(encoding="utf-8")
    kind = "terminal" if status in TERMINAL_STATUSES else "open"
    row = f"| `{status}` | {FRENCH_LABELS[status]} | {kind} | {STATUS_PRECEDENCE[status]} |"
    assert row in text


@pytest.mark.parametrize(
    ("current", "role", "has_crew"), list(product(Status, Role, (True, False)))
)
def test_allowed_actions_are_the_ones_that_succeed(
    current: Status, role: Role, has_crew: bool
) -> None:
    def succeeds(action: Action) -> bool:
        outcome = OC.FIXED if action is A.COMPLETE else None
        reason = "reason" if action is A.CANCEL else None
        return isinstance(documented(current, action, role, has_crew, outcome, reason), Status)

    assert allowed_actions(current, role, has_crew=has_crew) == {a for a in Action if succeeds(a)}


def test_allowed_actions_examples() -> None:
    assert allowed_actions(S.ASSIGNED, R.CREW, has_crew=True) == {
        A.START_ROUTE,
        A.ARRIVE,
        A.COMPLETE,
    }
    assert allowed_actions(S.ON_SITE, R.CREW, has_crew=True) == {A.HOLD, A.COMPLETE}
    assert allowed_actions(S.COMPLETED, R.CREW, has_crew=True) == frozenset()
    assert allowed_actions(S.NEW, R.DISPATCHER, has_crew=False) == {A.ASSIGN, A.CANCEL}
    assert allowed_actions(S.CANCELLED, R.SYSTEM, has_crew=False) == {A.REOPEN}


@pytest.mark.parametrize(("current", "target"), list(product(Status, Status)))
def test_action_for_target(current: Status, target: Status) -> None:
    leading = {
        row.action
        for row in DOC_TABLE.values()
        if row.source is current and target in (row.target, row.target_without_crew)
    }
    assert len(leading) <= 1, "two actions lead to the same status: ambiguous for clients"
    expected = None if current is target or not leading else leading.pop()
    assert action_for_target(current, target) == expected


@pytest.mark.parametrize(
    ("current", "target", "expected"),
    [
        (S.ASSIGNED, S.EN_ROUTE, A.START_ROUTE),
        (S.ASSIGNED, S.ON_SITE, A.ARRIVE),
        (S.ON_HOLD, S.ON_SITE, A.RESUME),
        (S.ASSIGNED, S.COMPLETED, A.COMPLETE),
        (S.ON_SITE, S.ASSIGNED, A.ASSIGN),
        (S.ON_SITE, S.NEW, A.UNASSIGN),
        (S.COMPLETED, S.NEW, A.REOPEN),
        (S.CANCELLED, S.ASSIGNED, A.REOPEN),
        (S.NEW, S.CANCELLED, A.CANCEL),
        (S.ASSIGNED, S.ASSIGNED, None),
        (S.ON_SITE, S.ON_SITE, None),
        (S.NEW, S.ON_SITE, None),
        (S.CANCELLED, S.COMPLETED, None),
        (S.COMPLETED, S.CANCELLED, None),
    ],
)
def test_action_for_target_examples(
    current: Status, target: Status, expected: Action | None
) -> None:
    assert action_for_target(current, target) == expected


# --- constants and the exception ------------------------------------------------------------


def test_status_sets() -> None:
    assert {S.COMPLETED, S.CANCELLED} == TERMINAL_STATUSES
    assert set(Status) - TERMINAL_STATUSES == OPEN_STATUSES
    assert isinstance(OPEN_STATUSES, frozenset)
    assert isinstance(TERMINAL_STATUSES, frozenset)


def test_status_precedence_is_the_sync_order() -> None:
    order = [S.NEW, S.ASSIGNED, S.EN_ROUTE, S.ON_SITE, S.ON_HOLD, S.COMPLETED, S.CANCELLED]
    assert sorted(Status, key=STATUS_PRECEDENCE.__getitem__) == order
    assert len(set(STATUS_PRECEDENCE.values())) == len(Status)
    assert max(S.COMPLETED, S.CANCELLED, key=STATUS_PRECEDENCE.__getitem__) is S.CANCELLED


def test_enum_values_are_stable() -> None:
    assert [s.value for s in Status] == [
        "new",
        "assigned",
        "en_route",
        "on_site",
        "on_hold",
        "completed",
        "cancelled",
    ]
    assert {r.value for r in Role} == {"admin", "dispatcher", "crew", "system"}
    assert {a.value for a in Action} == {
        "assign",
        "unassign",
        "start_route",
        "arrive",
        "hold",
        "resume",
        "complete",
        "cancel",
        "reopen",
    }
    assert {o.value for o in Outcome} >= {
        "fixed",
        "no_condition_found",
        "duplicate",
        "not_city_responsibility",
        "referred",
        "unable_to_access",
        "partially_done",
    }
    assert {c.value for c in RefusalCode} == {
        "illegal_transition",
        "role_not_allowed",
        "crew_required",
        "outcome_required",
        "outcome_not_allowed",
        "reason_required",
    }


def test_refusal_carries_its_context() -> None:
    with pytest.raises(TransitionRefused) as caught:
        next_status(S.COMPLETED, A.START_ROUTE, R.CREW, has_crew=True)
    refused = caught.value
    assert refused.code == "illegal_transition"
    assert refused.code is RefusalCode.ILLEGAL_TRANSITION
    assert (refused.current, refused.action, refused.role) == (S.COMPLETED, A.START_ROUTE, R.CREW)
    assert str(refused) == "cannot start_route a work order that is completed"
    assert "illegal_transition" in repr(refused)
    copy = pickle.loads(pickle.dumps(refused))
    assert (copy.code, copy.current, copy.action, copy.role, str(copy)) == (
        refused.code,
        refused.current,
        refused.action,
        refused.role,
        str(refused),
    )


@pytest.mark.parametrize("code", list(RefusalCode))
def test_every_refusal_has_an_english_message(code: RefusalCode) -> None:
    message = str(TransitionRefused(code, S.ON_SITE, A.HOLD, R.CREW))
    assert message and "{" not in message


# --- random histories -----------------------------------------------------------------------

steps = st.lists(
    st.tuples(
        st.sampled_from(Action),
        st.sampled_from(Role),
        st.one_of(st.none(), st.sampled_from(Outcome)),
        st.sampled_from(REASON_CHOICES),
    ),
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(start=st.sampled_from(Status), start_with_crew=st.booleans(), history=steps)
def test_random_histories_stay_inside_the_documented_table(
    start: Status,
    start_with_crew: bool,
    history: list[tuple[Action, Role, Outcome | None, str | None]],
) -> None:
    status, has_crew = start, start_with_crew
    documented_paths = {(r.source, r.action, r.target) for r in DOC_TABLE.values()} | {
        (r.source, r.action, r.target_without_crew)
        for r in DOC_TABLE.values()
        if r.target_without_crew is not None
    }
    for action, role, outcome, reason in history:
        want = documented(status, action, role, has_crew, outcome, reason)
        try:
            new = next_status(
                status, action, role, has_crew=has_crew, outcome=outcome, reason=reason
            )
        except TransitionRefused as refused:
            assert refused.code == want
            continue  # a refusal leaves the order as it was
        assert new == want
        assert (status, action, new) in documented_paths
        if status in TERMINAL_STATUSES:
            assert action is A.REOPEN  # completed/cancelled are only left via reopen
        if new in TERMINAL_STATUSES:
            assert action in (A.COMPLETE, A.CANCEL)
        if action is A.COMPLETE:
            assert outcome is not None
        if action is A.CANCEL:
            assert reason is not None and reason.strip()
        # An offline client that only sent the target status would be mapped to this action.
        if new is not status:
            assert action_for_target(status, new) is action
        # The crew follows the dispatch actions; the field actions don't change it.
        if action is A.ASSIGN:
            has_crew = True
        elif action is A.UNASSIGN:
            has_crew = False
        status = new
