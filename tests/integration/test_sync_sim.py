"""The fleet simulator in CI: 20 crew devices and 2 dispatchers through a whole shift of faults,
against the real app over real HTTP (uvicorn), on SQLite and on PostgreSQL.

The long version is ``make sim`` (``python -m tests.sim``).
"""

from __future__ import annotations

from typing import Any

from server.app import create_app
from server.settings import get_settings
from tests.sim.fleet import SimConfig
from tests.sim.run import run_simulation
from tests.sim.server import RestartableServer


def test_fleet_of_twenty_devices_converges_through_a_shift_of_faults(app: Any) -> None:
    config = SimConfig(
        seed=20260115,
        devices=20,
        steps=30,  # 22-minute steps over 08:00–19:00
        dispatchers=2,
        replay_limit=60,
        independence_trials=4,
    )
    with RestartableServer(lambda: create_app(get_settings()), first_app=app) as server:
        report = run_simulation(config, server)
    print(report.summary())
    print(report.details())
    assert report.passed, report.details()
    # The run really exercised what it claims to survive.
    assert report.mutations >= 150, report.summary()
    assert report.stats["crashes"] >= 1 and report.stats["server_restarts"] == 1
    assert report.faults["dropped_after_commit"] >= 5, report.faults
    assert report.faults["held_back"] >= 1 and report.faults["duplicated"] >= 1, report.faults
    assert report.conflicts >= 1
