"""The crew app's status buttons equal the server's state table, for every status.

The pull carries the table (``crew_transition/<status>``, built from ``sync/states.py``); the app
draws its buttons from it with ``pwa/js/transitions.js``. This test runs that very module in node
over the table a real pull returned, then pushes every settable status from an order in every
status: each button the app offers is applied as asked, and each move it does not offer is not.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from sync.mutations import SETTABLE_STATUSES
from sync.states import TRANSITIONS, Action, Role, Status, allowed_actions
from tests.support.sync_helpers import SNOW_1, device, work_order

MODULE = Path(__file__).resolve().parents[2] / "pwa" / "js" / "transitions.js"

# How the dispatch desk brings a freshly assigned order to each status.
PATHS: dict[Status, list[dict[str, str]]] = {
    Status.ASSIGNED: [],
    Status.EN_ROUTE: [{"action": "start_route"}],
    Status.ON_SITE: [{"action": "arrive"}],
    Status.ON_HOLD: [{"action": "arrive"}, {"action": "hold"}],
    Status.COMPLETED: [{"action": "complete", "outcome": "fixed"}],
    Status.CANCELLED: [{"action": "cancel", "reason": "Citoyen a rappelé"}],
}


def app_moves(table: dict[str, Any]) -> dict[str, list[dict[str, str]]]:
    """The app's buttons for every status, computed by pwa/js/transitions.js itself."""
    script = (
        f"import {{ crewMoves, transitionTable }} from {json.dumps(MODULE.as_uri())};\n"
        "import { readFileSync } from 'node:fs';\n"
        "const values = JSON.parse(readFileSync(0, 'utf8'));\n"
        "const table = transitionTable(values);\n"
        "const out = {};\n"
        "for (const s of Object.keys(table)) out[s] = crewMoves(s, table);\n"
        "process.stdout.write(JSON.stringify(out));\n"
    )
    node = shutil.which("node")
    assert node, "node is needed to run the app's own module"
    done = subprocess.run(
        [node, "--input-type=module", "-e", script],
        input=json.dumps(list(table.values())),
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    return dict(json.loads(done.stdout))


def expected(status: Status) -> tuple[set[str], bool]:
    actions = allowed_actions(status, Role.CREW, has_crew=True)
    targets = {
        TRANSITIONS[status, a].target.value
        for a in actions
        if a is not Action.COMPLETE and TRANSITIONS[status, a].target in SETTABLE_STATUSES
    }
    return targets, Action.COMPLETE in actions


async def test_app_buttons_equal_server_table_for_every_status(
    client: Any, dispatcher: dict[str, str], crews: dict[str, int]
) -> None:
    phone = await device(client, "mtremblay")
    await phone.pull()
    table = {
        k.split("/", 1)[1]: v for k, v in phone.replica.items() if k.startswith("crew_transition/")
    }
    assert set(table) == {s.value for s in Status}
    moves = app_moves(table)
    for status in Status:
        targets, complete = expected(status)
        offered = moves[status.value]
        assert {m["target"] for m in offered if m["kind"] == "set_status"} == targets, status
        assert any(m["kind"] == "complete" for m in offered) is complete, status
    # the case found in the field: no "En route" on an order on hold
    assert {"kind": "set_status", "target": "en_route"} not in moves["on_hold"]

    # And the server agrees with every button, move by move.
    for status, path in PATHS.items():
        offered = {m["target"] for m in moves[status.value] if m["kind"] == "set_status"}
        for target in sorted(SETTABLE_STATUSES - {status}):  # same status: not a move
            wo = await work_order(client, dispatcher, crews[SNOW_1])
            for step in path:
                r = await client.post(
                    f"/api/v1/work-orders/{wo['id']}/transition", json=step, headers=dispatcher
                )
                assert r.status_code == 200, r.text
            await phone.pull()
            version = phone.order(wo["id"])["version"]
            assert phone.order(wo["id"])["status"] == status.value
            answer = await phone.push(
                phone.mutation(
                    "workorder.set_status@1",
                    {"work_order_id": wo["id"], "status": target.value},
                    version,
                )
            )
            result = answer["results"][0]
            await phone.pull()
            reached = phone.order(wo["id"])["status"] == target.value
            applied = result["outcome"] == "applied" and reached
            assert applied is (target.value in offered), (status, target, result)


@pytest.mark.parametrize("status", list(Status))
def test_table_rows_match_the_state_machine(status: Status) -> None:
    from sync.mutations import crew_transition_table

    row = crew_transition_table()[status.value]
    targets, complete = expected(status)
    assert set(row["set_status"]) == targets  # type: ignore[arg-type]
    assert row["complete"] is complete
