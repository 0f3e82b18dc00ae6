"""The reference sync client's own logic, against an in-process fake *network peer*.

``FakePeer`` below is a test double of the network (a few lines of protocol bookkeeping), not of
our server: the convergence and no-loss proofs run against the real server in
``tests/integration/test_sync_sim.py``. Here we check what only the client decides: persistence
and crash safety, retry classification, dead letters, gap resend, reset keeping pending writes,
paging applied atomically.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from sync.client import (
    DeviceCrash,
    JsonFileStorage,
    MemoryStorage,
    NetworkError,
    SyncClient,
)


class FakePeer:
    """Minimal protocol peer: per-client ack watermark, a key/value scope, paging."""

    def __init__(self) -> None:
        self.last: dict[str, int] = {}
        self.applied: list[tuple[str, int]] = []
        self.scope: dict[str, Any] = {}
        self.version = 0
        self.page_size = 100
        self.script: list[
            Any
        ] = []  # queued forced answers: NetworkError or (status, headers, body)
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.refuse_names: set[str] = set()  # mutators answered with a batch-level 400
        self.max_batch = 200  # larger batches: 413
        self.reject_names: set[str] = set()  # mutators answered with a `rejected` outcome
        self.upgrade = False

    def __call__(
        self, path: str, body: dict[str, Any], headers: dict[str, str]
    ) -> tuple[int, Mapping[str, str], Any]:
        self.requests.append((path, json.loads(json.dumps(body))))
        if self.script:
            forced = self.script.pop(0)
            if forced == "commit_then_drop":
                self._handle(path, body)
                raise NetworkError("answer lost after commit")
            if isinstance(forced, Exception):
                raise forced
            return forced
        return self._handle(path, body)

    def _handle(self, path: str, body: dict[str, Any]) -> tuple[int, Mapping[str, str], Any]:
        client = body["client_id"]
        if path.endswith("/push"):
            if len(body["mutations"]) > self.max_batch:
                return 413, {}, {"code": "body_too_large"}
            if any(m["name"] in self.refuse_names for m in body["mutations"]):
                return 400, {}, {"code": "validation_failed"}
            outcomes = []
            for m in body["mutations"]:
                last = self.last.get(client, 0)
                if m["id"] <= last:
                    outcomes.append({"id": m["id"], "outcome": "applied", "replay": True})
                    continue
                if m["id"] != last + 1:
                    return 409, {}, {"code": "mutation_gap", "extra": {"last_mutation_id": last}}
                self.last[client] = m["id"]
                if m["name"] in self.reject_names:
                    outcomes.append({"id": m["id"], "outcome": "rejected", "conflict_id": 99})
                    continue
                self.applied.append((client, m["id"]))
                self.scope[f"note/{m['args']['uuid']}"] = m["args"]
                self.version += 1
                outcomes.append({"id": m["id"], "outcome": "applied"})
            return 200, {}, {"last_mutation_id": self.last.get(client, 0), "results": outcomes}
        cookie = body["cookie"]
        keys = sorted(self.scope)
        start = 0 if cookie is None else int(str(cookie).split(":")[1])
        reset = cookie is None or str(cookie).split(":")[0] == "stale"
        if str(cookie).startswith("stale"):
            start = 0
        page = keys[start : start + self.page_size]
        end = start + len(page)
        return (
            200,
            {},
            {
                "cookie": f"v{self.version}:{end if end < len(keys) else 0}",
                "last_mutation_id": self.last.get(client, 0),
                "patch": [{"op": "put", "key": k, "value": self.scope[k]} for k in page],
                "has_more": end < len(keys),
                "reset": reset and start == 0,
                "upgrade": self.upgrade,
            },
        )


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _client(storage: Any, peer: FakePeer, clock: Clock | None = None, **kw: Any) -> SyncClient:
    return SyncClient(storage, peer, clock=clock or Clock(), client_id="dev-1", **kw)


def _note(client: SyncClient, text: str, name: str = "note.add@1") -> int:
    return client.mutate(name, {"uuid": f"u-{text}", "text": text})


# ------------------------------------------------------------------ storage
@pytest.mark.parametrize("step", ["temp_opened", "temp_written", "temp_synced", "replaced"])
def test_json_file_crash_at_any_step_leaves_a_valid_document(tmp_path: Path, step: str) -> None:
    path = tmp_path / "device.json"
    JsonFileStorage(path).save({"n": 1})

    def crash(name: str) -> None:
        if name == step:
            raise DeviceCrash(name)

    with pytest.raises(DeviceCrash):
        JsonFileStorage(path, step_hook=crash).save({"n": 2})
    loaded = JsonFileStorage(path).load()
    assert loaded == ({"n": 2} if step == "replaced" else {"n": 1})
    assert [p.name for p in tmp_path.iterdir()] == ["device.json"], "leftover temp removed"


def test_json_file_torn_temp_file_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "device.json"
    JsonFileStorage(path).save({"n": 1})
    (tmp_path / "device.json.4242.tmp").write_text('{"n": 2, "trunc')
    assert JsonFileStorage(path).load() == {"n": 1}


def test_outbox_survives_restart_and_ids_keep_increasing(tmp_path: Path) -> None:
    storage = JsonFileStorage(tmp_path / "d.json")
    peer = FakePeer()
    first = _client(storage, peer)
    assert [_note(first, "a"), _note(first, "b")] == [1, 2]
    restarted = _client(JsonFileStorage(tmp_path / "d.json"), peer)
    assert [m["id"] for m in restarted.outbox] == [1, 2]
    assert restarted.client_id == "dev-1"
    assert _note(restarted, "c") == 3


def test_crash_before_save_loses_only_the_unsaved_write() -> None:
    storage, peer = MemoryStorage(), FakePeer()
    client = _client(storage, peer)
    _note(client, "kept")
    storage.crash_next_save = "before"
    with pytest.raises(DeviceCrash):
        _note(client, "never-saved")
    restarted = _client(storage, peer)
    assert [m["args"]["text"] for m in restarted.outbox] == ["kept"]
    assert _note(restarted, "next") == 2


def test_crash_after_push_commit_resends_and_server_dedupes() -> None:
    storage, peer = MemoryStorage(), FakePeer()
    client = _client(storage, peer)
    _note(client, "a")
    _note(client, "b")
    storage.crash_next_save = "before"  # the answer arrives, the device dies before saving it
    with pytest.raises(DeviceCrash):
        client.push()
    restarted = _client(storage, peer)
    assert restarted.state["acked_through"] == 0
    result = restarted.push()
    assert result.acknowledged == [1, 2]
    assert peer.applied == [("dev-1", 1), ("dev-1", 2)], "each applied exactly once"


# ------------------------------------------------------------ retry classes
@pytest.mark.parametrize(
    ("forced", "retry"),
    [
        (NetworkError("offline"), "network"),
        ("commit_then_drop", "network"),
        ((503, {}, {"code": "unavailable"}), "http_5xx"),
        ((500, {}, None), "http_5xx"),
        ((429, {"Retry-After": "120"}, {"code": "slow_down"}), "http_429"),
    ],
)
def test_retryable_failures_keep_the_batch_and_back_off(forced: Any, retry: str) -> None:
    clock, peer = Clock(), FakePeer()
    client = _client(MemoryStorage(), peer, clock)
    _note(client, "a")
    peer.script.append(forced)
    result = client.push()
    assert result.retry == retry
    assert [m["id"] for m in client.outbox] == [1]
    assert client.dead_letters == []
    assert client.push().retry == "backoff", "the timer, not the user, decides the retry"
    if retry == "http_429":
        clock.now += 100  # Retry-After 120 s outranks the ~1 s first backoff
        assert client.push().retry == "backoff"
        clock.now += 21
    else:
        clock.now += 1.21  # first backoff: 1 s ± 20 %
    assert client.push().acknowledged == [1]
    assert peer.applied == [("dev-1", 1)]


def test_backoff_grows_and_resets_after_success() -> None:
    clock, peer = Clock(), FakePeer()
    client = _client(MemoryStorage(), peer, clock)
    _note(client, "a")
    delays = []
    for _ in range(10):
        peer.script.append(NetworkError("offline"))
        client.push(ignore_backoff=True)
        delays.append(client.not_before - clock.now)
    for delay, nominal in zip(delays, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300], strict=True):
        assert nominal * 0.8 <= delay <= nominal * 1.2
    assert client.push(ignore_backoff=True).acknowledged == [1]
    assert client.ready()


def test_client_error_on_a_batch_bisects_and_dead_letters_only_the_refused_mutation() -> None:
    peer = FakePeer()
    peer.refuse_names = {"bad@1"}
    client = _client(MemoryStorage(), peer)
    _note(client, "a")
    _note(client, "b")
    _note(client, "c")
    _note(client, "x", name="bad@1")
    result = client.push()
    assert result.dead_lettered == [4]
    assert [d["mutation"]["args"]["text"] for d in client.dead_letters] == ["x"]
    assert client.dead_letters[0]["status"] == 400
    assert peer.applied == [("dev-1", 1), ("dev-1", 2), ("dev-1", 3)]
    assert client.outbox == []


def test_dead_letter_in_the_middle_renumbers_the_following_mutations() -> None:
    peer = FakePeer()
    peer.refuse_names = {"bad@1"}
    client = _client(MemoryStorage(), peer)
    _note(client, "a")
    _note(client, "x", name="bad@1")
    _note(client, "b")
    _note(client, "c")
    result = client.push()
    assert result.retry is None
    assert [d["mutation"]["args"]["text"] for d in client.dead_letters] == ["x"]
    assert peer.applied == [("dev-1", 1), ("dev-1", 2), ("dev-1", 3)]
    assert [m["args"]["text"] for m in client.awaiting_pull] == ["a", "b", "c"]
    assert _note(client, "d") == 4, "ids stay consecutive after the renumbering"
    client.push()
    assert peer.last["dev-1"] == 4


def test_body_too_large_halves_the_batch() -> None:
    peer = FakePeer()
    peer.max_batch = 3
    client = _client(MemoryStorage(), peer, batch_size=10)
    for text in "abcdefgh":
        _note(client, text)
    assert client.push().retry is None
    assert peer.last["dev-1"] == 8 and client.dead_letters == []


@pytest.mark.parametrize(
    ("answer", "flag"),
    [
        ((401, {}, {"code": "token_revoked"}), "auth_required"),
        ((400, {}, {"code": "protocol_unsupported"}), "upgrade_required"),
    ],
)
def test_auth_and_protocol_refusals_keep_the_outbox(answer: Any, flag: str) -> None:
    peer = FakePeer()
    client = _client(MemoryStorage(), peer)
    _note(client, "a")
    _note(client, "b")
    peer.script.append(answer)
    client.push()
    assert getattr(client, flag)
    assert [m["id"] for m in client.outbox] == [1, 2] and client.dead_letters == []
    if flag == "auth_required":
        assert client.push().sent == 0, "no retry storm with a revoked token"
        client.reauthenticated({"Authorization": "Bearer new"})
    assert client.push().acknowledged == [1, 2]


def test_rejected_outcome_is_a_visible_dead_letter_with_its_conflict() -> None:
    peer = FakePeer()
    peer.reject_names = {"status.set@1"}
    client = _client(MemoryStorage(), peer)
    client.mutate("status.set@1", {"uuid": "s", "status": "en_route"}, base_version=3)
    _note(client, "after")
    result = client.push()
    assert result.dead_lettered == [1] and result.acknowledged == [1, 2]
    (dead,) = client.dead_letters
    assert dead["result"]["conflict_id"] == 99
    assert client.outcomes["dev-1:1"]["outcome"] == "rejected"
    assert [m["id"] for m in client.awaiting_pull] == [2], "the rejected one is not displayed"
    assert client.push().sent == 0, "the queue is not blocked by the rejection"


def test_gap_answer_resends_from_the_servers_last_acknowledged_id() -> None:
    storage, peer = MemoryStorage(), FakePeer()
    client = _client(storage, peer)
    for text in "abcde":
        _note(client, text)
    client.push()
    peer.last["dev-1"] = 1  # the server was restored from a backup taken after id 1
    peer.applied = []
    _note(client, "f")
    result = client.push()
    assert result.retry is None
    assert peer.last["dev-1"] == 6
    assert [i for _, i in peer.applied] == [2, 3, 4, 5, 6]


def test_gap_beyond_what_the_device_holds_starts_a_new_client_id() -> None:
    peer = FakePeer()
    ids = iter(["dev-2"])
    client = _client(MemoryStorage(), peer, new_id=lambda: next(ids))
    for text in "abc":
        _note(client, text)
    client.sync()
    assert client.outbox == [] and client.awaiting_pull == []
    peer.last["dev-1"] = 1  # the server lost ids 2-3, the device no longer holds them
    _note(client, "d")
    _note(client, "e")
    assert client.push().retry is None
    assert client.client_id == "dev-2"
    assert peer.last == {"dev-1": 1, "dev-2": 2}
    assert client.state["retired_client_ids"] == ["dev-1"]


# ------------------------------------------------------------------- pull
def test_pull_applies_all_pages_in_one_save_and_drops_reflected_mutations() -> None:
    storage, peer = MemoryStorage(), FakePeer()
    peer.page_size = 2
    client = _client(storage, peer)
    for text in "abcde":
        _note(client, text)
    client.push()
    assert client.outbox == []
    assert len(client.awaiting_pull) == 5, "acknowledged, not yet pulled: kept for display"
    saves = storage.saves
    result = client.pull()
    assert result.applied and result.pages == 3
    assert storage.saves == saves + 1
    assert sorted(client.replica) == [f"note/u-{t}" for t in "abcde"]
    assert client.awaiting_pull == []


def test_network_error_mid_paging_applies_nothing() -> None:
    storage, peer = MemoryStorage(), FakePeer()
    peer.page_size = 2
    peer.scope = {f"k{i}": i for i in range(5)}
    client = _client(storage, peer)
    original = peer._handle
    calls = {"n": 0}

    def flaky(path: str, body: dict[str, Any]) -> Any:
        calls["n"] += 1
        if calls["n"] == 2:
            raise NetworkError("lost on page 2")
        return original(path, body)

    peer._handle = flaky  # type: ignore[method-assign]
    result = client.pull()
    assert not result.applied and result.retry == "network"
    assert client.replica == {} and client.state["cookie"] is None
    assert client.pull(ignore_backoff=True).applied
    assert client.replica == peer.scope


def test_reset_replaces_the_replica_but_keeps_and_replays_pending_writes() -> None:
    storage, peer = MemoryStorage(), FakePeer()
    peer.scope = {"work_order/1": {"status": "assigned"}}

    def predict(view: dict[str, Any], m: dict[str, Any]) -> None:
        view[f"note/{m['args']['uuid']}"] = m["args"]

    client = _client(storage, peer, predictors={"note.add@1": predict})
    client.pull()
    client.state["replica"]["stale/9"] = "gone on the server"
    _note(client, "offline-1")
    _note(client, "offline-2")
    client.state["cookie"] = "stale:0"  # the server no longer knows this cookie
    assert client.pull().reset
    assert client.replica == {"work_order/1": {"status": "assigned"}}
    assert [m["id"] for m in client.outbox] == [1, 2], "pending writes survive the reset"
    assert "note/u-offline-1" in client.view()
    client.push()
    client.pull()
    assert client.outbox == client.awaiting_pull == []
    assert "note/u-offline-2" in client.replica


def test_upgrade_is_flagged_and_pushes_still_go_through() -> None:
    peer = FakePeer()
    peer.upgrade = True
    client = _client(MemoryStorage(), peer)
    _note(client, "a")
    client.sync()
    assert client.upgrade_required
    assert peer.applied == [("dev-1", 1)]


def test_optimistic_view_never_touches_the_replica() -> None:
    peer = FakePeer()

    def predict(view: dict[str, Any], m: dict[str, Any]) -> None:
        view["work_order/1"]["status"] = m["args"]["status"]

    peer.scope = {"work_order/1": {"status": "assigned"}}
    client = _client(MemoryStorage(), peer, predictors={"status.set@1": predict})
    client.pull()
    client.mutate("status.set@1", {"uuid": "s", "status": "en_route"})
    assert client.view()["work_order/1"]["status"] == "en_route"
    assert client.replica["work_order/1"]["status"] == "assigned"
