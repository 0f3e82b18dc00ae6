"""SIGTERM to an API process while crew phones push: each push is answered 200 (and its
mutations are in the database) or fails at the transport level and is retried, successfully,
against the restarted process; none is lost or applied twice. An open SSE stream ends at once,
so the process does not wait out its grace period. A real `tournee run` OS process, on SQLite
and on PostgreSQL."""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from server.db import Database
from server.settings import get_settings
from server.workorders.models import WorkOrderNote
from tests.support.data import PASSWORDS
from tests.support.live_server import free_port

ROOT = Path(__file__).resolve().parents[2]
GRACE_S = 10
PHONES = ("mtremblay", "sgagnon", "icote", "pbouchard", "sroy")


class ApiProcess:
    """`tournee run` as a child process on a fixed port; stop with a signal, start again."""

    def __init__(self, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        self.env = {
            **os.environ,
            "TOURNEE_SCHEDULER": "0",
            "TOURNEE_SHUTDOWN_GRACE_SECONDS": str(GRACE_S),
            "TOURNEE_SYNC_SSE_HEARTBEAT_SECONDS": "1",
            "PYTHONUNBUFFERED": "1",
        }
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> ApiProcess:
        command = [sys.executable, "-m", "server.cli", "run", "--no-migrate",
                   "--port", str(self.port)]  # fmt: skip
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                command, cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log.read_text()
            try:
                if httpx.get(self.url + "/healthz", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"not started: {self.log.read_text()}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=GRACE_S + 10)


@pytest.fixture
def api(app: Any, tmp_path: Path) -> Iterator[ApiProcess]:
    process = ApiProcess(tmp_path / "api.log").start()
    try:
        yield process
    finally:
        process.stop()


@dataclass
class Phone:
    """A crew phone pushing batches of notes; a batch not answered 200 is resent as is."""

    url: str
    headers: dict[str, str]
    work_order_id: int
    client_id: str = field(default_factory=lambda: f"dev-{uuid.uuid4().hex}")
    ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    acknowledged: set[str] = field(default_factory=set)  # note ids of batches answered 200
    created: set[str] = field(default_factory=set)
    failures: dict[str, int] = field(default_factory=dict)
    pending: list[dict[str, Any]] = field(default_factory=list)

    def next_batch(self, size: int = 20) -> list[dict[str, Any]]:
        batch = []
        for _ in range(size):
            note_id = str(uuid.uuid4())
            self.created.add(note_id)
            batch.append({
                "id": next(self.ids), "name": "workorder.add_note@1", "base_version": None,
                "client_ts": "2026-01-15T09:00:00-05:00",
                "args": {"work_order_id": self.work_order_id, "note_id": note_id,
                         "body": f"Note {note_id[:8]}"},
            })  # fmt: skip
        return batch

    def push(self, http: httpx.Client) -> bool:
        if not self.pending:
            self.pending = self.next_batch()
        body = {"protocol": 1, "schema_version": 1, "client_id": self.client_id,
                "mutations": self.pending}  # fmt: skip
        try:
            response = http.post(self.url + "/sync/v1/push", json=body, headers=self.headers)
        except httpx.TransportError as exc:
            name = type(exc).__name__
            self.failures[name] = self.failures.get(name, 0) + 1
            return False
        if response.status_code != 200:
            assert response.status_code in (502, 503, 504), response.text  # never a 500
            key = str(response.status_code)
            self.failures[key] = self.failures.get(key, 0) + 1
            return False
        outcomes = {r["outcome"] for r in response.json()["results"]}
        assert outcomes == {"applied"}, response.text
        self.acknowledged.update(m["args"]["note_id"] for m in self.pending)
        self.pending = []
        return True

    def run(self, stop: threading.Event) -> None:
        give_up: float | None = None  # once stopped, a phone resends for 30 s at most
        with httpx.Client(timeout=30) as http:
            while not stop.is_set() or self.pending:
                if stop.is_set():
                    give_up = give_up or time.monotonic() + 30
                    if time.monotonic() > give_up:
                        return
                if not self.push(http):
                    time.sleep(0.05)  # the phone backs off, then resends the same batch


def _login(url: str, username: str, role: str, **extra: Any) -> dict[str, str]:
    response = httpx.post(
        url + "/api/v1/auth/login",
        json={"username": username, "password": PASSWORDS[role], **extra},
        timeout=30,
    )
    response.raise_for_status()
    return {"Authorization": f"Bearer {response.json()['token']}"}


def _phones(url: str) -> list[Phone]:
    desk = _login(url, "repartiteur1", "dispatcher")
    phones = []
    for username in PHONES:
        headers = _login(url, username, "crew", device_label=f"Téléphone {username}")
        me = httpx.get(url + "/api/v1/auth/me", headers=headers).json()
        order = httpx.post(
            url + "/api/v1/work-orders",
            json={"service_code": "snow-sidewalk", "lat": 46.81, "lon": -71.2,
                  "crew_id": me["crew_id"]},
            headers=desk,
        )  # fmt: skip
        assert order.status_code == 201, order.text
        phones.append(Phone(url, headers, int(order.json()["id"])))
    return phones


def _console(url: str, token: str, ended: threading.Event) -> None:
    with (
        httpx.Client(timeout=60) as http,
        http.stream(
            "GET", url + "/api/v1/live/events",
            headers={"Accept": "text/event-stream", "Authorization": f"Bearer {token}"},
        ) as stream,
    ):  # fmt: skip
        for _ in stream.iter_lines():
            pass
    ended.set()


async def _notes_in_db() -> dict[str, int]:
    db = Database(get_settings())
    try:
        async with db.transaction() as tx:
            rows = await tx.execute(
                select(WorkOrderNote.id, func.count()).group_by(WorkOrderNote.id)
            )
            return {str(note_id): int(count) for note_id, count in rows}
    finally:
        await db.dispose()


def test_sigterm_with_pushes_in_flight_loses_no_acknowledged_mutation(api: ApiProcess) -> None:
    phones = _phones(api.url)
    token = _login(api.url, "repartiteur1", "dispatcher")["Authorization"].split()[1]
    console_ended = threading.Event()
    console = threading.Thread(target=_console, args=(api.url, token, console_ended), daemon=True)
    console.start()
    stop = threading.Event()
    threads = [threading.Thread(target=p.run, args=(stop,)) for p in phones]
    for thread in threads:
        thread.start()
    try:
        deadline = time.monotonic() + 30
        while sum(len(p.acknowledged) for p in phones) < 200:  # pushes are flowing
            assert time.monotonic() < deadline, "no push went through"
            time.sleep(0.05)
        assert api.process is not None
        sent = time.monotonic()
        api.process.send_signal(signal.SIGTERM)
        code = api.process.wait(timeout=GRACE_S + 10)
        stopped_in = time.monotonic() - sent
        assert code in (0, -signal.SIGTERM), api.log.read_text()
        # the open SSE stream did not hold the process for its grace period
        assert stopped_in < GRACE_S / 2, f"{stopped_in:.1f}s to stop"
        assert console_ended.wait(5)
        acked_at_stop = sum(len(p.acknowledged) for p in phones)
        time.sleep(0.5)  # the phones keep trying against a closed port
        api.start()  # the process comes back (a load balancer would route elsewhere meanwhile)
        time.sleep(1.0)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    in_db = asyncio.run(_notes_in_db())
    for phone in phones:
        assert phone.pending == []  # every batch was finally answered 200
        assert phone.acknowledged == phone.created
        assert phone.acknowledged <= set(in_db)  # nothing acknowledged is lost
    assert set(in_db.values()) == {1}  # resent batches were not applied twice
    failures = sum(sum(p.failures.values()) for p in phones)
    assert failures > 0, "no push met the stopped process: the test proved nothing"
    total = sum(len(p.acknowledged) for p in phones)
    assert total > acked_at_stop
