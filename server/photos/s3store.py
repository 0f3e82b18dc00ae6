"""The photo store on an S3-compatible object store (AWS S3, MinIO, Ceph RGW, SeaweedFS…).

Same keys and behaviour as ``LocalPhotoStore`` (server/photos/store.py), mapped 1:1 to object
names under an optional prefix; the client is obstore (docs/adr/0034).

Uploads in progress are *staged parts*, not S3 multipart uploads: each PATCH chunk is one
object ``uploads/<id>/<offset, 20 digits>``, written whole by one PUT before the database
records the new offset. Any machine can then continue an upload cut on another (the offset is
in the database, the parts in the bucket), chunks may be of any size (S3 multipart wants 5 MiB
parts but phones on weak links send less), and "drop whatever lies beyond the recorded offset"
is deleting the parts that start at or beyond it. On completion the parts are concatenated into
a temporary local file (hashed and decoded there), put as the original, then deleted.

Originals are never served from the bucket: the app re-hashes them on every read
(server/photos/service.py ``read_original``). Public copies are served by the app too.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import tempfile
from pathlib import Path
from typing import IO, Any

import obstore
from obstore.store import S3Store

from server.photos.store import (
    PhotoNotFoundError,
    check_key,
    check_sha256,
    check_upload_id,
    original_key,
    upload_key,
)

_PART_DIGITS = 20
_READ = 8 << 20


class S3PhotoStore:
    """A ``PhotoStore`` over one bucket (and an optional key prefix)."""

    def __init__(
        self,
        *,
        bucket: str,
        endpoint: str | None = None,
        region: str = "us-east-1",
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        path_style: bool = True,
        prefix: str = "",
    ) -> None:
        config: dict[str, Any] = {"region": region}
        if endpoint:
            config["endpoint"] = endpoint
            if endpoint.startswith("http://"):
                config["allow_http"] = True
        if access_key_id:
            config["access_key_id"] = access_key_id
        if secret_access_key:
            config["secret_access_key"] = secret_access_key
        config["virtual_hosted_style_request"] = not path_style
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.store = S3Store(bucket, **config)
        self._assembled: dict[str, Path] = {}

    def _name(self, key: str) -> str:
        return self.prefix + key

    async def _get(self, key: str) -> bytes | None:
        try:
            result = await obstore.get_async(self.store, self._name(key))
        except FileNotFoundError:
            return None
        return bytes(await result.bytes_async())

    # ------------------------------------------------------------------ PhotoStore

    async def has(self, sha256: str) -> bool:
        try:
            await obstore.head_async(self.store, self._name(original_key(sha256)))
        except FileNotFoundError:
            return False
        return True

    async def put_file(self, sha256: str, src: Path) -> None:
        check_sha256(sha256)
        if await self.has(sha256):
            return  # content-addressed: the same hash is the same bytes
        data = await asyncio.to_thread(Path(src).read_bytes)
        actual = await asyncio.to_thread(lambda: hashlib.sha256(data).hexdigest())
        if actual != sha256:
            raise ValueError(f"content hashes to {actual}, not {sha256}")
        await obstore.put_async(self.store, self._name(original_key(sha256)), data)

    async def open(self, sha256: str) -> bytes:
        data = await self._get(original_key(sha256))
        if data is None:
            raise PhotoNotFoundError(sha256)
        return data

    async def put_bytes(self, key: str, data: bytes) -> None:
        check_key(key)
        await obstore.put_async(self.store, self._name(key), bytes(data))

    async def get_bytes(self, key: str) -> bytes | None:
        check_key(key)
        return await self._get(key)

    async def delete(self, key: str) -> None:
        check_key(key)
        if key.startswith("uploads/"):
            upload_id = key.split("/", 1)[1]
            for name, _ in await self._parts(upload_id):
                await self._delete_name(name)
            assembled = self._assembled.pop(upload_id, None)
            if assembled is not None:
                assembled.unlink(missing_ok=True)
            return
        await self._delete_name(self._name(key))

    async def _delete_name(self, name: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            await obstore.delete_async(self.store, name)

    async def _parts(self, upload_id: str) -> list[tuple[str, int]]:
        """(object name, start offset) of an upload's staged parts, in order."""
        prefix = self._name(upload_key(check_upload_id(upload_id))) + "/"
        found: list[tuple[str, int]] = []
        stream = obstore.list(self.store, prefix)
        async for batch in stream:
            for meta in batch:
                name = str(meta["path"])
                tail = name.rsplit("/", 1)[-1]
                if tail.isdigit():
                    found.append((name, int(tail)))
        return sorted(found, key=lambda item: item[1])

    async def write_upload(self, upload_id: str, offset: int, src: IO[bytes]) -> int:
        if offset < 0:
            raise ValueError("offset must be >= 0")
        for name, start in await self._parts(upload_id):
            if start >= offset:  # a part whose offset was never recorded
                await self._delete_name(name)
        data = await asyncio.to_thread(src.read)
        if data:
            part = f"{self._name(upload_key(upload_id))}/{offset:0{_PART_DIGITS}d}"
            await obstore.put_async(self.store, part, data)
        return len(data)

    async def open_upload(self, upload_id: str) -> Path:
        """The staged parts, concatenated into a temporary file (deleted with the upload)."""
        parts = await self._parts(upload_id)
        if not parts:
            raise PhotoNotFoundError(upload_id)
        fd, name = tempfile.mkstemp(prefix="tournee-s3-upload-")
        path = Path(name)
        expected = 0
        try:
            with os.fdopen(fd, "wb") as out:
                for part, start in parts:
                    if start != expected:  # a gap: only parts at recorded offsets count
                        break
                    data = await self._get(part[len(self.prefix) :])
                    if data is None:
                        raise PhotoNotFoundError(upload_id)
                    await asyncio.to_thread(out.write, data)
                    expected += len(data)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        previous = self._assembled.pop(upload_id, None)
        if previous is not None:
            previous.unlink(missing_ok=True)
        self._assembled[upload_id] = path
        return path

    async def get_bytes_raw(self, key: str) -> bytes | None:
        """Like ``get_bytes`` for any well-formed key, originals included (migrations)."""
        return await self._get(check_key(key))

    async def put_raw(self, key: str, data: bytes) -> None:
        await obstore.put_async(self.store, self._name(check_key(key)), data)

    async def list_keys(self, prefix: str) -> list[str]:
        """Every key under ``prefix`` (e.g. ``originals/``): for migrations and sweeps."""
        names: list[str] = []
        async for batch in obstore.list(self.store, self._name(prefix)):
            names.extend(str(meta["path"])[len(self.prefix) :] for meta in batch)
        return names
