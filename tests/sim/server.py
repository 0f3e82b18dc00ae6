"""The real app behind real HTTP for the simulator, restartable on the same database and port."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.sim.transport import ServerHandle
from tests.support.live_server import LiveServer, free_port


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
