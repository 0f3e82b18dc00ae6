"""Starting a :class:`server.cluster.Cluster` from a test: ports, environment, logs."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from server.cluster import Cluster
from server.settings import get_settings
from tests.support.notify import SUB


def port_block(count: int) -> int:
    """The first of ``count`` consecutive free ports on 127.0.0.1."""
    for _ in range(200):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            base = int(probe.getsockname()[1])
        if base + count > 65535:
            continue
        socks = []
        try:
            for port in range(base, base + count):
                sock = socket.socket()
                socks.append(sock)
                sock.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for sock in socks:
                sock.close()
    raise RuntimeError("no block of free ports")


def cluster_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """This run's database (tests/conftest.py) and photo directory, small pools, pushes allowed
    to the local test push service, jobs every fraction of a second."""
    env = dict(os.environ)
    env.update(
        TOURNEE_VAR_DIR=str(tmp_path / "cluster-var"),
        TOURNEE_PHOTO_DIR=str(get_settings().photo_dir),
        TOURNEE_DB_POOL_SIZE="3",
        TOURNEE_PUSH_ENDPOINT_HOSTS="127.0.0.1",
        TOURNEE_QUIET_HOURS="off",
        TOURNEE_VAPID_SUBJECT=SUB,
        TOURNEE_PUSH_TIMEOUT="2",
        TOURNEE_JOB_PUSH_SECONDS="0.3",
        TOURNEE_JOB_SLA_SECONDS="0",
        TOURNEE_JOB_PRUNE_SECONDS="0",
        TOURNEE_JOB_PHOTOS_SECONDS="2",
        TOURNEE_SHUTDOWN_GRACE_SECONDS="10",
        TOURNEE_SYNC_SSE_HEARTBEAT_SECONDS="1",
        # every simulated phone and citizen comes from 127.0.0.1: one client address
        TOURNEE_RATE_LIMIT_REPORTS="1000/3600",
        TOURNEE_RATE_LIMIT_SUBSCRIPTIONS="1000/3600",
        TOURNEE_RATE_LIMIT_SUBSCRIPTIONS_TOKEN="1000/3600",
        TOURNEE_RATE_LIMIT_SUBSCRIPTIONS_ENDPOINT="1000/3600",
        TOURNEE_RATE_LIMIT_LOGIN="1000/900",
        TOURNEE_RATE_LIMIT_LOGIN_ACCOUNT="1000/900",
        TOURNEE_RATE_LIMIT_OPEN311="1000/3600",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


@contextmanager
def running_cluster(
    tmp_path: Path, *, api: int = 3, schedulers: int = 2, **env: Any
) -> Iterator[Cluster]:
    cluster = Cluster(
        api=api,
        schedulers=schedulers,
        base_port=port_block(api),
        env=cluster_env(tmp_path, **env),
        log_dir=tmp_path / "cluster-logs",
    )
    cluster.prepare()
    cluster.start()
    try:
        yield cluster
    finally:
        codes = cluster.stop()
        # a clean stop: uvicorn re-raises SIGTERM after its graceful shutdown (-15), the
        # scheduler exits 0
        unclean = {name: code for name, code in codes.items() if code not in (0, -15)}
        assert not unclean, f"unclean stop {unclean}; logs in {tmp_path / 'cluster-logs'}"
