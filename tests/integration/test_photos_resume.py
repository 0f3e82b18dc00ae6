"""A photo upload cut mid-chunk resumes on another API instance, then on another process.

Real HTTP on 127.0.0.1: the cut is a socket closed halfway through a PATCH body. The instances
share only the database and the photo store, as N API processes behind a load balancer would.
"""

from __future__ import annotations

import hashlib
import io
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from server.photos.store import original_key
from server.settings import get_settings
from tests.support.data import PASSWORDS
from tests.support.live_server import LiveServer, free_port

ROOT = Path(__file__).resolve().parents[2]


def _big_jpeg() -> bytes:
    """~1.5 MB: big enough that half of it crosses several socket reads."""
    img = Image.effect_noise((1200, 900), 80).convert("RGB")
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=95)
    return buf.getvalue()


def _login(url: str) -> dict[str, str]:
    response = httpx.post(
        f"{url}/api/v1/auth/login",
        json={"username": "ngauthier", "password": PASSWORDS["crew"], "device_label": "cut"},
    )
    response.raise_for_status()
    return {"Authorization": f"Bearer {response.json()['token']}"}


def _cut_patch(url: str, headers: dict[str, str], upload_id: str, body: bytes, send: int) -> None:
    """Start a PATCH announcing ``len(body)`` bytes, send ``send`` of them, drop the connection."""
    host, port = url.removeprefix("http://").split(":")
    head = (
        f"PATCH /api/v1/photos/uploads/{upload_id} HTTP/1.1\r\n"
        f"Host: {host}:{port}\r\n"
        f"Authorization: {headers['Authorization']}\r\n"
        "Upload-Offset: 0\r\n"
        "Content-Type: application/offset+octet-stream\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(head)
        for start in range(0, send, 64 * 1024):
            sock.sendall(body[start : min(send, start + 64 * 1024)])
            time.sleep(0.01)  # let the server read as it comes, like a slow phone link
        time.sleep(0.3)
    # the socket is closed here, mid-body


def _offset(url: str, headers: dict[str, str], upload_id: str) -> int:
    response = httpx.head(f"{url}/api/v1/photos/uploads/{upload_id}", headers=headers)
    assert response.status_code == 200, response.status_code
    return int(response.headers["upload-offset"])


def _wait_offset(url: str, headers: dict[str, str], upload_id: str) -> int:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        offset = _offset(url, headers, upload_id)
        if offset > 0:
            return offset
        time.sleep(0.05)
    raise AssertionError("the cut chunk was never recorded")


def _resume_and_finish(url: str, headers: dict[str, str], upload_id: str, data: bytes) -> Any:
    offset = _offset(url, headers, upload_id)
    response = httpx.patch(
        f"{url}/api/v1/photos/uploads/{upload_id}",
        content=data[offset:],
        headers={
            **headers,
            "Upload-Offset": str(offset),
            "Content-Type": "application/offset+octet-stream",
        },
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return response.json()


def _check_stored(data: bytes) -> None:
    sha = hashlib.sha256(data).hexdigest()
    stored = get_settings().photo_dir / original_key(sha)
    assert hashlib.sha256(stored.read_bytes()).hexdigest() == sha


@pytest.fixture
def two_instances(app: Any) -> Iterator[tuple[str, str]]:
    from server.app import create_app

    with LiveServer(app) as first, LiveServer(create_app(get_settings())) as second:
        yield first.url, second.url


def test_cut_upload_resumes_on_another_instance(two_instances: tuple[str, str]) -> None:
    first, second = two_instances
    headers = _login(first)
    data = _big_jpeg()
    sha = hashlib.sha256(data).hexdigest()
    created = httpx.post(
        f"{first}/api/v1/photos/uploads",
        json={"sha256": sha, "length": len(data)},
        headers=headers,
    ).json()
    _cut_patch(first, headers, created["id"], data, send=len(data) // 2)
    offset = _wait_offset(second, headers, created["id"])  # asked of the other instance
    assert 0 < offset <= len(data) // 2
    done = _resume_and_finish(second, headers, created["id"], data)
    assert done == {"id": created["id"], "sha256": sha, "length": len(data),
                    "offset": len(data), "complete": True}  # fmt: skip
    assert httpx.head(f"{first}/api/v1/photos/{sha}", headers=headers).status_code == 200
    _check_stored(data)


@pytest.fixture
def other_process(app: Any, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """This process serves one instance; a separate uvicorn process serves another."""
    port = free_port()
    env = {**os.environ, "TOURNEE_SCHEDULER": "0", "PYTHONPATH": str(ROOT)}
    log = (tmp_path / "uvicorn.log").open("wb")  # a file, not a pipe nobody reads while it runs
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "server.app:create_app", "--factory",
         "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90  # a loaded 2-core machine can take long to import
        while True:
            try:
                if httpx.get(f"{url}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                proc.wait(timeout=20)
                err = (tmp_path / "uvicorn.log").read_text(errors="replace")[-4000:]
                raise RuntimeError(f"uvicorn did not start: {err}")
            time.sleep(0.1)
        with LiveServer(app) as local:
            yield local.url, url
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()


def test_cut_upload_resumes_on_another_process(other_process: tuple[str, str]) -> None:
    local, remote = other_process
    headers = _login(local)
    data = _big_jpeg()
    sha = hashlib.sha256(data).hexdigest()
    created = httpx.post(
        f"{remote}/api/v1/photos/uploads",
        json={"sha256": sha, "length": len(data)},
        headers=headers,
    ).json()
    _cut_patch(remote, headers, created["id"], data, send=len(data) // 3)
    offset = _wait_offset(local, headers, created["id"])
    assert 0 < offset <= len(data) // 3
    done = _resume_and_finish(local, headers, created["id"], data)
    assert done["complete"] is True and done["offset"] == len(data)
    assert httpx.head(f"{remote}/api/v1/photos/{sha}", headers=headers).status_code == 200
    _check_stored(data)
