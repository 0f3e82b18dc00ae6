"""The event registry (server/events.py) and the wiring (server/wiring.py), docs/adr/0090."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from server import events, wiring
from server.accounts.events import SessionsEnded
from server.events import DeskItemChanged
from server.photos.events import PhotoAttached
from server.requests.events import RequestCreated
from server.workorders.events import WorkOrderChanged, WorkOrderContentChanged

ROOT = Path(__file__).resolve().parents[2]


def test_the_fan_out_after_a_change_runs_in_the_documented_order() -> None:
    wiring.wire()
    wiring.wire()  # a second call subscribes nothing twice
    names = {
        kind: [listener.__name__ for listener in events.listeners_of(kind)]
        for kind in (
            WorkOrderChanged,
            WorkOrderContentChanged,
            RequestCreated,
            PhotoAttached,
            DeskItemChanged,
            SessionsEnded,
        )
    }
    assert names == {
        WorkOrderChanged: [
            "_sync_feed",
            "_notify_citizens",
            "_photo_evidence",
            "_console_work_order",
        ],
        WorkOrderContentChanged: ["_sync_feed_content"],
        RequestCreated: ["_console_request"],
        PhotoAttached: ["_photo_feed", "_photo_flags", "_console_evidence"],
        DeskItemChanged: ["_console_desk"],
        SessionsEnded: ["_end_streams"],
    }


EMIT_UNWIRED = """
import asyncio
from server import events
try:
    asyncio.run(events.emit(events.DeskItemChanged(None, "conflict_recorded", 1)))
except events.NotWiredError as exc:
    print("refused:", exc)
"""


def test_an_event_before_wiring_is_refused_not_dropped() -> None:
    """A process that forgot wire() must fail loudly: a work order changed without its sync
    stamp would never reach the phones."""
    result = subprocess.run(
        [sys.executable, "-c", EMIT_UNWIRED],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("refused: DeskItemChanged emitted before"), result.stdout
