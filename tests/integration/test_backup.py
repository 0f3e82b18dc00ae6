"""`tournee backup` of a running demo, `tournee restore` into a new directory (and a new
database): every row of every table and every photo file is there, the keys too."""

from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess
import sys
import time
import uuid
from dataclasses import replace
from pathlib import Path

import httpx

from server.backup import row_counts
from server.settings import get_settings
from tests.support.live_server import free_port
from tests.support.pg import admin_sql
from tests.support.pg import database_url as pg_database_url

# Not imported from tests.conftest: importing it again would run it again (a new test database
# name in TOURNEE_DATABASE_URL for the whole session).
BACKEND = os.environ.get("TOURNEE_TEST_DATABASE", "sqlite")


def _env(var: Path, url: str) -> dict[str, str]:
    env = {
        **os.environ,
        "TOURNEE_VAR_DIR": str(var),
        "TOURNEE_PHOTO_DIR": str(var / "photos"),
        "TOURNEE_DATABASE_URL": url,
        "TOURNEE_SCHEDULER": "0",  # nothing writes once the test stops writing
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("TOURNEE_SECRET_KEY", None)
    return env


def _tournee(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "server.cli", *args], env=env,
                          capture_output=True, text=True, timeout=300, check=False)  # fmt: skip


def _files(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in root.rglob("*")
        if p.is_file()
    }


def _counts(var: Path, url: str) -> dict[str, int]:
    url = url.replace("sqlite:///", "sqlite+aiosqlite:///")
    url = url.replace("postgresql://", "postgresql+asyncpg://")
    settings = replace(get_settings(), var_dir=var, database_url=url)
    return asyncio.run(row_counts(settings))


def test_backup_a_running_demo_and_restore_it_elsewhere(tmp_path: Path) -> None:
    names = []
    if BACKEND == "postgresql":
        names = [f"tournee_bk_{uuid.uuid4().hex[:8]}" for _ in range(2)]
        for name in names:
            asyncio.run(admin_sql(f'CREATE DATABASE "{name}"'))
        source_url, target_url = (pg_database_url(n) for n in names)
    else:
        source_url = f"sqlite:///{tmp_path / 'a' / 'tournee.sqlite3'}"
        target_url = f"sqlite:///{tmp_path / 'b' / 'tournee.sqlite3'}"
    try:
        source = _env(tmp_path / "a", source_url)
        photos = tmp_path / "a" / "photos" / "originals" / "ab"
        photos.mkdir(parents=True)
        for index in range(3):
            blob = os.urandom(2000 + index)
            (photos / hashlib.sha256(blob).hexdigest()).write_bytes(blob)
        port = free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "server.cli", "run", "--demo", "--port", str(port)],
            env=source, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 120
            while True:
                assert server.poll() is None and time.monotonic() < deadline
                try:
                    if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.2)
            for n in range(5):  # the running service writes (WAL on SQLite) before the copy
                created = httpx.post(f"{url}/api/v1/public/requests", json={
                    "service_code": "pothole", "address": f"{n}, rue du Sauvetage",
                    "lat": 46.8139, "lon": -71.2080})  # fmt: skip
                assert created.status_code == 201, created.text
            done = _tournee(source, "backup", str(tmp_path / "backup"))
            assert done.returncode == 0, done.stderr
            again = _tournee(source, "backup", str(tmp_path / "backup"))
            assert again.returncode == 1 and "not empty" in again.stderr
        finally:
            server.terminate()
            server.wait(timeout=60)
        expected = _counts(tmp_path / "a", source_url)
        assert expected["service_request"] > 5 and expected["user_account"] > 0

        target = _env(tmp_path / "b", target_url)
        restored = _tournee(target, "restore", str(tmp_path / "backup"))
        assert restored.returncode == 0, restored.stderr
        assert _counts(tmp_path / "b", target_url) == expected
        assert _files(tmp_path / "b" / "photos") == _files(tmp_path / "a" / "photos")
        for key in ("secret_key", "vapid_private.pem"):
            assert (tmp_path / "b" / key).read_bytes() == (tmp_path / "a" / key).read_bytes()
        if BACKEND != "postgresql":
            refused = _tournee(target, "restore", str(tmp_path / "backup"))
            assert refused.returncode == 1 and "--force" in refused.stderr
        not_a_backup = _tournee(target, "restore", str(tmp_path))
        assert not_a_backup.returncode == 1 and "manifest" in not_a_backup.stderr
    finally:
        for name in names:
            asyncio.run(admin_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
