"""``tournee backup`` / ``tournee restore``: the database, the photos and the keys, in one folder.

SQLite is copied with its online backup API (``sqlite3.Connection.backup``): a consistent
snapshot while the service runs, WAL included, never a half-written file. PostgreSQL goes
through ``pg_dump --format=custom`` and ``pg_restore``. Photos are plain files under
``TOURNEE_PHOTO_DIR`` named by their SHA-256: copied as they are (a photo written during the
copy is either whole or absent: the store writes to a temporary name and renames). The
installation secret and VAPID key are copied when they live under ``TOURNEE_VAR_DIR`` (without
them sessions, pull cookies and push subscriptions would not survive a restore). A
``manifest.json`` records the row count of every table, for a check after restore.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sqlite3
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlmodel import SQLModel

import server.models  # noqa: F401  (every table in SQLModel.metadata)
from server.db import Database
from server.settings import Settings

DB_SQLITE = "database.sqlite3"
DB_PG = "database.pgdump"
KEYS = ("secret_key", "vapid_private.pem")


class BackupError(Exception):
    """A one-line reason the backup or restore cannot go on."""


def _sqlite_path(settings: Settings) -> Path:
    return Path(settings.database_url.split(":///", 1)[1])


def _libpq_url(settings: Settings) -> str:
    return "postgresql://" + settings.database_url.split("://", 1)[1]


async def row_counts(settings: Settings) -> dict[str, int]:
    db = Database(settings)
    try:
        async with db.transaction() as tx:
            return {
                table.name: int(
                    (await tx.execute(select(func.count()).select_from(table))).scalar_one()
                )
                for table in SQLModel.metadata.sorted_tables
            }
    finally:
        await db.dispose()


def _photo_files(root: Path) -> list[str]:
    if not root.is_dir():
        return []
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def backup(settings: Settings, dest: Path) -> dict[str, Any]:
    if dest.exists() and any(dest.iterdir()):
        raise BackupError(f"{dest} exists and is not empty")
    dest.mkdir(parents=True, exist_ok=True)
    os.chmod(dest, 0o700)  # keys and reporters' contact data inside
    counts = asyncio.run(row_counts(settings))  # before the copy: a lower bound of what it holds
    if settings.is_postgres:
        kind = "postgresql"
        _run(["pg_dump", "--format=custom", "--no-owner", f"--file={dest / DB_PG}",
              _libpq_url(settings)])  # fmt: skip
    else:
        kind = "sqlite"
        source = sqlite3.connect(_sqlite_path(settings))
        target = sqlite3.connect(dest / DB_SQLITE)
        try:
            with target:
                source.backup(target)  # online backup API: consistent while others write
        finally:
            target.close()
            source.close()
    photos = dest / "photos"
    if settings.photo_dir.is_dir():
        shutil.copytree(settings.photo_dir, photos, ignore=shutil.ignore_patterns("*.tmp"))
    keys = []
    for name in KEYS:
        if (settings.var_dir / name).is_file():
            shutil.copy2(settings.var_dir / name, dest / name)
            keys.append(name)
    manifest = {
        "made_at": datetime.now(UTC).isoformat(),
        "database": kind,
        "rows_at_start": counts,
        "photos": _photo_files(photos),
        "keys": keys,
    }
    (dest / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return manifest


def restore(settings: Settings, source: Path, *, force: bool = False) -> dict[str, int]:
    manifest_file = source / "manifest.json"
    if not manifest_file.is_file():
        raise BackupError(f"{source} is not a tournee backup (no manifest.json)")
    manifest = json.loads(manifest_file.read_text())
    if manifest["database"] != ("postgresql" if settings.is_postgres else "sqlite"):
        raise BackupError(
            f"backup of a {manifest['database']} database; TOURNEE_DATABASE_URL is not one"
        )
    if settings.is_postgres:
        flags = ["--clean", "--if-exists"] if force else []
        _run(["pg_restore", "--no-owner", "--exit-on-error", *flags,
              f"--dbname={_libpq_url(settings)}", str(source / DB_PG)])  # fmt: skip
    else:
        target_path = _sqlite_path(settings)
        if target_path.exists() and not force:
            raise BackupError(f"{target_path} exists (use --force to overwrite it)")
        target_path.parent.mkdir(parents=True, exist_ok=True)
        backup_db = sqlite3.connect(source / DB_SQLITE)
        target = sqlite3.connect(target_path)
        try:
            with target:
                backup_db.backup(target)
        finally:
            target.close()
            backup_db.close()
    if (source / "photos").is_dir():
        shutil.copytree(source / "photos", settings.photo_dir, dirs_exist_ok=True)
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    for name in manifest.get("keys", []):  # the data's keys: sessions, cookies, push
        target_key = settings.var_dir / name
        shutil.copy2(source / name, target_key)
        os.chmod(target_key, 0o600)
    return asyncio.run(row_counts(settings))


def _run(command: list[str]) -> None:
    try:
        done = subprocess.run(command, capture_output=True, text=True, check=False)
    except FileNotFoundError as exc:
        raise BackupError(f"{command[0]} not found (install the PostgreSQL client)") from exc
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["failed"])[-1]
        raise BackupError(f"{command[0]}: {last}")
