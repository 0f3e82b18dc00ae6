"""Concurrent status writes: the "seen status" rule, and order independence as a property.

The server-side bookkeeping of ``server/syncapi/push.py`` and ``server/syncapi/feed.py`` (status
version, status trail, each client's previous status write) is replayed here in a few lines over
the pure policies, so Hypothesis can try thousands of arrival orders in milliseconds; the fleet
simulator (tests/sim/checks.py, check 5) proves the same through the real app.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sync.policies import (
    TRAIL_LENGTH,
    ConflictKind,
    MutationOutcome,
    OrderView,
    crew_path,
    decide_completion,
    decide_status,
    seen_status,
    status_at,
    trail_with,
)
from sync.states import TRANSITIONS, Action, Outcome, Role, Status, next_status

A, AWC, R = (
    MutationOutcome.APPLIED,
    MutationOutcome.APPLIED_WITH_CONFLICT,
    MutationOutcome.REJECTED,
)
S = Status
TRAIL = [[1, "new"], [2, "assigned"], [5, "en_route"], [7, "on_site"]]


@pytest.mark.parametrize(
    "version, expected",
    [
        (None, None),
        (0, None),  # before the trail: unknown
        (1, S.NEW),
        (2, S.ASSIGNED),
        (4, S.ASSIGNED),
        (5, S.EN_ROUTE),
        (6, S.EN_ROUTE),
        (7, S.ON_SITE),  # at or after the status version: the current status
        (9, S.ON_SITE),
    ],
)
def test_status_at(version: int | None, expected: Status | None) -> None:
    assert status_at(TRAIL, S.ON_SITE, 7, version) is expected


def test_status_at_without_a_trail_knows_only_the_current_status() -> None:
    assert status_at([], S.ON_HOLD, 4, 4) is S.ON_HOLD
    assert status_at([], S.ON_HOLD, 4, 3) is None
    assert status_at([["x", "new"]], S.ON_HOLD, 4, 3) is None
    assert status_at([[1, "flying"]], S.ON_HOLD, 4, 3) is None


def test_trail_keeps_the_last_changes_oldest_first() -> None:
    trail: list[list[object]] = []
    for version in range(1, TRAIL_LENGTH + 5):
        trail = trail_with(trail, version, S.ON_SITE if version % 2 else S.ON_HOLD)
    assert len(trail) == TRAIL_LENGTH
    assert trail[0][0] == 5 and trail[-1] == [TRAIL_LENGTH + 4, "on_hold"]


# (base_version, previous write) -> seen status; the order is on_site since version 7
SEEN_CASES = [
    (None, None, None),  # no base_version: unknown
    (9, None, S.ON_SITE),  # causal: the current status
    (4, None, S.ASSIGNED),  # concurrent: the status at the base version
    (4, (4, S.ON_SITE), S.ON_SITE),  # an offline chain: its own previous write
    (6, (4, S.ON_HOLD), S.EN_ROUTE),  # it pulled since its previous write
]


@pytest.mark.parametrize("base, previous, expected", SEEN_CASES)
def test_seen_status(
    base: int | None, previous: tuple[int | None, Status] | None, expected: Status | None
) -> None:
    seen = seen_status(
        trail=TRAIL, status=S.ON_SITE, status_version=7, base_version=base, previous=previous
    )
    assert seen is expected


# (current, status version, base, seen, target) -> (outcome, action, conflict, code)
SEEN_STATUS_CASES = [
    # the issue's example: on_site from device 1 arrived first; device 2 saw assigned and asks
    # for on_hold, which it could not do from there: refused, as if it had arrived first
    (S.ON_SITE, 4, 3, S.ASSIGNED, S.ON_HOLD, R, None, ConflictKind.INVALID_TRANSITION),
    (S.ASSIGNED, 3, 3, S.ASSIGNED, S.ON_HOLD, R, None, ConflictKind.INVALID_TRANSITION),
    # legal from what it saw: precedence decides as before
    (S.EN_ROUTE, 4, 3, S.ASSIGNED, S.ON_SITE, A, Action.ARRIVE, None),
    (S.ON_SITE, 4, 3, S.ASSIGNED, S.EN_ROUTE, AWC, None, ConflictKind.STATUS_SUPERSEDED),
    # an offline chain (arrive, then hold) on the same base: legal from its own previous write
    (S.ON_SITE, 4, 3, S.ON_SITE, S.ON_HOLD, A, Action.HOLD, None),
    # refused even when the server already has that status
    (S.ON_HOLD, 5, 3, S.ASSIGNED, S.ON_HOLD, R, None, ConflictKind.INVALID_TRANSITION),
    # a status after its own completion: refused
    (S.COMPLETED, 5, 3, S.COMPLETED, S.ON_SITE, R, None, ConflictKind.INVALID_TRANSITION),
    # unknown (no base, or older than the trail): judged from the current status only
    (S.ON_SITE, 4, 3, None, S.ON_HOLD, A, Action.HOLD, None),
    # seen == target: not a move, the usual rules
    (S.ON_HOLD, 5, 3, S.ON_SITE, S.ON_SITE, AWC, None, ConflictKind.STATUS_SUPERSEDED),
]


@pytest.mark.parametrize(
    "current, status_version, base, seen, target, outcome, action, conflict", SEEN_STATUS_CASES
)
def test_decide_status_from_the_seen_status(
    current: Status,
    status_version: int,
    base: int,
    seen: Status | None,
    target: Status,
    outcome: MutationOutcome,
    action: Action | None,
    conflict: ConflictKind | None,
) -> None:
    order = OrderView(current, True, status_version, True, seen=seen)
    verdict = decide_status(order, target, base)
    assert (verdict.outcome, verdict.action, verdict.conflict) == (outcome, action, conflict)
    if outcome is R:
        assert verdict.code == "illegal_transition"


def test_reassigned_away_crews_are_flagged_whatever_they_saw() -> None:
    order = OrderView(S.ASSIGNED, True, 4, False, seen=S.ASSIGNED)
    assert decide_status(order, S.ON_HOLD, 3).conflict is ConflictKind.REASSIGNED_AWAY
    assert decide_status(order, S.ASSIGNED, 3).outcome is A


# ------------------------------------------------------------------ property: arrival orders
@dataclass
class Server:
    """The push path's bookkeeping for one work order, over the pure policies."""

    status: Status
    version: int
    trail: list[list[object]]
    outcome: Outcome | None = None
    work_performed: bool = False
    previous: dict[int, tuple[int | None, Status]] = field(default_factory=dict)
    history: list[tuple[Status, Status]] = field(default_factory=list)

    @property
    def status_version(self) -> int:
        return int(self.trail[-1][0])  # type: ignore[call-overload]

    def change(self, action: Action, role: Role, **kw: object) -> None:
        new = next_status(self.status, action, role, has_crew=True, **kw)  # type: ignore[arg-type]
        self.history.append((self.status, new))
        self.version += 1
        if new is not self.status:
            self.trail = trail_with(self.trail, self.version, new)
        self.status = new

    def push(self, device: int, base: int, write: str) -> None:
        seen = seen_status(
            trail=self.trail,
            status=self.status,
            status_version=self.status_version,
            base_version=base,
            previous=self.previous.get(device),
        )
        view = OrderView(self.status, True, self.status_version, True, self.outcome, None, seen)
        if write == "complete":
            self.previous[device] = (base, S.COMPLETED)
            verdict = decide_completion(view, Outcome.FIXED, None, base)
            if verdict.action is not None:
                self.change(verdict.action, Role.CREW, outcome=Outcome.FIXED)
                self.outcome = Outcome.FIXED
            if verdict.work_performed and not self.work_performed:
                self.work_performed = True
                self.version += 1
            return
        target = Status(write)
        verdict = decide_status(view, target, base)
        if verdict.outcome is not R:  # the app drops a refused write from its screen
            self.previous[device] = (base, target)
        if verdict.action is not None:
            for action in (verdict.action, *verdict.then):
                self.change(action, Role.CREW)


