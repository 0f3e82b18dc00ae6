"""Reference offline sync client for one device (standard library only).

The wire protocol is ``docs/sync-protocol.md`` (v1); this module is the executable reading of it
that the fleet simulator (``tests/sim``) drives against the real server, and the model the PWA
outbox follows. It re-implements no conflict rule: the server decides, the client records.

One device holds one crash-safe JSON document (:mod:`sync.client.storage`):

- ``outbox``: mutations not yet acknowledged, ids ``1, 2, 3, ...`` per ``client_id``, persisted
  before anything is sent, so a crash never loses a write the user saw as saved;
- ``awaiting_pull``: acknowledged mutations not yet reflected in the replica (never re-sent; kept
  only so that the optimistic view does not flicker between a push and the next pull);
- ``replica`` (``key -> value``), ``cookie`` and ``pulled_through`` (the server's
  ``last_mutation_id`` read in the same snapshot as the patch);
- ``dead_letters``: mutations the server ``rejected`` (with the conflict id) or that a 4xx answer
  refused on their own; visible to the user, never silently dropped;
- ``outcomes``: the server's result for every acknowledged id (the device's receipt).

The network is injected: ``transport(path, json_body, headers) -> (status, headers, json)``,
raising :class:`NetworkError` when no answer came back (including an answer lost after the
server committed). Classification follows the protocol's retry table: network error, 5xx and 429
keep the batch and back off on the injected ``clock`` (1 s doubling to 5 min, ±20 % jitter,
``Retry-After`` honoured); ``409 mutation_gap`` resends from the server's watermark; 413 halves
the batch; 401 and ``400 protocol_unsupported`` keep everything and stop; any other 4xx bisects
to the offending mutation, dead-letters it and renumbers the following ones.
"""

from __future__ import annotations

import copy
import random
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from sync.client.storage import DeviceCrash, JsonFileStorage, MemoryStorage, Storage

__all__ = [
    "PROTOCOL_VERSION",
    "SCHEMA_VERSION",
    "DeviceCrash",
    "JsonFileStorage",
    "MemoryStorage",
    "NetworkError",
    "PullResult",
    "PushResult",
    "Storage",
    "SyncClient",
    "Transport",
    "new_state",
]

PROTOCOL_VERSION = 1
SCHEMA_VERSION = 1
PUSH_PATH = "/sync/v1/push"
PULL_PATH = "/sync/v1/pull"
STATE_FORMAT = 1
MAX_BATCH = 200
MAX_PAGES = 10_000
BACKOFF_BASE_S = 1.0
BACKOFF_CAP_S = 300.0
BACKOFF_JITTER = 0.2

Json = Any


class NetworkError(Exception):
    """No HTTP answer reached the device (offline, timeout, reset, answer lost after commit)."""


class Transport(Protocol):
    def __call__(
        self, path: str, body: dict[str, Any], headers: dict[str, str]
    ) -> tuple[int, Mapping[str, str], Json]: ...


@dataclass
class PushResult:
    """What one :meth:`SyncClient.push` call did."""

    sent: int = 0
    acknowledged: list[int] = field(default_factory=list)
    dead_lettered: list[int] = field(default_factory=list)
    retry: str | None = None
    """Why the remaining mutations wait (``network``, ``http_5xx``, ``http_429``, ``backoff``,
    ``auth``, ``protocol``), or ``None`` when nothing is left to send."""


@dataclass
class PullResult:
    applied: bool = False
    pages: int = 0
    reset: bool = False
    retry: str | None = None


def _retry_after(headers: Mapping[str, str]) -> float | None:
    for name, value in headers.items():
        if name.lower() == "retry-after":
            try:
                return max(0.0, float(value))
            except ValueError:
                return None
    return None


def _code(body: Json) -> str | None:
    if isinstance(body, dict):
        code = body.get("code")
        return code if isinstance(code, str) else None
    return None


def _int(body: Json, name: str) -> int | None:
    """An integer under ``name`` in ``body`` or in its problem+json ``params`` map."""
    if not isinstance(body, dict):
        return None
    for place in (body, body.get("params"), body.get("extra")):
        if isinstance(place, dict):
            value = place.get(name)
            if isinstance(value, int) and not isinstance(value, bool):
                return value
    return None


def new_client_id() -> str:
    return str(uuid.uuid4())


def new_state(client_id: str | None = None) -> dict[str, Any]:
    return {
        "format": STATE_FORMAT,
        "client_id": client_id or new_client_id(),
        "retired_client_ids": [],
        "next_id": 1,
        "outbox": [],
        "awaiting_pull": [],
        "acked_through": 0,
        "pulled_through": 0,
        "cookie": None,
        "replica": {},
        "dead_letters": [],
        "outcomes": {},
        "upgrade_required": False,
        "auth_required": False,
    }


