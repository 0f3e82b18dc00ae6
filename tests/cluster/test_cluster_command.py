"""`tournee cluster` as a user runs it: refuses SQLite with an explanation; on PostgreSQL starts
the API and scheduler processes, prints where they are, and stops them all on Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.cluster.support import cluster_env, port_block

ROOT = Path(__file__).resolve().parents[2]
COMMAND = [sys.executable, "-m", "server.cli", "cluster"]


def test_the_cluster_refuses_sqlite(tmp_path: Path) -> None:
    env = {**os.environ, "TOURNEE_DATABASE_URL": f"sqlite:///{tmp_path / 'one.sqlite3'}",
           "TOURNEE_VAR_DIR": str(tmp_path / "var")}  # fmt: skip
    done = subprocess.run(COMMAND, env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "needs PostgreSQL" in done.stderr and "TOURNEE_DATABASE_URL" in done.stderr
    assert not (tmp_path / "var" / "vapid_private.pem").exists()  # nothing was started


@pytest.mark.postgres_only
def test_the_cluster_command_starts_everything_and_stops_on_ctrl_c(
    app: Any, tmp_path: Path
) -> None:
    base = port_block(2)
    process = subprocess.Popen(
        [*COMMAND, "--api", "2", "--schedulers", "1", "--base-port", str(base)],
        env=cluster_env(tmp_path), cwd=ROOT, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    assert process.stdout is not None
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 90
        while not any(line.startswith("Put a load balancer") for line in lines):
            assert time.monotonic() < deadline and process.poll() is None, "".join(lines)
            lines.append(process.stdout.readline())
        shown = "".join(lines)
        for name in ("api-1", "api-2", "scheduler-1"):
            assert name in shown, shown
        assert "X-Forwarded-For trusted from: nobody" in shown  # TOURNEE_FORWARDED_ALLOW_IPS
        for port in (base, base + 1):
            assert f"http://127.0.0.1:{port}" in shown
            health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
            assert health.json() == {"status": "ok", "database": "postgresql"}
        pids = [
            int(line.split()[2]) for line in lines if line.strip().startswith(("api-", "sched"))
        ]
        assert len(pids) == 3, shown
        process.send_signal(signal.SIGINT)  # Ctrl-C
        rest, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, rest
    assert "[cluster] stopped:" in rest
    for pid in pids:  # every child is gone
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