START = {
    # status the devices pulled -> trail that leads there (version, status)
    S.ASSIGNED: [[1, "new"], [2, "assigned"]],
    S.EN_ROUTE: [[1, "new"], [2, "assigned"], [3, "en_route"]],
    S.ON_SITE: [[1, "new"], [2, "assigned"], [3, "on_site"]],
    S.ON_HOLD: [[1, "new"], [2, "assigned"], [3, "on_site"], [4, "on_hold"]],
}
WRITES = st.sampled_from(["en_route", "on_site", "on_hold", "complete"])


def _legal(old: Status, new: Status) -> bool:
    return any(
        rule.source is old and new in (rule.target, rule.target_without_crew)
        for rule in TRANSITIONS.values()
    )


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[Status, str | None, list[list[str]], list[list[int]]]:
    start = draw(st.sampled_from(sorted(START, key=str)))
    office = draw(st.sampled_from([None, None, "cancel", "reassign_same_crew"]))
    # each device: a chain of writes made offline on the same pulled version (valid or not)
    chains = draw(st.lists(st.lists(WRITES, min_size=1, max_size=4), min_size=1, max_size=3))
    tokens = [d for d, chain in enumerate(chains) for _ in chain]
    orders = draw(st.lists(st.permutations(tokens), min_size=2, max_size=4))
    return start, office, chains, orders


