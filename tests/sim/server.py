"""The real app behind real HTTP for the simulator, restartable on the same database and port."""

from __future__ import annotations

import random
import signal
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from tests.sim.transport import InFlight, MultiServerHandle, ServerHandle
from tests.support.live_server import LiveServer, free_port

if TYPE_CHECKING:
    from server.cluster import Cluster


class RestartableServer:
    """A uvicorn :class:`LiveServer`; :meth:`restart` stops it and serves a new app instance
    (fresh process state: engine, pools, caches) over the same database, on the same port."""

    def __init__(self, app_factory: Callable[[], Any], first_app: Any | None = None) -> None:
        self.app_factory = app_factory
        self.port = free_port()
        self.handle = ServerHandle(f"http://127.0.0.1:{self.port}")
        self._first_app = first_app
        self.live: LiveServer | None = None
        self.restarts = 0

    def start(self) -> RestartableServer:
        app = self._first_app if self._first_app is not None else self.app_factory()
        self._first_app = None
        self.live = LiveServer(app, port=self.port).start()
        return self

    def stop(self) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None

    def restart(self) -> None:
        self.stop()
        self.start()
        self.restarts += 1

    def __enter__(self) -> RestartableServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class ClusterServer:
    """The fleet's server when it is a :class:`server.cluster.Cluster` (API processes and
    scheduler processes as OS processes over one PostgreSQL).

    :attr:`handle` sends each request to the next API process in turn (dispatchers and the
    fleet's own calls); devices may be given their own handles (one process, or a random one per
    request), sharing :attr:`in_flight`. :meth:`restart` is the fleet's mid-shift "server
    restart": it returns at once and, a random fraction of a second later, as soon as the chosen
    API process is serving a request (``in_flight``), kills it and one scheduler process with
    SIGKILL and starts them again, while the shift goes on; :meth:`settle` waits until they are
    back.
    """

    def __init__(self, cluster: Cluster, seed: int = 0) -> None:
        self.cluster = cluster
        self.in_flight = InFlight()
        self.handle = MultiServerHandle(cluster.api_urls, "round_robin", in_flight=self.in_flight)
        self.rng = random.Random(seed)
        self.restarts = 0
        self.kills: list[tuple[str, int | None, float]] = []  # name, exit status, downtime
        self.killed_mid_request: bool | None = None
        self._chaos: threading.Thread | None = None
        self.errors: list[BaseException] = []

    def _kill_and_restart(self, names: list[str], delay: float) -> None:
        try:
            time.sleep(delay)
            url = self.cluster.children[names[0]].url
            if url is not None:  # kill it while it serves a request (a push, most likely)
                self.killed_mid_request = self.in_flight.wait_busy(url, timeout=10)
            started = time.monotonic()
            codes = {name: self.cluster.kill(name, signal.SIGKILL) for name in names}
            time.sleep(0.5)  # down for a while: requests to it fail and are retried
            for name in names:
                self.cluster.restart(name)
                self.kills.append((name, codes[name], time.monotonic() - started))
        except BaseException as exc:  # surfaced by settle()
            self.errors.append(exc)

    def restart(self) -> None:
        api = self.rng.choice(self.cluster.api_names)
        victims = [api]
        if self.cluster.scheduler_names:
            victims.append(self.rng.choice(self.cluster.scheduler_names))
        self._chaos = threading.Thread(
            target=self._kill_and_restart, args=(victims, self.rng.uniform(0.0, 0.3)), daemon=True
        )
        self._chaos.start()
        self.restarts += 1

    def settle(self, timeout: float = 120.0) -> None:
        if self._chaos is not None:
            self._chaos.join(timeout)
            if self._chaos.is_alive():
                raise AssertionError("the killed processes did not come back")
        if self.errors:
            raise self.errors[0]
