"""A crew shift on a real network, for the field e2e test and `make bench-field`.

- :class:`Gate`: a TCP relay in front of the live server. ``open`` relays; ``hang`` is "lie-fi":
  connections are accepted and never answered (the phone thinks it is online).
- Slow 3G through the DevTools protocol (``Network.emulateNetworkConditions``).
- Camera-like photos (tests/support/camera.py) and the crew's work done through the app's UI.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from tests.support.camera import camera_jpeg

SLOW_3G = {"latency": 400, "downloadThroughput": 400_000 / 8, "uploadThroughput": 400_000 / 8}
SITE = (46.8139, -71.2080)  # rue Saint-Jean (the e2e conftest's geolocation)
FAR = (46.8320, -71.2300)  # ~2.5 km away
CITY_TZ = ZoneInfo("America/Toronto")


class Gate:
    """A relay on 127.0.0.1 to ``upstream_port``; ``hang()`` makes it a silent network."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream = ("127.0.0.1", upstream_port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self.mode = "open"
        self.sockets: set[socket.socket] = set()
        self.lock = threading.Lock()
        self.closed = False
        self.bytes_up = 0  # bytes the browser sent through the gate (requests, bodies)
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            with self.lock:
                self.sockets.add(client)
            if self.mode == "hang":
                continue  # accepted, never answered
            try:
                upstream = socket.create_connection(self.upstream)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.sockets.add(upstream)
            for a, b, up in ((client, upstream, True), (upstream, client, False)):
                threading.Thread(target=self._pump, args=(a, b, up), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, up: bool) -> None:
        try:
            while data := src.recv(65536):
                if up:
                    self.bytes_up += len(data)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def _drop_all(self) -> None:
        with self.lock:
            for s in self.sockets:
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                with contextlib.suppress(OSError):
                    s.close()
            self.sockets.clear()

    def hang(self) -> None:
        self.mode = "hang"
        self._drop_all()  # kept-alive connections must not bypass the silence

    def open(self) -> None:
        self.mode = "open"
        self._drop_all()

    def close(self) -> None:
        self.closed = True
        with contextlib.suppress(OSError):
            self.listener.close()
        self._drop_all()


def throttle(
    cdp: Any, conditions: dict[str, float] | None = SLOW_3G, *, offline: bool = False
) -> None:
    """Slow 3G (or no throttling with ``None``) on one page, through the DevTools protocol."""
    cdp.send("Network.enable")
    values = conditions or {"latency": 0, "downloadThroughput": -1, "uploadThroughput": -1}
    cdp.send("Network.emulateNetworkConditions", {"offline": offline, **values})


class Photos:
    """Camera-like JPEGs (~1.5 MB, EXIF, Orientation 6): two base images, varied by EXIF time,
    so each photo has its own sha256 without encoding a new 12 MP image every time."""

    def __init__(self) -> None:
        self.now = datetime.now(CITY_TZ).replace(tzinfo=None, microsecond=0)
        self.bases = {
            "site": camera_jpeg(1, taken=self.now, lat=SITE[0], lon=SITE[1]),
            # far away and two days old: a gallery photo, flagged whatever its size
            "far": camera_jpeg(2, taken=self.now - timedelta(days=2), lat=FAR[0], lon=FAR[1]),
        }
        self.taken = {"site": self.now, "far": self.now - timedelta(days=2)}

    def make(self, kind: str, n: int) -> bytes:
        taken = self.taken[kind]
        stamp = taken.strftime("%Y:%m:%d %H:%M:%S").encode()
        varied = (taken - timedelta(seconds=n)).strftime("%Y:%m:%d %H:%M:%S").encode()
        return self.bases[kind].replace(stamp, varied)

    def taken_at(self, kind: str, n: int) -> datetime:
        return self.taken[kind] - timedelta(seconds=n)


def work_jobs_offline(
    page: Any, order_ids: list[int], photos: Photos, kinds: tuple[str, ...] = ("site", "far")
) -> None:
    """Each job: on site, a photo at the site and a far/old one, completed — through the UI."""
    for n, wid in enumerate(order_ids):
        page.goto(f"/#/equipe/bt/{wid}")
        page.wait_for_selector(f'#work-order-detail[data-work-order="{wid}"]')
        page.click("#act-on-site")
        page.wait_for_selector('#work-order-detail .badge[data-status="on_site"]')
        for i, kind in enumerate(kinds):
            data = photos.make(kind, n)
            page.set_input_files(
                "#photo-input",
                files=[{"name": f"IMG_{n}_{kind}.jpg", "mimeType": "image/jpeg", "buffer": data}],
            )
            page.wait_for_function(
                "(n) => document.querySelectorAll('#photo-list li').length === n", arg=i + 1
            )
        page.select_option("#complete-outcome", "fixed")
        page.click("#act-complete")
        page.wait_for_selector('#work-order-detail .badge[data-status="completed"]')


def pending_count(page: Any) -> int:
    return int(page.get_attribute("#pending-count", "data-count") or -1)


def wait_until(check: Any, timeout: float, step: float = 0.05, page: Any = None) -> float:
    """Seconds until ``check()`` is true (raises TimeoutError past ``timeout``). With ``page``,
    waits through Playwright, so the page's events (requests, responses) keep being delivered."""
    start = time.monotonic()
    while True:
        if check():
            return time.monotonic() - start
        if time.monotonic() - start > timeout:
            raise TimeoutError(f"not reached in {timeout} s")
        if page is not None:
            page.wait_for_timeout(step * 1000)
        else:
            time.sleep(step)


def kill_browser(profile: Path) -> int:
    """SIGKILL the Chromium started on ``profile`` (its main process: found by its own
    --user-data-dir, no --type=); returns its pid. No graceful shutdown, like a phone's OOM kill."""
    marker = f"--user-data-dir={profile}".encode()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            args = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if marker in args and not any(a.startswith(b"--type=") for a in args):
            pid = int(proc.name)
            os.kill(pid, signal.SIGKILL)
            return pid
    raise LookupError(f"no browser on {profile}")


LIST_READY_MS = """() => {
  const mark = performance.getEntriesByName("tournee:crew-list")[0];
  return mark ? mark.startTime : null;
}"""
