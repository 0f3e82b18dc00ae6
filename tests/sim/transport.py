"""Transports for the reference client: real HTTP (httpx) plus injected network faults.

:class:`HttpTransport` posts JSON to the live server and turns every transport-level failure
(refused connection while the server restarts, reset, timeout) into
:class:`sync.client.NetworkError`. :class:`FaultyTransport` wraps it per device and decides, from
the device's seeded ``random.Random``, whether this call:

- finds the device offline (no request leaves the phone);
- is committed by the server but its answer is lost (request performed, then ``NetworkError``);
- is delivered twice (the second answer is the one the device sees);
- is held back and delivered later, after newer requests (the device sees ``NetworkError`` now;
  the held copy reaches the server at a later step: reordered and duplicated delivery).

Every push body the server answered with 200 (applied, whether or not the device saw the answer)
is recorded so that the idempotence check can replay it.
"""

from __future__ import annotations

import contextlib
import copy
import random
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from sync.client import NetworkError


class InFlight:
    """Which server URLs have a request in flight right now (shared by several transports), so a
    test can kill a process while it is serving one."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._busy: dict[str, int] = {}

    def begin(self, url: str) -> None:
        with self._lock:
            self._busy[url] = self._busy.get(url, 0) + 1

    def end(self, url: str) -> None:
        with self._lock:
            self._busy[url] -= 1

    def busy(self, url: str) -> bool:
        with self._lock:
            return self._busy.get(url, 0) > 0

    def wait_busy(self, url: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not self.busy(url):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.0005)
        return True


class ServerHandle:
    """Where the live server currently listens (the same port across restarts)."""

    def __init__(self, url: str, in_flight: InFlight | None = None) -> None:
        self.url = url
        self.in_flight = in_flight


class MultiServerHandle:
    """Several API processes and no load balancer: every read of :attr:`url` (one per request)
    picks one, in turn (``round_robin``) or at random from a seeded ``rng`` (``random``)."""

    def __init__(
        self,
        urls: list[str],
        mode: str = "round_robin",
        rng: random.Random | None = None,
        in_flight: InFlight | None = None,
    ) -> None:
        if not urls or mode not in ("round_robin", "random"):
            raise ValueError("urls and a mode (round_robin, random) are required")
        self.in_flight = in_flight
        self.urls = list(urls)
        self.mode = mode
        self.rng = rng or random.Random(0)
        self._next = 0
        self.picks: dict[str, int] = dict.fromkeys(self.urls, 0)

    @property
    def url(self) -> str:
        if self.mode == "random":
            chosen = self.rng.choice(self.urls)
        else:
            chosen = self.urls[self._next % len(self.urls)]
            self._next += 1
        self.picks[chosen] += 1
        return chosen


class HttpTransport:
    def __init__(self, server: ServerHandle, timeout: float = 30.0) -> None:
        self.server = server
        self.http = httpx.Client(timeout=timeout)
        self.requests = 0
        self.errors: dict[str, int] = {}  # transport errors by exception name

    def __call__(
        self, path: str, body: dict[str, Any], headers: dict[str, str]
    ) -> tuple[int, Mapping[str, str], Any]:
        self.requests += 1
        url = self.server.url
        in_flight: InFlight | None = getattr(self.server, "in_flight", None)
        if in_flight is not None:
            in_flight.begin(url)
        try:
            response = self.http.post(url + path, json=body, headers=headers)
        except httpx.TransportError as exc:
            self.errors[type(exc).__name__] = self.errors.get(type(exc).__name__, 0) + 1
            raise NetworkError(f"{type(exc).__name__}: {exc}") from exc
        finally:
            if in_flight is not None:
                in_flight.end(url)
        try:
            answer = response.json() if response.content else None
        except ValueError:
            answer = None
        return response.status_code, dict(response.headers), answer

    def close(self) -> None:
        self.http.close()


@dataclass
class FaultRates:
    drop_after_commit: float = 0.0
    duplicate: float = 0.0
    hold_back: float = 0.0

    @classmethod
    def none(cls) -> FaultRates:
        return cls()


@dataclass
class FaultStats:
    offline_refusals: int = 0
    dropped_after_commit: int = 0
    duplicated: int = 0
    held_back: int = 0
    delivered_late: int = 0


@dataclass
class FaultyTransport:
    inner: HttpTransport
    rng: random.Random
    rates: FaultRates = field(default_factory=FaultRates)
    online: bool = True
    held: list[tuple[str, dict[str, Any], dict[str, str]]] = field(default_factory=list)
    pushes: list[tuple[dict[str, Any], dict[str, str]]] = field(default_factory=list)
    stats: FaultStats = field(default_factory=FaultStats)
    forced: list[str] = field(default_factory=list)
    """Faults for the next calls, in order (``hold``, ``drop``, ``duplicate``, ``none``): the
    stateful test chooses them instead of the random rates."""

    def _send(
        self, path: str, body: dict[str, Any], headers: dict[str, str]
    ) -> tuple[int, Mapping[str, str], Any]:
        answer = self.inner(path, body, headers)
        if path.endswith("/push") and answer[0] == 200:
            self.pushes.append((copy.deepcopy(body), dict(headers)))
        return answer

    def __call__(
        self, path: str, body: dict[str, Any], headers: dict[str, str]
    ) -> tuple[int, Mapping[str, str], Any]:
        if not self.online:
            self.stats.offline_refusals += 1
            raise NetworkError("device offline")
        if self.forced:
            fault = self.forced.pop(0)
            rates = FaultRates(
                hold_back=float(fault == "hold"),
                drop_after_commit=float(fault == "drop"),
                duplicate=float(fault == "duplicate"),
            )
            roll = 0.0 if fault != "none" else 1.0
        else:
            roll = self.rng.random()
            rates = self.rates
        if roll < rates.hold_back:
            self.stats.held_back += 1
            self.held.append((path, copy.deepcopy(body), dict(headers)))
            raise NetworkError("request held back (delivered later)")
        roll -= rates.hold_back
        if roll < rates.drop_after_commit:
            self.stats.dropped_after_commit += 1
            self._send(path, body, headers)
            raise NetworkError("answer lost after the server committed")
        roll -= rates.drop_after_commit
        if roll < rates.duplicate:
            self.stats.duplicated += 1
            with contextlib.suppress(NetworkError):
                self._send(path, body, headers)
        return self._send(path, body, headers)

    def deliver_held(self, count: int | None = None) -> int:
        """Deliver (some of) the held-back requests now, answers discarded."""
        taken = self.held if count is None else self.held[:count]
        self.held = [] if count is None else self.held[count:]
        for path, body, headers in taken:
            try:
                self._send(path, body, headers)
                self.stats.delivered_late += 1
            except NetworkError:
                self.held.append((path, body, headers))
        return len(taken)
