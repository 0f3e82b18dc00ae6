"""The sync core stays pure: importing any module of the `sync` package loads no framework."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Runs in a fresh interpreter so that modules imported by other tests don't count.
CHECK = """
import importlib, pkgutil, sys
import sync, sync.states
names = [m.name for m in pkgutil.walk_packages(sync.__path__, "sync.")]
for name in names:
    importlib.import_module(name)
assert "sync.states" in names, names
frameworks = ("sqlalchemy", "sqlmodel", "litestar", "pydantic")
bad = [m for m in sys.modules if m.split(".")[0] in frameworks]
assert not bad, bad
print(len(names))
"""


def test_importing_sync_loads_no_framework() -> None:
    result = subprocess.run(
        [sys.executable, "-c", CHECK],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert int(result.stdout) >= 1
