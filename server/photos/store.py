"""Where photo bytes live: a small async, content-addressed object store.

Keys are plain relative strings, the same for every backend, so an S3-compatible store (MinIO,
Garage, AWS, Scaleway…) can be added later by mapping each key 1:1 to an object key:

* ``originals/ab/cd/<sha256>`` — the upload exactly as received, named by the SHA-256 of its
  bytes (``ab``/``cd`` are the first two byte pairs: no directory grows past 65 536 entries).
  Immutable: writing the same hash again is a no-op, so retries and duplicate uploads are free.
  It may hold EXIF GPS and anything appended to the image: never serve it to the public.
* ``derived/<sha256>/<name>.jpg`` — derivatives (``display.jpg``, ``thumb.jpg``), metadata-free.
* ``uploads/<32 hex>`` — a resumable upload in progress (bytes ``[0, offset)`` of a declared
  original; the offset itself lives in the database). Written at an offset, then promoted to
  ``originals/`` by ``put_file`` once its hash is verified, then deleted. On S3 this maps to a
  multipart upload (one part per PATCH) or to one object per chunk, assembled on completion.

Contract an S3 backend would keep: ``put_file`` = PutObject with ``ChecksumSHA256`` (atomic by
nature; verify the hash), ``has`` = HeadObject, ``open`` returns ``bytes`` (or a temporary
``Path`` after a download), ``get_bytes`` returns None on NoSuchKey, ``delete`` is idempotent.

Every key is validated (64 lowercase hex digits; a fixed grammar for the rest): no path
traversal, no absolute paths, no surprises in object names. The local store does blocking file
I/O in ``asyncio.to_thread`` and writes atomically (temporary file in the target directory,
fsync, ``os.replace``, fsync of the directory). A crash can leave ``.tmp-*`` files behind; they
are never read and can be swept by age.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import tempfile
from pathlib import Path
from typing import IO, Final, Protocol, runtime_checkable

from litestar.di import NamedDependency

_SHA256_RE: Final = re.compile(r"[0-9a-f]{64}")
_ORIGINAL_RE: Final = re.compile(r"originals/([0-9a-f]{2})/([0-9a-f]{2})/([0-9a-f]{64})")
_DERIVED_RE: Final = re.compile(r"derived/[0-9a-f]{64}/[a-z0-9][a-z0-9_-]{0,31}\.(?:jpg|webp)")
_UPLOAD_ID_RE: Final = re.compile(r"[0-9a-f]{32}")
_UPLOAD_RE: Final = re.compile(r"uploads/[0-9a-f]{32}")

#: Canonical derivative names (``derived_key(sha, DISPLAY)``).
DISPLAY: Final = "display"
THUMB: Final = "thumb"

_CHUNK: Final = 1 << 20
_FILE_MODE: Final = 0o640


class PhotoNotFoundError(LookupError):
    """No original stored under this hash."""


def check_sha256(sha256: str) -> str:
    """The hash itself if it is 64 lowercase hex digits, else ValueError (never a path)."""
    if not isinstance(sha256, str) or not _SHA256_RE.fullmatch(sha256):
        raise ValueError("sha256 must be 64 lowercase hexadecimal digits")
    return sha256


def original_key(sha256: str) -> str:
    check_sha256(sha256)
    return f"originals/{sha256[:2]}/{sha256[2:4]}/{sha256}"


def derived_key(sha256: str, name: str, ext: str = "jpg") -> str:
    return check_key(f"derived/{check_sha256(sha256)}/{name}.{ext}")


def check_upload_id(upload_id: str) -> str:
    """The id itself if it is 32 lowercase hex digits (a UUID's hex), else ValueError."""
    if not isinstance(upload_id, str) or not _UPLOAD_ID_RE.fullmatch(upload_id):
        raise ValueError("upload id must be 32 lowercase hexadecimal digits")
    return upload_id


def upload_key(upload_id: str) -> str:
    return f"uploads/{check_upload_id(upload_id)}"


def check_key(key: str) -> str:
    """The key itself if it is a well-formed original or derivative key, else ValueError."""
    if isinstance(key, str):
        original = _ORIGINAL_RE.fullmatch(key)
        if original:
            first, second, sha256 = original.groups()
            if sha256.startswith(first + second):
                return key
        elif _DERIVED_RE.fullmatch(key) or _UPLOAD_RE.fullmatch(key):
            return key
    raise ValueError(f"invalid photo store key: {key!r}")


@runtime_checkable
class PhotoStore(Protocol):
    async def has(self, sha256: str) -> bool:
        """Is the original with this hash stored?"""
        ...

    async def put_file(self, sha256: str, src: Path) -> None:
        """Store ``src`` as the original ``sha256``: atomic, idempotent, hash verified."""
        ...

    async def open(self, sha256: str) -> Path | bytes:
        """The original (a local path, or the bytes); PhotoNotFoundError if absent."""
        ...

    async def put_bytes(self, key: str, data: bytes) -> None:
        """Store ``data`` under ``key`` (atomic; overwrites)."""
        ...

    async def get_bytes(self, key: str) -> bytes | None:
        """The bytes under ``key``, or None."""
        ...

    async def delete(self, key: str) -> None:
        """Remove ``key``; no error if it is already gone."""
        ...

    async def write_upload(self, upload_id: str, offset: int, src: IO[bytes]) -> int:
        """Write ``src`` (read to its end) at ``offset`` of upload ``upload_id``, dropping any
        bytes stored beyond ``offset`` first (a write whose offset was never recorded).
        Returns how many bytes were written; durable when it returns."""
        ...

    async def open_upload(self, upload_id: str) -> Path:
        """A local path holding the upload's bytes (for hashing and decoding)."""
        ...


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:  # e.g. platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


Store = NamedDependency[PhotoStore]  # the app's photo store, for handlers: ``store: Store``


class LocalPhotoStore:
    """``PhotoStore`` on a local (or network) file system under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()

    def path_for(self, key: str) -> Path:
        """Absolute path of a validated key (for X-Accel-Redirect / FileResponse)."""
        return self.root / check_key(key)

    # ------------------------------------------------------------------ sync helpers

    def _tmp_in(self, directory: Path) -> tuple[int, Path]:
        for _ in range(5):  # a concurrent delete() may rmdir an empty derived/<sha>/ under us
            try:
                # mkdir(exist_ok=True) itself raises FileExistsError when the directory is
                # created and removed again between its own two checks.
                directory.mkdir(parents=True, exist_ok=True)
                fd, name = tempfile.mkstemp(prefix=".tmp-", dir=directory)
            except (FileNotFoundError, FileExistsError):
                continue
            return fd, Path(name)
        raise FileNotFoundError(directory)

    def _commit(self, tmp: Path, dest: Path) -> None:
        os.chmod(tmp, _FILE_MODE)
        os.replace(tmp, dest)
        _fsync_dir(dest.parent)

    def _put_file_sync(self, sha256: str, src: Path) -> None:
        dest = self.path_for(original_key(sha256))
        if dest.is_file():
            return  # content-addressed: same name, same bytes
        fd, tmp = self._tmp_in(dest.parent)
        try:
            digest = hashlib.sha256()
            with os.fdopen(fd, "wb") as out, Path(src).open("rb") as source:
                while chunk := source.read(_CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            if digest.hexdigest() != sha256:
                raise ValueError(f"content of {src} does not match sha256 {sha256}")
            self._commit(tmp, dest)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise

    def _put_bytes_sync(self, key: str, data: bytes) -> None:
        dest = self.path_for(key)
        fd, tmp = self._tmp_in(dest.parent)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            self._commit(tmp, dest)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise

    def _get_bytes_sync(self, key: str) -> bytes | None:
        try:
            return self.path_for(key).read_bytes()
        except FileNotFoundError:
            return None

    def _delete_sync(self, key: str) -> None:
        path = self.path_for(key)
        path.unlink(missing_ok=True)
        if key.startswith("derived/"):
            with contextlib.suppress(OSError):  # not empty, or already gone
                path.parent.rmdir()

    def _write_upload_sync(self, upload_id: str, offset: int, src: IO[bytes]) -> int:
        path = self.path_for(upload_key(upload_id))
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, _FILE_MODE)
        written = 0
        with os.fdopen(fd, "r+b") as out:
            out.truncate(offset)
            out.seek(offset)
            while chunk := src.read(_CHUNK):
                out.write(chunk)
                written += len(chunk)
            out.flush()
            os.fsync(out.fileno())
        return written

    # ------------------------------------------------------------------ PhotoStore

    async def has(self, sha256: str) -> bool:
        path = self.path_for(original_key(sha256))
        return await asyncio.to_thread(path.is_file)

    async def put_file(self, sha256: str, src: Path) -> None:
        check_sha256(sha256)
        await asyncio.to_thread(self._put_file_sync, sha256, src)

    async def open(self, sha256: str) -> Path:
        path = self.path_for(original_key(sha256))
        if not await asyncio.to_thread(path.is_file):
            raise PhotoNotFoundError(sha256)
        return path

    async def put_bytes(self, key: str, data: bytes) -> None:
        check_key(key)
        await asyncio.to_thread(self._put_bytes_sync, key, bytes(data))

    async def get_bytes(self, key: str) -> bytes | None:
        check_key(key)
        return await asyncio.to_thread(self._get_bytes_sync, key)

    async def delete(self, key: str) -> None:
        check_key(key)
        await asyncio.to_thread(self._delete_sync, key)

    async def write_upload(self, upload_id: str, offset: int, src: IO[bytes]) -> int:
        if offset < 0:
            raise ValueError("offset must be >= 0")
        return await asyncio.to_thread(self._write_upload_sync, upload_id, offset, src)

    async def open_upload(self, upload_id: str) -> Path:
        path = self.path_for(upload_key(upload_id))
        if not await asyncio.to_thread(path.is_file):
            raise PhotoNotFoundError(upload_id)
        return path
