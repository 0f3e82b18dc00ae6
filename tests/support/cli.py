"""Run the `tournee` command in a subprocess over a throw-away SQLite database under a folder."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def tournee(
    folder: Path, *args: str, database: str = "cli.sqlite3", keep_secret: bool = False
) -> subprocess.CompletedProcess[str]:
    """``python -m server.cli *args`` with TOURNEE_VAR_DIR and an SQLite database in ``folder``
    (the run's TOURNEE_SECRET_KEY dropped unless ``keep_secret``: the command makes its own)."""
    env = {
        **os.environ,
        "TOURNEE_VAR_DIR": str(folder / "var"),
        "TOURNEE_DATABASE_URL": f"sqlite:///{folder / database}",
    }
    if not keep_secret:
        env.pop("TOURNEE_SECRET_KEY", None)
    return subprocess.run(
        [sys.executable, "-m", "server.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
