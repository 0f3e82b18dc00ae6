#!/usr/bin/env python3
"""Install the pinned uv into ./.tools/bin with nothing but Python 3.11+ (standard library).

1. ``python3 -m venv`` + pip, when the interpreter has ensurepip;
2. otherwise the uv wheel straight from PyPI, its sha256 checked against PyPI's metadata.
uv itself never downloads a Python here (UV_PYTHON_DOWNLOADS=never in the Makefile).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import platform
import shutil
import stat
import subprocess
import sys
import urllib.request
import zipfile
from pathlib import Path

UV_VERSION = "0.13.8"


def _via_venv(tools: Path) -> bool:
    venv = tools / "venv"
    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True)
        subprocess.run(
            [str(venv / "bin" / "pip"), "install", "--quiet", f"uv=={UV_VERSION}"], check=True
        )
    except (subprocess.CalledProcessError, OSError):
        shutil.rmtree(venv, ignore_errors=True)
        return False
    (tools / "bin").mkdir(parents=True, exist_ok=True)
    target = tools / "bin" / "uv"
    if target.exists() or target.is_symlink():
        target.unlink()
    target.symlink_to(venv / "bin" / "uv")
    return True


def _via_wheel(tools: Path) -> None:
    machine = platform.machine().lower()
    arch = {"amd64": "x86_64", "arm64": "aarch64"}.get(machine, machine)
    index = urllib.request.Request(
        "https://pypi.org/simple/uv/", headers={"Accept": "application/vnd.pypi.simple.v1+json"}
    )
    with urllib.request.urlopen(index, timeout=60) as r:
        meta = json.load(r)
    candidates = [
        f
        for f in meta["files"]
        if f["filename"].startswith(f"uv-{UV_VERSION}-")
        and f["filename"].endswith(".whl")
        and "manylinux" in f["filename"]
        and arch in f["filename"]
    ]
    if not candidates:
        raise SystemExit(f"no uv {UV_VERSION} wheel for {arch}; install uv yourself")
    wheel = candidates[0]
    with urllib.request.urlopen(wheel["url"], timeout=300) as r:
        data = r.read()
    if hashlib.sha256(data).hexdigest() != wheel["hashes"]["sha256"]:
        raise SystemExit("uv wheel checksum mismatch")
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        name = next(n for n in zf.namelist() if n.endswith("/scripts/uv"))
        (tools / "bin").mkdir(parents=True, exist_ok=True)
        target = tools / "bin" / "uv"
        target.write_bytes(zf.read(name))
    target.chmod(target.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


def main() -> None:
    tools = Path(sys.argv[1] if len(sys.argv) > 1 else ".tools").resolve()
    tools.mkdir(parents=True, exist_ok=True)
    if os.environ.get("TOURNEE_BOOTSTRAP") != "wheel" and _via_venv(tools):
        print(f"uv {UV_VERSION} installed in {tools}/venv")
        return
    _via_wheel(tools)
    print(f"uv {UV_VERSION} installed in {tools}/bin")


if __name__ == "__main__":
    main()
