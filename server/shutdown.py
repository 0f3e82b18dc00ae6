"""Graceful shutdown of an API process: know that SIGTERM/SIGINT arrived *before* uvicorn waits.

On SIGTERM uvicorn stops accepting connections, closes idle keep-alive connections, lets the
requests in flight finish (at most ``TOURNEE_SHUTDOWN_GRACE_SECONDS``, its
``timeout_graceful_shutdown``), and only then runs the app's lifespan shutdown. A Server-Sent
Events stream is a request that never finishes by itself, so it would hold the process for the
whole grace period and then be cancelled. :func:`on_stop_signal` chains a callback in front of
the process's SIGTERM/SIGINT handlers (uvicorn's, when it serves the app), so the app can end
its streams at once (server/live/bus.py) while uvicorn drains the other requests.

Signal handlers belong to the main thread: elsewhere (an app served from a test thread) this is a
no-op and streams end at lifespan shutdown instead.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

__all__ = ["on_stop_signal"]

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def on_stop_signal(callback: Callable[[], None]) -> Callable[[], None]:
    """Run ``callback`` in the running loop when SIGTERM or SIGINT arrives, then hand the signal
    to the handler that was there before (uvicorn's). Returns a function that uninstalls it."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    loop = asyncio.get_running_loop()
    previous: dict[int, Any] = {}

    def handler(signum: int, frame: FrameType | None) -> None:
        if not loop.is_closed():
            loop.call_soon_threadsafe(callback)
        before = previous.get(signum)
        if callable(before):
            before(signum, frame)
        elif before == signal.SIG_DFL:  # nobody handled it: do what the default would do
            signal.signal(signum, signal.SIG_DFL)
            signal.raise_signal(signum)

    for sig in STOP_SIGNALS:
        previous[sig] = signal.getsignal(sig)
        signal.signal(sig, handler)

    def uninstall() -> None:
        for sig, before in previous.items():
            if signal.getsignal(sig) is handler:
                signal.signal(sig, before if before is not None else signal.SIG_DFL)

    return uninstall
