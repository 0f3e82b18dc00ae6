"""A real uvicorn server in a background thread, for tests that need real HTTP on 127.0.0.1."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import uvicorn


async def stream_ticket(http: Any, token: str) -> dict[str, str]:
    """``params`` for an SSE route: a fresh single-use ticket standing for ``token``."""
    answer = await http.post(
        "/api/v1/auth/stream-ticket", headers={"Authorization": f"Bearer {token}"}
    )
    assert answer.status_code == 201, answer.text
    return {"ticket": str(answer.json()["ticket"])}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LiveServer:
    def __init__(self, app: Any, port: int | None = None, **options: Any) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        options = {"log_level": "warning", **options}
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, lifespan="on", **options)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("live server did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=20)

    def __enter__(self) -> LiveServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def seeded_server_as_admin() -> Iterator[tuple[str, str]]:
    """A live server over the run's database freshly seeded; yields (url, an admin's token)."""
    from server.app import create_app
    from server.settings import get_settings
    from tests.support.data import PASSWORDS, reset_and_seed_now

    settings = get_settings()
    reset_and_seed_now(settings)
    with LiveServer(create_app(settings)) as server:
        response = httpx.post(
            f"{server.url}/api/v1/auth/login",
            json={"username": "admin", "password": PASSWORDS["admin"]},
        )
        response.raise_for_status()
        yield server.url, str(response.json()["token"])
