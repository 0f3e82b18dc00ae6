"""``tournee photos migrate --to s3``: copy a file photo store into the S3 bucket.

Every original is read, its sha256 checked against its name, written, read back from the bucket
and checked again; public copies are copied as they are. Resumable: an object already in the
bucket whose bytes hash to its name is skipped, so a cut run simply starts again. An original
whose file does not hash to its name is reported and not copied (tampered or damaged on disk).
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from server.photos.s3store import S3PhotoStore
from server.photos.store import check_key


@dataclass
class MigrationReport:
    copied: int = 0
    skipped: int = 0  # already in the bucket, verified
    copies: int = 0  # public copies (display, thumbnail) copied
    damaged: list[str] = field(default_factory=list)  # originals that do not match their name

    @property
    def ok(self) -> bool:
        return not self.damaged


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def migrate_to_s3(source: Path, target: S3PhotoStore) -> MigrationReport:
    report = MigrationReport()
    originals = sorted((source / "originals").glob("*/*/*")) if source.is_dir() else []
    for path in originals:
        key = path.relative_to(source).as_posix()
        try:
            check_key(key)
        except ValueError:
            continue  # a temporary file left by a crash, or anything else
        sha256 = path.name
        existing = await target.get_bytes_raw(key)
        if existing is not None and _sha(existing) == sha256:
            report.skipped += 1
            continue
        data = await asyncio.to_thread(path.read_bytes)
        if _sha(data) != sha256:
            report.damaged.append(sha256)
            continue
        await target.put_raw(key, data)
        back = await target.get_bytes_raw(key)
        if back is None or _sha(back) != sha256:
            report.damaged.append(sha256)
            continue
        report.copied += 1
    for path in sorted((source / "derived").glob("*/*")) if source.is_dir() else []:
        key = path.relative_to(source).as_posix()
        try:
            check_key(key)
        except ValueError:
            continue
        if await target.get_bytes(key) is None:
            await target.put_bytes(key, await asyncio.to_thread(path.read_bytes))
            report.copies += 1
    return report
