"""Decompression bombs in every accepted format and through every way in (issue 17): the
resumable upload API and Open311 multipart. Each is refused with a 4xx problem from its header,
before any pixel is decoded; never a 5xx, nothing stored.

Every image is made here with Pillow and then given a header that lies about its size: a WebP
(lossless VP8L and lossy VP8) declaring 16383 × 16383 (268 MP, past Pillow's bomb limit) in a
few dozen bytes, a PNG of 40000 × 40000, a JPEG of 9000 × 9000. A HEIC cannot be made to lie
(libheif checks its ``ispe`` against the coded stream: such a file is refused as corrupt, also
tested); a genuinely large HEIC is 47 s of x265 on this machine, so the HEIC bomb is a real
1.2 MP HEIC sent to an app whose ``TOURNEE_PHOTO_MAX_PIXELS`` is 1 MP: the same header check.
"""

from __future__ import annotations

import dataclasses
import io
import struct
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from server.settings import Settings, get_settings
from tests.integration.test_open311 import V2, bulky, new_key
from tests.integration.test_photos_api import (
    _jpeg_with_dims,
    _png_huge,
    _sha,
    upload,
)
from tests.support.data import login

HEVC = bool(__import__("pillow_heif").libheif_info().get("HEIF"))


def _webp_lossless(width: int = 16383, height: int = 16383) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 30, 30)).save(buffer, "WEBP", lossless=True)
    data = bytearray(buffer.getvalue())
    assert data[12:16] == b"VP8L" and data[20] == 0x2F
    bits = int.from_bytes(data[21:25], "little")
    bits = (bits & ~((1 << 28) - 1)) | (width - 1) | ((height - 1) << 14)
    data[21:25] = bits.to_bytes(4, "little")
    return bytes(data)


def _webp_lossy(width: int = 16383, height: int = 16383) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 30, 30)).save(buffer, "WEBP", quality=80)
    data = bytearray(buffer.getvalue())
    start = data.index(b"\x9d\x01\x2a")  # the VP8 key frame start code, then the size
    data[start + 3 : start + 7] = struct.pack("<HH", width & 0x3FFF, height & 0x3FFF)
    return bytes(data)


def _heic(size: tuple[int, int] = (1200, 1000), lie: tuple[int, int] | None = None) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (90, 90, 90)).save(buffer, "HEIF", quality=30)
    data = bytearray(buffer.getvalue())
    if lie is not None:
        at = data.index(b"ispe")
        data[at + 8 : at + 16] = struct.pack(">II", *lie)
    return bytes(data)


BOMBS = [
    ("webp_lossless_268mp", _webp_lossless, {"photo_decompression_bomb"}),
    ("webp_lossy_268mp", _webp_lossy, {"photo_decompression_bomb"}),
    ("webp_lossy_81mp", lambda: _webp_lossy(9000, 9000), {"photo_too_many_pixels"}),
    ("png_1600mp", lambda: _png_huge(40_000, 40_000), {"photo_decompression_bomb"}),
    ("jpeg_81mp", lambda: _jpeg_with_dims(9_000, 9_000), {"photo_too_many_pixels"}),
]
if HEVC:
    BOMBS.append(
        (
            "heic_lying_ispe",
            lambda: _heic((64, 48), lie=(40_000, 40_000)),
            {"photo_corrupt", "photo_decompression_bomb", "photo_too_many_pixels"},
        )
    )


@pytest.fixture
async def crew(client: Any) -> dict[str, str]:
    return await login(client, "ngauthier", "crew", device_label="Téléphone bombes")


@pytest.mark.parametrize(("name", "make", "codes"), BOMBS, ids=[b[0] for b in BOMBS])
async def test_bombs_through_the_upload_api_are_4xx(
    client: Any, crew: dict[str, str], name: str, make: Any, codes: set[str]
) -> None:
    data = make()
    assert len(data) < 4096, name  # the bomb is tiny: its header lies
    response = await upload(client, {**crew, "Accept-Language": "en"}, data)
    assert response.status_code == 422, (name, response.text)
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] in codes, response.json()
    assert (await client.head(f"/api/v1/photos/{_sha(data)}", headers=crew)).status_code == 404


@pytest.mark.parametrize(("name", "make", "codes"), BOMBS, ids=[b[0] for b in BOMBS])
async def test_bombs_through_open311_multipart_are_400(
    client: Any, name: str, make: Any, codes: set[str]
) -> None:
    key = await new_key(client)
    for suffix in ("json", "xml"):
        response = await client.post(
            f"{V2}/requests.{suffix}",
            data=bulky(key),
            files={"media": (f"{name}.jpg", make(), "image/jpeg")},
        )
        assert response.status_code == 400, (name, suffix, response.text)


# --- a real HEIC past the pixel limit (the limit lowered to keep the encoder fast) ---------------


@pytest.fixture(name="settings")
def small_limit_settings(tmp_path: Path) -> Settings:
    return dataclasses.replace(
        get_settings(), photo_max_pixels=1_000_000, photo_dir=tmp_path / "photos"
    )


@pytest.fixture(name="small_client")
async def small_limit_client(database_url: str, settings: Settings) -> AsyncIterator[Any]:
    from litestar.testing import AsyncTestClient

    from server.app import create_app
    from server.db import Database
    from tests.support.data import reset_and_seed

    application = create_app(settings)
    db = Database(settings)
    try:
        await reset_and_seed(db)
    finally:
        await db.dispose()
    async with AsyncTestClient(app=application, raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.mark.skipif(not HEVC, reason="no HEVC encoder")
async def test_a_heic_past_the_pixel_limit_is_refused_from_its_header(small_client: Any) -> None:
    crew = await login(small_client, "ngauthier", "crew", device_label="Téléphone HEIC")
    big, fits = _heic((1200, 1000)), _heic((1000, 900))
    response = await upload(small_client, crew, big)
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "photo_too_many_pixels"
    assert (await upload(small_client, crew, fits)).json()["complete"] is True
    key = await new_key(small_client)
    sent = await small_client.post(
        f"{V2}/requests.json",
        data=bulky(key),
        files={"media": ("big.heic", big, "image/heic")},
    )
    assert sent.status_code == 400, sent.text