def _replay(
    start: Status, office: str | None, chains: list[list[str]], order: list[int]
) -> tuple[Server, list[tuple[Status, Status]]]:
    trail = [list(entry) for entry in START[start]]
    server = Server(start, int(trail[-1][0]), trail)  # type: ignore[call-overload]
    base = server.version
    if office == "cancel":  # the office cancelled before any push arrived
        server.change(Action.CANCEL, Role.DISPATCHER, reason="doublon")
    elif office == "reassign_same_crew":
        server.change(Action.ASSIGN, Role.DISPATCHER)
    server.history.clear()
    position = dict.fromkeys(range(len(chains)), 0)
    for device in order:  # each device's own writes keep their order (consecutive ids)
        write = chains[device][position[device]]
        position[device] += 1
        server.push(device, base, write)
    return server, server.history


@settings(max_examples=600, deadline=None)
@given(scenarios())
def test_final_status_does_not_depend_on_arrival_order(
    scenario: tuple[Status, str | None, list[list[str]], list[list[int]]],
) -> None:
    start, office, chains, orders = scenario
    finals = set()
    completed_somewhere = any("complete" in chain for chain in chains)
    for order in orders:
        server, history = _replay(start, office, chains, order)
        finals.add((server.status, server.outcome, server.work_performed))
        for old, new in history:  # check 7: every persisted change is a transition
            assert _legal(old, new), (old, new, order)
        # completion facts are never lost: completed, or kept and flagged
        if completed_somewhere:
            assert server.status is S.COMPLETED or server.work_performed, (server, order)
        if office == "cancel":
            assert server.status is S.CANCELLED
    assert len(finals) == 1, (start, office, chains, orders, finals)


def test_the_issue_example_ends_the_same_both_ways() -> None:
    one = _replay(S.ASSIGNED, None, [["on_site"], ["on_hold"]], [0, 1])[0]
    two = _replay(S.ASSIGNED, None, [["on_site"], ["on_hold"]], [1, 0])[0]
    assert one.status is two.status is S.ON_SITE


def test_an_offline_chain_goes_through() -> None:
    server = _replay(S.ASSIGNED, None, [["en_route", "on_site", "on_hold", "complete"]], [0] * 4)[0]
    assert server.status is S.COMPLETED
    assert [new for _, new in server.history] == [S.EN_ROUTE, S.ON_SITE, S.ON_HOLD, S.COMPLETED]


def test_a_winning_write_after_the_office_moved_the_order_back_takes_legal_steps() -> None:
    # reassigned to the same crew (back to assigned) while a phone, offline, held the work
    order = OrderView(S.ASSIGNED, True, 4, True, seen=S.ON_SITE)
    verdict = decide_status(order, S.ON_HOLD, 3)
    assert (verdict.outcome, verdict.action, verdict.then) == (A, Action.ARRIVE, (Action.HOLD,))
    # without knowing what the phone saw, the old rule: legal from the current status only
    unknown = decide_status(OrderView(S.ASSIGNED, True, 4, True), S.ON_HOLD, 3)
    assert unknown.conflict is ConflictKind.STATUS_SUPERSEDED


@pytest.mark.parametrize(
    "current, target, path",
    [
        (S.ASSIGNED, S.ON_HOLD, (Action.ARRIVE, Action.HOLD)),
        (S.ASSIGNED, S.EN_ROUTE, (Action.START_ROUTE,)),
        (S.EN_ROUTE, S.ON_HOLD, (Action.ARRIVE, Action.HOLD)),
        (S.ON_HOLD, S.ON_SITE, (Action.RESUME,)),
        (S.ON_SITE, S.EN_ROUTE, None),
        (S.COMPLETED, S.ON_SITE, None),
    ],
)
def test_crew_path(current: Status, target: Status, path: tuple[Action, ...] | None) -> None:
    assert crew_path(current, target, has_crew=True) == path
    assert crew_path(current, target, has_crew=False) is None
