"""The sync core stays pure: importing any module of the `sync` package loads no framework."""

from __future__ import annotations

import ast
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
assert "sync.client" in names and "sync.client.storage" in names, names
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


IO_MODULES = {"os", "pathlib", "time", "random", "socket", "io", "tempfile", "shutil", "asyncio"}


def test_the_core_does_no_io_and_ignores_the_client() -> None:
    """states, policies, mutations, cursor: no file, clock, randomness or network module, and no
    import of the reference client (sync/client/: a phone's outbox, storage and clock)."""
    core = [p for p in (ROOT / "sync").glob("*.py")]
    assert {p.stem for p in core} >= {"states", "policies", "mutations", "cursor"}
    for path in core:
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                modules = [node.module or ""]
            else:
                continue
            for module in modules:
                assert module.split(".")[0] not in IO_MODULES, (path.name, module)
                assert not module.startswith("sync.client"), (path.name, module)
