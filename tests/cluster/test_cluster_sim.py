"""The fleet simulator against three API processes and two scheduler processes on one
PostgreSQL: devices spread over the processes (each even device on one process, given out
round robin; each odd device on a random process per request), citizens subscribed to Web Push
through the real test push service, and mid-shift one API process and one scheduler process
killed with SIGKILL and restarted. Afterwards every check of the simulator holds and every push
notification was delivered exactly once.

The long version is ``make cluster-sim`` (``python -m tests.cluster --devices 40 --steps 132``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from server.notify.webpush import VapidKeys
from tests.cluster.sim import count_push_rows, run_cluster_simulation
from tests.cluster.support import running_cluster
from tests.sim.fleet import SimConfig
from tests.sim.server import ClusterServer
from tests.support.push_service import PushService

pytestmark = pytest.mark.postgres_only  # several processes share one database: PostgreSQL


def test_fleet_over_three_api_processes_survives_sigkill_of_an_api_and_a_scheduler(
    app: Any, tmp_path: Path
) -> None:
    config = SimConfig(
        seed=20261129,
        devices=14,
        steps=30,
        dispatchers=2,
        replay_limit=60,
        independence_trials=2,
    )
    with (
        PushService(latency=0.02) as service,
        running_cluster(tmp_path, api=3, schedulers=2) as cluster,
    ):
        pem = cluster.env["TOURNEE_VAPID_PRIVATE_KEY"].encode("ascii")
        service.expect_application_server_key(VapidKeys.from_pem(pem).public_key_b64url)
        server = ClusterServer(cluster, seed=config.seed)
        report = run_cluster_simulation(
            config, server, service=service, citizens=12, count_push_rows=count_push_rows
        )
        print(report.summary())
        print(report.sim.details())
    assert report.sim.passed, report.sim.details()
    assert report.push["ok"], report.summary()
    # The run really exercised what it claims to survive.
    killed = [name for name, status, _ in report.kills]
    assert len(killed) == 2 and killed[0].startswith("api-"), report.kills
    assert killed[1].startswith("scheduler-"), report.kills
    assert all(status == -9 for _, status, _ in report.kills), report.kills  # SIGKILL
    assert report.killed_mid_request is True, report.summary()  # while serving a request
    assert report.ways == {"pinned_round_robin": 7, "random_per_request": 7}
    assert min(report.picks.values()) > 0, report.picks  # every process served dispatchers
    assert report.sim.mutations >= 100, report.sim.summary()
    # Every browser was sent at least its confirmation and one status push; a status push still
    # waiting (quiet hours, backoff) when a newer one for the same request arrived is
    # superseded (one Topic per request: the phone shows the latest only), not delivered.
    rows = report.push["rows"]
    sent = rows.get("delivered", 0) + rows.get("superseded", 0)
    assert sent >= 2 * report.push["browsers"] > 0, report.push
