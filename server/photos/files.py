"""Photo bytes, outside the database: the bounded imaging pool, hashing, decoding checks.

Nothing here opens a transaction; the upload and job code call it before or after theirs.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import os
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from server.errors import DomainError
from server.photos import imaging
from server.photos.store import (
    PhotoStore,
)
from server.settings import Settings

T = TypeVar("T")


# Pillow work runs here: a bounded pool per process, so a burst of uploads cannot decode twenty
# 64 MP images at once (each can take ~200 MB). A pool is a process resource, not shared data.
IMAGING_WORKERS = max(1, min(2, os.cpu_count() or 1))


_IMAGING_POOL = ThreadPoolExecutor(max_workers=IMAGING_WORKERS, thread_name_prefix="photo")


_HASH_CHUNK = 1 << 20


class PhotoRejected(DomainError):
    """The bytes are not an acceptable image (415 for the type, 422 otherwise)."""

    def __init__(self, exc: imaging.ImageRejected) -> None:
        super().__init__(f"photo_{exc.code}", exc.status)


async def run_imaging(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a Pillow function in the bounded imaging pool."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_IMAGING_POOL, functools.partial(fn, *args, **kwargs))


def _hash_file(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with Path(path).open("rb") as fh:
        while chunk := fh.read(_HASH_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


async def hash_file(path: Path) -> tuple[str, int]:
    return await asyncio.to_thread(_hash_file, path)


async def local_path(store: PhotoStore, sha256: str) -> tuple[Path, bool]:
    """(path of the original, is_temporary): stores that return bytes are spilled to disk."""
    opened = await store.open(sha256)
    if isinstance(opened, Path):
        return opened, False
    fd, name = tempfile.mkstemp(prefix="tournee-photo-")
    with os.fdopen(fd, "wb") as fh:
        fh.write(opened)
    return Path(name), True


async def validate_file(path: Path, settings: Settings) -> imaging.ImageInfo:
    """Decode and check the file completely, in the imaging pool; PhotoRejected if unfit."""
    try:
        return await run_imaging(imaging.inspect, path, max_pixels=settings.photo_max_pixels)
    except imaging.ImageRejected as exc:
        raise PhotoRejected(exc) from exc
