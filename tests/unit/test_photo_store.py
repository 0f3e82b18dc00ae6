"""server.photos.store: content-addressed, atomic, traversal-proof local store."""

from __future__ import annotations

import asyncio
import hashlib
import os
import stat
from pathlib import Path

import pytest

from server.photos.store import (
    DISPLAY,
    THUMB,
    LocalPhotoStore,
    PhotoNotFoundError,
    PhotoStore,
    check_key,
    derived_key,
    original_key,
)

DATA = b"\xff\xd8\xff\xe0 not really a photo, the store does not care" * 1000
SHA = hashlib.sha256(DATA).hexdigest()


@pytest.fixture
def store(tmp_path: Path) -> LocalPhotoStore:
    return LocalPhotoStore(tmp_path / "photos")


@pytest.fixture
def upload(tmp_path: Path) -> Path:
    path = tmp_path / "upload.tmp"
    path.write_bytes(DATA)
    return path


def _leftovers(root: Path) -> list[Path]:
    return list(root.rglob(".tmp-*")) if root.exists() else []


def test_is_a_photo_store(store: LocalPhotoStore) -> None:
    assert isinstance(store, PhotoStore)


async def test_put_file_layout_and_round_trip(store: LocalPhotoStore, upload: Path) -> None:
    assert not await store.has(SHA)
    await store.put_file(SHA, upload)

    assert await store.has(SHA)
    path = await store.open(SHA)
    assert isinstance(path, Path)
    assert path == store.root / "originals" / SHA[:2] / SHA[2:4] / SHA
    assert path.read_bytes() == DATA
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert upload.exists()  # copied, never moved: the caller owns its temp file
    assert _leftovers(store.root) == []


async def test_put_file_is_idempotent_and_concurrent_safe(
    store: LocalPhotoStore, upload: Path
) -> None:
    await asyncio.gather(*(store.put_file(SHA, upload) for _ in range(8)))
    await store.put_file(SHA, upload)
    assert (await store.open(SHA)).read_bytes() == DATA  # type: ignore[union-attr]
    assert _leftovers(store.root) == []


async def test_put_file_verifies_the_hash(store: LocalPhotoStore, upload: Path) -> None:
    wrong = hashlib.sha256(b"something else").hexdigest()
    with pytest.raises(ValueError, match="does not match"):
        await store.put_file(wrong, upload)
    assert not await store.has(wrong)
    assert _leftovers(store.root) == []


async def test_put_file_missing_source(store: LocalPhotoStore, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        await store.put_file(SHA, tmp_path / "nope")
    assert not await store.has(SHA)
    assert _leftovers(store.root) == []


async def test_open_missing(store: LocalPhotoStore) -> None:
    with pytest.raises(PhotoNotFoundError):
        await store.open(SHA)


async def test_bytes_round_trip_and_delete(store: LocalPhotoStore, upload: Path) -> None:
    await store.put_file(SHA, upload)
    display, thumb = derived_key(SHA, DISPLAY), derived_key(SHA, THUMB)
    assert display == f"derived/{SHA}/display.jpg"
    assert await store.get_bytes(display) is None

    await store.put_bytes(display, b"display-v1")
    await store.put_bytes(display, b"display-v2")  # overwrite
    await store.put_bytes(thumb, bytearray(b"thumb"))  # type: ignore[arg-type]
    assert await store.get_bytes(display) == b"display-v2"
    assert await store.get_bytes(thumb) == b"thumb"
    assert (store.root / display).is_file()

    await store.delete(display)
    await store.delete(display)  # idempotent
    assert await store.get_bytes(display) is None
    await store.delete(thumb)
    assert not (store.root / "derived" / SHA).exists()  # empty directory pruned

    await store.delete(original_key(SHA))
    assert not await store.has(SHA)
    assert _leftovers(store.root) == []


async def test_put_bytes_recreates_a_pruned_directory(store: LocalPhotoStore) -> None:
    key = derived_key(SHA, THUMB)
    for _ in range(20):
        await asyncio.gather(store.put_bytes(key, b"x"), store.delete(key))
    await store.put_bytes(key, b"y")
    assert await store.get_bytes(key) == b"y"


BAD_SHAS = [
    "",
    SHA.upper(),
    SHA[:-1],
    SHA + "0",
    SHA + "\n",
    "g" * 64,
    "../" * 21 + "a",
    "/" + SHA[1:],
    SHA[:2] + "/" + SHA[3:],
    f"..{os.sep}{SHA[3:]}",
    "０" * 64,  # full-width digits: isdigit() says yes, the regex says no
]


@pytest.mark.parametrize("bad", BAD_SHAS)
async def test_invalid_hashes_rejected(store: LocalPhotoStore, upload: Path, bad: str) -> None:
    with pytest.raises(ValueError):
        await store.has(bad)
    with pytest.raises(ValueError):
        await store.put_file(bad, upload)
    with pytest.raises(ValueError):
        await store.open(bad)
    with pytest.raises(ValueError):
        derived_key(bad, DISPLAY)
    assert not store.root.exists() or not any(store.root.rglob("*"))


BAD_KEYS = [
    "",
    SHA,  # a bare hash is not a key
    "/etc/passwd",
    "../secret",
    f"derived/{SHA}/../../../etc/passwd",
    f"derived/{SHA}/display.jpg/..",
    f"derived/{SHA}/../{SHA}/display.jpg",
    f"derived/{SHA}/.tmp-abc.jpg",
    f"derived/{SHA}/display.png",
    f"derived/{SHA}/display.jpg\n",
    f"derived/{SHA}\\display.jpg",
    f"derived/{SHA.upper()}/display.jpg",
    f"derived//{SHA}/display.jpg",
    f"./derived/{SHA}/display.jpg",
    f"originals/{SHA[:2]}/{SHA[2:4]}/{SHA}/x",
    f"originals/00/00/{SHA}" if not SHA.startswith("0000") else f"originals/11/11/{SHA}",
    f"originals/{SHA}",
]


@pytest.mark.parametrize("bad", BAD_KEYS)
async def test_invalid_keys_rejected(store: LocalPhotoStore, bad: str) -> None:
    with pytest.raises(ValueError):
        check_key(bad)
    with pytest.raises(ValueError):
        await store.put_bytes(bad, b"x")
    with pytest.raises(ValueError):
        await store.get_bytes(bad)
    with pytest.raises(ValueError):
        await store.delete(bad)
    assert not store.root.exists() or not any(store.root.rglob("*"))


def test_valid_keys() -> None:
    assert check_key(original_key(SHA)) == f"originals/{SHA[:2]}/{SHA[2:4]}/{SHA}"
    assert check_key(f"derived/{SHA}/thumb_2x.webp")
    with pytest.raises(ValueError):
        derived_key(SHA, "../x")