Predictor = Callable[[dict[str, Json], dict[str, Any]], None]
"""Applies one pending mutation to a copy of the replica, for display only."""


class SyncClient:
    """One device's sync engine. Every state change is saved before it is acted upon.

    If :meth:`Storage.save` raises (:class:`DeviceCrash` in the simulator), discard the object:
    a new ``SyncClient`` over the same storage is the restarted device.
    """

    def __init__(
        self,
        storage: Storage,
        transport: Transport,
        *,
        headers: Mapping[str, str] | None = None,
        client_id: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        batch_size: int = 50,
        pull_limit: int | None = None,
        predictors: Mapping[str, Predictor] | None = None,
        new_id: Callable[[], str] = new_client_id,
        jitter: random.Random | None = None,
    ) -> None:
        self.storage = storage
        self.transport = transport
        self.headers = dict(headers or {})
        self.clock = clock
        self.wall_clock = wall_clock
        self.batch_size = max(1, min(MAX_BATCH, batch_size))
        self.pull_limit = pull_limit
        self.predictors = dict(predictors or {})
        self.new_id = new_id
        loaded = storage.load()
        if loaded is None:
            loaded = new_state(client_id or new_id())
            storage.save(loaded)
        self.state: dict[str, Any] = loaded
        # Backoff lives in memory only: a restarted app may try at once.
        self.jitter = jitter or random.Random(self.state["client_id"])
        self.failures = 0
        self.not_before = 0.0

    # ----------------------------------------------------------------- reading
    @property
    def client_id(self) -> str:
        return str(self.state["client_id"])

    @property
    def outbox(self) -> list[dict[str, Any]]:
        """Mutations the server has not acknowledged yet."""
        return list(self.state["outbox"])

    @property
    def awaiting_pull(self) -> list[dict[str, Any]]:
        return list(self.state["awaiting_pull"])

    @property
    def dead_letters(self) -> list[dict[str, Any]]:
        return list(self.state["dead_letters"])

    @property
    def replica(self) -> dict[str, Json]:
        return dict(self.state["replica"])

    @property
    def outcomes(self) -> dict[str, dict[str, Any]]:
        """``"<client_id>:<id>" -> result`` for every acknowledged mutation."""
        return dict(self.state["outcomes"])

    @property
    def upgrade_required(self) -> bool:
        return bool(self.state["upgrade_required"])

    @property
    def auth_required(self) -> bool:
        return bool(self.state["auth_required"])

    def view(self) -> dict[str, Json]:
        """The replica with pending mutations applied optimistically (display only)."""
        shown: dict[str, Json] = copy.deepcopy(self.state["replica"])
        for mutation in [*self.state["awaiting_pull"], *self.state["outbox"]]:
            predictor = self.predictors.get(mutation["name"])
            if predictor is not None:
                predictor(shown, mutation)
        return shown

    # ---------------------------------------------------------------- writing
    def _save(self) -> None:
        self.storage.save(self.state)

    def mutate(self, name: str, args: dict[str, Any], *, base_version: int | None = None) -> int:
        """Queue a mutation; returns its id once it is durable on the device."""
        mutation_id = int(self.state["next_id"])
        self.state["next_id"] = mutation_id + 1
        self.state["outbox"].append(
            {
                "id": mutation_id,
                "name": name,
                "base_version": base_version,
                "client_ts": self.wall_clock().isoformat(),
                "args": args,
            }
        )
        self._save()
        return mutation_id

    def reauthenticated(self, headers: Mapping[str, str]) -> None:
        """The user signed in again: new token, same client_id, same outbox."""
        self.headers = dict(headers)
        self.state["auth_required"] = False
        self._save()

    def _envelope(self) -> dict[str, Any]:
        return {
            "protocol": PROTOCOL_VERSION,
            "schema_version": SCHEMA_VERSION,
            "client_id": self.client_id,
        }

    def _back_off(self, retry_after: float | None = None) -> None:
        self.failures += 1
        delay = min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2 ** (self.failures - 1))
        delay *= 1 + self.jitter.uniform(-BACKOFF_JITTER, BACKOFF_JITTER)
        if retry_after is not None:
            delay = max(delay, retry_after)
        self.not_before = self.clock() + delay

    def _succeeded(self) -> None:
        self.failures = 0
        self.not_before = 0.0

    def ready(self) -> bool:
        return self.clock() >= self.not_before and not self.auth_required

    # ------------------------------------------------------------------ push
    def push(self, *, ignore_backoff: bool = False, max_rounds: int = 200) -> PushResult:
        """Send unacknowledged mutations in batches until none is left or one must wait."""
        result = PushResult()
        if self.auth_required:
            result.retry = "auth"
            return result
        if not ignore_backoff and not self.ready():
            result.retry = "backoff"
            return result
        limit = self.batch_size
        for _ in range(max_rounds):
            pending = self.state["outbox"][:limit]
            if not pending:
                return result
            body = {**self._envelope(), "mutations": pending}
            try:
                status, headers, answer = self.transport(PUSH_PATH, body, dict(self.headers))
            except NetworkError:
                self._back_off()
                result.retry = "network"
                return result
            result.sent += len(pending)
            code = _code(answer)
            if status == 429 or status >= 500:
                self._back_off(_retry_after(headers))
                result.retry = "http_429" if status == 429 else "http_5xx"
                return result
            if status == 409 and code == "mutation_gap":
                self._on_gap(answer, result)
                continue
            if status == 401:
                self.state["auth_required"] = True
                self._save()
                result.retry = "auth"
                return result
            if status == 413:
                limit = max(1, len(pending) // 2)
                if len(pending) == 1:
                    self._dead_letter(pending[0], status, answer)
                    result.dead_lettered.append(pending[0]["id"])
                continue
            if status == 400 and code == "protocol_unsupported":
                self.state["upgrade_required"] = True
                self._save()
                result.retry = "protocol"
                return result
            if 400 <= status < 500:
                if len(pending) > 1:
                    limit = max(1, len(pending) // 2)
                    continue
                self._dead_letter(pending[0], status, answer)
                result.dead_lettered.append(pending[0]["id"])
                limit = self.batch_size
                continue
            if not 200 <= status < 300 or not isinstance(answer, dict):
                self._back_off()
                result.retry = "http_5xx"
                return result
            self._succeeded()
            if not self._on_push_answer(answer, result):
                # A 200 that acknowledged nothing we sent: do not spin on it.
                self._back_off()
                result.retry = "not_acknowledged"
                return result
            limit = self.batch_size
        return result

    def _acknowledge_through(self, watermark: int) -> list[int]:
        """Move outbox entries with ``id <= watermark`` to ``awaiting_pull``."""
        done = [m for m in self.state["outbox"] if m["id"] <= watermark]
        if done:
            self.state["outbox"] = [m for m in self.state["outbox"] if m["id"] > watermark]
            self.state["awaiting_pull"].extend(done)
        if watermark > self.state["acked_through"]:
            self.state["acked_through"] = watermark
        return [m["id"] for m in done]

    def _on_gap(self, answer: Json, result: PushResult) -> None:
        server_last = _int(answer, "last_mutation_id")
        if server_last is None:
            raise ValueError(f"gap answer without last_mutation_id: {answer!r}")
        result.acknowledged.extend(self._acknowledge_through(server_last))
        if server_last < self.state["acked_through"]:
            # The server forgot acknowledged ids (restored backup): resend the ones still held.
            back = [m for m in self.state["awaiting_pull"] if m["id"] > server_last]
            self.state["awaiting_pull"] = [
                m for m in self.state["awaiting_pull"] if m["id"] <= server_last
            ]
            self.state["outbox"] = sorted(back + self.state["outbox"], key=lambda m: m["id"])
            self.state["acked_through"] = server_last
        outbox = self.state["outbox"]
        if outbox and outbox[0]["id"] != server_last + 1:
            # The server does not hold what we dropped as acknowledged (a restored backup):
            # start a new client_id and renumber what is still pending from 1 (protocol §3).
            self.state["retired_client_ids"].append(self.state["client_id"])
            self.state["client_id"] = self.new_id()
            self._renumber(1)
            self.state["acked_through"] = 0
            self.state["awaiting_pull"] = []
        self._save()

    def _renumber(self, first: int) -> None:
        next_id = first
        for mutation in self.state["outbox"]:
            mutation["id"] = next_id
            next_id += 1
        self.state["next_id"] = next_id

    def _dead_letter(self, mutation: dict[str, Any], status: int, answer: Json) -> None:
        """Refused on its own by a 4xx: move it aside, keep the following ids consecutive."""
        self.state["outbox"] = [m for m in self.state["outbox"] if m is not mutation]
        self.state["dead_letters"].append(
            {"mutation": mutation, "client_id": self.client_id, "status": status, "problem": answer}
        )
        self._renumber(mutation["id"])
        self._save()

    def _on_push_answer(self, answer: dict[str, Any], result: PushResult) -> bool:
        sent = {m["id"]: m for m in self.state["outbox"]}
        rejected: list[tuple[dict[str, Any], dict[str, Any]]] = []
        for item in answer.get("results") or []:
            if not isinstance(item, dict) or not isinstance(item.get("id"), int):
                continue
            mutation = sent.get(item["id"])
            if mutation is None:
                continue
            self.state["outcomes"][f"{self.client_id}:{item['id']}"] = item
            if item.get("outcome") == "rejected":
                rejected.append((mutation, item))
        watermark = _int(answer, "last_mutation_id")
        if watermark is None:
            return False
        acknowledged = self._acknowledge_through(watermark)
        if rejected:
            gone = {id(m) for m, _ in rejected}
            self.state["awaiting_pull"] = [
                m for m in self.state["awaiting_pull"] if id(m) not in gone
            ]
            for mutation, item in rejected:
                self.state["dead_letters"].append(
                    {
                        "mutation": mutation,
                        "client_id": self.client_id,
                        "status": 200,
                        "result": item,
                    }
                )
        self._save()
        result.acknowledged.extend(acknowledged)
        result.dead_lettered.extend(m["id"] for m, _ in rejected)
        return bool(acknowledged)

    # ------------------------------------------------------------------ pull
    def pull(self, *, ignore_backoff: bool = False) -> PullResult:
        """Fetch every page of changes since the cookie and apply them in one save."""
        result = PullResult()
        if self.auth_required:
            result.retry = "auth"
            return result
        if not ignore_backoff and not self.ready():
            result.retry = "backoff"
            return result
        cookie = self.state["cookie"]
        patch: list[dict[str, Any]] = []
        reset = upgrade = False
        watermark: int | None = None
        for page in range(MAX_PAGES):
            body: dict[str, Any] = {**self._envelope(), "cookie": cookie}
            if self.pull_limit is not None:
                body["limit"] = self.pull_limit
            try:
                status, headers, answer = self.transport(PULL_PATH, body, dict(self.headers))
            except NetworkError:
                self._back_off()
                result.retry = "network"
                return result
            if status == 429 or status >= 500:
                self._back_off(_retry_after(headers))
                result.retry = "http_429" if status == 429 else "http_5xx"
                return result
            if status == 401:
                self.state["auth_required"] = True
                self._save()
                result.retry = "auth"
                return result
            if not 200 <= status < 300 or not isinstance(answer, dict):
                # Any other refusal changes nothing locally.
                if _code(answer) == "protocol_unsupported":
                    self.state["upgrade_required"] = True
                    self._save()
                self._back_off()
                result.retry = f"http_{status}"
                return result
            result.pages += 1
            if page == 0:
                reset = bool(answer.get("reset"))
                # The first page's snapshot: pending ids up to it are reflected (protocol §5).
                watermark = _int(answer, "last_mutation_id")
            upgrade = upgrade or bool(answer.get("upgrade"))
            patch.extend(answer.get("patch") or [])
            cookie = answer.get("cookie", cookie)
            if not answer.get("has_more"):
                break
        else:  # pragma: no cover - a server bug, not a network condition
            raise RuntimeError("pull did not finish within MAX_PAGES pages")
        self._succeeded()
        self._apply_pull(patch, cookie, reset, upgrade, watermark)
        result.applied = True
        result.reset = reset
        return result

    def _apply_pull(
        self,
        patch: list[dict[str, Any]],
        cookie: Json,
        reset: bool,
        upgrade: bool,
        watermark: int | None,
    ) -> None:
        replica: dict[str, Json] = {} if reset else dict(self.state["replica"])
        for op in patch:
            if op.get("op") == "put":
                replica[op["key"]] = op["value"]
            elif op.get("op") == "del":
                replica.pop(op["key"], None)
        self.state["replica"] = replica
        self.state["cookie"] = cookie
        self.state["upgrade_required"] = upgrade
        if watermark is not None:
            # Reflected mutations leave; the pending ones above stay and are rebased by view().
            self._acknowledge_through(watermark)
            self.state["pulled_through"] = watermark
            self.state["awaiting_pull"] = [
                m for m in self.state["awaiting_pull"] if m["id"] > watermark
            ]
        self._save()

    # ------------------------------------------------------------------ both
    def sync(self, *, ignore_backoff: bool = False) -> tuple[PushResult, PullResult]:
        """Push, then pull (so the pull reflects this device's own writes)."""
        pushed = self.push(ignore_backoff=ignore_backoff)
        if pushed.retry in ("network", "http_5xx", "http_429", "backoff"):
            return pushed, PullResult(retry=pushed.retry)
        return pushed, self.pull(ignore_backoff=True)
