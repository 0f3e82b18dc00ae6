"""server.photos.imaging: sniffing, validation, metadata and stripped derivatives.

Every image is generated here with Pillow (or by hand for malformed files): no binary fixtures.
"""

from __future__ import annotations

import io
import math
import random
import struct
import tempfile
import time
import warnings
import zipfile
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from functools import cache
from pathlib import Path

import pillow_heif
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import ExifTags, Image, ImageCms
from PIL.TiffImagePlugin import IFDRational

from server.photos import imaging
from server.photos.imaging import (
    ImageInfo,
    ImageRejected,
    exif_gps,
    exif_taken_at,
    haversine_m,
    inspect,
    make_derivatives,
    sniff,
)
from tests.support.images import exif_block, photo

HEIF_ENCODER = bool(pillow_heif.libheif_info().get("HEIF"))
needs_heif = pytest.mark.skipif(not HEIF_ENCODER, reason="libheif built without a HEVC encoder")

MAX = 50_000_000
PARIS = (48.858222, 2.2945)  # Eiffel tower


# --------------------------------------------------------------------------- builders


def _save(img: Image.Image, path: Path, fmt: str, **params: object) -> Path:
    img.save(path, format=fmt, **params)
    return path


def _jpeg_bytes(img: Image.Image | None = None, **params: object) -> bytes:
    buf = io.BytesIO()
    (img or photo()).save(buf, format="JPEG", quality=90, **params)
    return buf.getvalue()


def _png_chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))


@cache
def _png_1bit(width: int, height: int, *, full_data: bool = True) -> bytes:
    """A black 1-bit PNG built by hand: huge pixel counts, small files (zeros compress ~1000:1)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    comp = zlib.compressobj(9)
    if full_data:
        rows = (b"\x00" * (1 + (width + 7) // 8)) * min(height, 1000)
        idat = b"".join(comp.compress(rows) for _ in range(height // 1000))
        idat += comp.compress((b"\x00" * (1 + (width + 7) // 8)) * (height % 1000))
        idat += comp.flush()
    else:
        idat = zlib.compress(b"\x00" * 16)
    return (
        imaging._PNG_MAGIC
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", idat)
        + _png_chunk(b"IEND", b"")
    )


def _jpeg_segments(data: bytes) -> list[tuple[int, int, int]]:
    """(marker, offset, length) of the header segments up to and including SOS."""
    out, i = [], 2
    while i + 4 <= len(data):
        marker, length = data[i + 1], int.from_bytes(data[i + 2 : i + 4], "big")
        out.append((marker, i, length))
        if marker == 0xDA:
            break
        i += 2 + length
    return out


def _jpeg_with_dims(width: int, height: int) -> bytes:
    data = bytearray(_jpeg_bytes(photo((64, 48))))
    for marker, offset, _ in _jpeg_segments(bytes(data)):
        if marker in (0xC0, 0xC1, 0xC2):
            data[offset + 5 : offset + 9] = struct.pack(">HH", height, width)
            return bytes(data)
    raise AssertionError("no SOF")


def _jpeg_header_then_garbage() -> bytes:
    data = _jpeg_bytes(photo((256, 192)))
    marker, offset, length = _jpeg_segments(data)[-1]
    assert marker == 0xDA
    garbage = random.Random(99).randbytes(20_000).replace(b"\xff", b"\x00")
    return data[: offset + 2 + length] + garbage + b"\xff\xd9"


def _heic_bytes(img: Image.Image, **params: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="HEIF", quality=80, **params)
    return buf.getvalue()


def _to_file(tmp: Path, name: str, data: bytes) -> Path:
    path = tmp / name
    path.write_bytes(data)
    return path


def _open(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


def _assert_stripped(data: bytes) -> Image.Image:
    img = _open(data)
    assert img.format == "JPEG"
    assert img.mode == "RGB"
    assert len(img.getexif()) == 0
    for key in ("exif", "icc_profile", "comment", "xmp", "photoshop", "adobe"):
        assert key not in img.info, key
    assert img.info.get("progressive") == 1
    markers = {marker for marker, _, _ in _jpeg_segments(data)}
    assert markers <= {0xE0, 0xDB, 0xC0, 0xC2, 0xC4, 0xDD, 0xDA}, sorted(map(hex, markers))
    return img


def _is_red(pixel: tuple[int, ...]) -> bool:
    r, g, b = pixel[:3]
    return r > 180 and g < 80 and b < 80


# --------------------------------------------------------------------------- sniff


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "image/jpeg"),
        (b"\xff\xd8\xff\xe1\x12\x34Exif", "image/jpeg"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "image/png"),
        (b"RIFF\x10\x00\x00\x00WEBPVP8 ", "image/webp"),
        (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic", "image/heic"),
        (b"\x00\x00\x00\x18ftypheix\x00\x00\x00\x00mif1heix", "image/heic"),
        (b"\x00\x00\x00\x18ftyphevc\x00\x00\x00\x00msf1hevc", "image/heic"),
        (b"\x00\x00\x00\x18ftypmif1\x00\x00\x00\x00mif1heic", "image/heic"),
        (b"\x00\x00\x00\x14ftypmif1\x00\x00\x00\x00mif1", "image/heif"),
        (b"\x00\x00\x00\x14ftypmsf1\x00\x00\x00\x00msf1", "image/heif"),
        (b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1miaf", None),
        (b"\x00\x00\x00\x18ftypmif1\x00\x00\x00\x00mif1avif", None),
        (b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2", None),  # MP4 video
        (b"\x00\x00\x00\x04ftypheic", None),  # impossible box size
        (b"GIF89a\x01\x00\x01\x00", None),
        (b"%PDF-1.7\n", None),
        (b"BM6\x00\x00\x00", None),
        (b"II*\x00\x08\x00\x00\x00", None),  # TIFF
        (b"<svg xmlns='http://www.w3.org/2000/svg'/>", None),
        (b"RIFF\x10\x00\x00\x00WAVEfmt ", None),
        (b"PK\x03\x04", None),
        (b"\xff\xd8", None),  # too short to be sure
        (b"", None),
    ],
)
def test_sniff(prefix: bytes, expected: str | None) -> None:
    assert sniff(prefix) == expected


def test_sniff_real_encoders() -> None:
    img = photo((32, 24))
    for fmt, mime in (("JPEG", "image/jpeg"), ("PNG", "image/png"), ("WEBP", "image/webp")):
        buf = io.BytesIO()
        img.save(buf, format=fmt)
        assert sniff(buf.getvalue()[: imaging.SNIFF_BYTES]) == mime
    if HEIF_ENCODER:
        assert sniff(_heic_bytes(img)[:64]) == "image/heic"


# --------------------------------------------------------------------------- accepted photos


def test_jpeg_gps_portrait_metadata(tmp_path: Path) -> None:
    exif = exif_block(orientation=6, gps=PARIS, taken="2024:05:06 07:08:09", offset="+02:00")
    path = _save(photo(), tmp_path / "p.jpg", "JPEG", exif=exif)

    info = inspect(path, max_pixels=MAX)

    assert info == ImageInfo(
        mime="image/jpeg",
        format="JPEG",
        width=300,  # stored 400x300, displayed rotated: portrait
        height=400,
        orientation=6,
        lat=pytest.approx(PARIS[0], abs=1e-6),  # type: ignore[arg-type]
        lon=pytest.approx(PARIS[1], abs=1e-6),  # type: ignore[arg-type]
        taken_at=datetime(2024, 5, 6, 7, 8, 9, tzinfo=timezone(timedelta(hours=2))),
    )
    assert info.gps is not None


@pytest.mark.parametrize(
    ("orientation", "size", "corner"),
    [
        (1, (400, 300), "top_left"),
        (3, (400, 300), "bottom_right"),
        (6, (300, 400), "top_right"),  # the usual "phone held upright" case
        (8, (300, 400), "bottom_left"),
    ],
)
def test_derivatives_are_upright_and_stripped(
    tmp_path: Path, orientation: int, size: tuple[int, int], corner: str
) -> None:
    exif = exif_block(orientation=orientation, gps=PARIS, taken="2024:05:06 07:08:09")
    path = _save(
        photo(),
        tmp_path / "p.jpg",
        "JPEG",
        exif=exif,
        comment=b"SECRET-COMMENT",
        icc_profile=ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes(),
        xmp=b"<x:xmpmeta xmlns:x='adobe:ns:meta/'>SECRET-XMP</x:xmpmeta>",
    )
    display, thumb = make_derivatives(path, display_px=1600, thumb_px=320)

    for data in (display, thumb):
        img = _assert_stripped(data)
        assert b"SECRET" not in data
        assert b"GPS" not in data and b"Exif" not in data
        if orientation in (6, 8):
            assert img.height > img.width
    img = _open(display)
    assert img.size == size  # never upscaled
    w, h = img.size
    points = {
        "top_left": (5, 5),
        "top_right": (w - 6, 5),
        "bottom_left": (5, h - 6),
        "bottom_right": (w - 6, h - 6),
    }
    for name, point in points.items():
        assert _is_red(img.getpixel(point)) == (name == corner), name
    assert _open(thumb).size == ((320, 240) if size[0] > size[1] else (240, 320))


def test_derivative_sizes_and_draft(tmp_path: Path) -> None:
    path = _save(photo((2400, 1800)), tmp_path / "big.jpg", "JPEG", quality=90)
    display, thumb = make_derivatives(path, display_px=1000, thumb_px=200, quality=70)
    assert _open(display).size == (1000, 750)
    assert _open(thumb).size == (200, 150)
    # the draft request keeps the aspect ratio, so JPEG decodes at 1/2 here, not at 1/1
    assert imaging._draft_size((2400, 1800), 1000) == (1000, 750)
    assert imaging._draft_size((4000, 3000), 1600) == (1600, 1200)
    assert imaging._draft_size((800, 600), 1600) is None
    with Image.open(path) as img:
        img.draft("RGB", (1000, 750))
        assert img.size == (1200, 900)
    with Image.open(path) as img:
        img.draft("RGB", (1000, 1000))  # the naive square request: no reduction at all
        assert img.size == (2400, 1800)


@pytest.mark.parametrize(
    ("fmt", "mode", "params"),
    [
        ("PNG", "RGB", {}),
        ("PNG", "RGBA", {}),
        ("PNG", "LA", {}),
        ("PNG", "P", {}),
        ("PNG", "L", {}),
        ("PNG", "I;16", {}),
        ("PNG", "1", {}),
        ("WEBP", "RGB", {"quality": 80}),
        ("WEBP", "RGBA", {"lossless": True}),
        ("JPEG", "L", {}),
        ("JPEG", "CMYK", {}),
    ],
)
def test_other_formats_and_modes_accepted(
    tmp_path: Path, fmt: str, mode: str, params: dict[str, object]
) -> None:
    img = photo((200, 150))
    if mode == "I;16":
        img = img.convert("L").point(lambda v: v * 256, "I").convert("I;16")
    elif mode == "RGBA":
        img = img.convert("RGBA")
        img.putalpha(Image.linear_gradient("L").resize(img.size))
    else:
        img = img.convert(mode)
    path = _save(img, tmp_path / f"x.{fmt.lower()}", fmt, **params)

    info = inspect(path, max_pixels=MAX)
    assert (info.format, info.width, info.height) == (fmt, 200, 150)
    assert info.gps is None and info.taken_at is None and info.orientation == 1

    display, thumb = make_derivatives(path)
    assert _assert_stripped(display).size == (200, 150)
    assert _assert_stripped(thumb).size == (200, 150)  # thumb_px 320 > 200: not upscaled


def test_webp_and_png_exif_read(tmp_path: Path) -> None:
    exif = exif_block(orientation=6, gps=(-33.8568, 151.2153), taken="2023:01:02 03:04:05")
    for fmt in ("WEBP", "PNG"):
        path = _save(photo(), tmp_path / f"x.{fmt}", fmt, exif=exif)
        info = inspect(path, max_pixels=MAX)
        assert (info.width, info.height, info.orientation) == (300, 400, 6)
        assert info.gps == (pytest.approx(-33.8568, abs=1e-6), pytest.approx(151.2153, abs=1e-6))
        assert info.taken_at == datetime(2023, 1, 2, 3, 4, 5)  # naive: no OffsetTimeOriginal
        display, _ = make_derivatives(path)
        img = _assert_stripped(display)
        assert img.size == (300, 400) and _is_red(img.getpixel((295, 5)))


def test_mpo_multi_picture_jpeg_uses_the_primary_image(tmp_path: Path) -> None:
    """Android "portrait"/3D photos are MPO: a JPEG followed by more JPEGs. Pillow opens them
    through the JPEG factory; only the first (primary) image makes the derivatives."""
    path = tmp_path / "p.jpg"
    photo((400, 300)).save(
        path,
        format="MPO",
        save_all=True,
        append_images=[Image.new("RGB", (200, 150), "green")],
        exif=exif_block(orientation=6, gps=PARIS),
    )
    info = inspect(path, max_pixels=MAX)
    assert (info.mime, info.width, info.height, info.orientation) == ("image/jpeg", 300, 400, 6)
    display, _ = make_derivatives(path)
    img = _assert_stripped(display)
    assert img.size == (300, 400) and _is_red(img.getpixel((295, 5)))


@needs_heif
def test_heic_round_trip(tmp_path: Path) -> None:
    exif = exif_block(gps=PARIS, taken="2024:05:06 07:08:09", offset="-05:00")
    path = _to_file(tmp_path, "p.heic", _heic_bytes(photo((400, 300)), exif=exif.tobytes()))
    info = inspect(path, max_pixels=MAX)
    assert (info.mime, info.format, info.width, info.height) == ("image/heic", "HEIF", 400, 300)
    assert info.gps == (pytest.approx(PARIS[0], abs=1e-6), pytest.approx(PARIS[1], abs=1e-6))
    assert info.taken_at == datetime(2024, 5, 6, 7, 8, 9, tzinfo=timezone(timedelta(hours=-5)))
    display, thumb = make_derivatives(path)
    assert _assert_stripped(display).size == (400, 300)
    assert _assert_stripped(thumb).size == (320, 240)
    assert b"GPS" not in display


@needs_heif
def test_heic_rotation_is_applied_once(tmp_path: Path) -> None:
    """EXIF orientation 6 in bytes → pillow-heif writes an `irot`; libheif applies it on decode
    and pillow-heif resets EXIF orientation to 1, so exif_transpose must not rotate again."""
    data = _heic_bytes(photo((400, 300)), exif=exif_block(orientation=6).tobytes())
    path = _to_file(tmp_path, "p.heic", data)
    info = inspect(path, max_pixels=MAX)
    assert (info.width, info.height, info.orientation) == (300, 400, 6)
    display, _ = make_derivatives(path)
    img = _assert_stripped(display)
    assert img.size == (300, 400)
    assert _is_red(img.getpixel((295, 5)))  # stored top-left → displayed top-right
    assert not _is_red(img.getpixel((5, 5)))


# --------------------------------------------------------------------------- rejections


def _gif(tmp: Path) -> Path:
    return _save(photo((20, 20)).convert("P"), tmp / "x.jpg", "GIF")


def _pdf(tmp: Path) -> Path:
    return _save(photo((20, 20)), tmp / "x.jpg", "PDF")


def _tiff(tmp: Path) -> Path:
    return _save(photo((20, 20)), tmp / "x.jpg", "TIFF")


def _bmp(tmp: Path) -> Path:
    return _save(photo((20, 20)), tmp / "x.png", "BMP")


def _truncated(fmt: str, **params: object) -> Callable[[Path], Path]:
    def build(tmp: Path) -> Path:
        buf = io.BytesIO()
        img = photo((640, 480))
        if fmt == "HEIF":
            data = _heic_bytes(img)
        else:
            img.save(buf, format=fmt, **params)
            data = buf.getvalue()
        return _to_file(tmp, "cut", data[: len(data) // 2])

    return build


def _png_bad_crc(tmp: Path) -> Path:
    buf = io.BytesIO()
    photo((64, 48)).save(buf, format="PNG")
    data = bytearray(buf.getvalue())
    idat = data.index(b"IDAT")
    data[idat + 10] ^= 0xFF  # flip a byte of the compressed data: CRC no longer matches
    return _to_file(tmp, "x.png", bytes(data))


def _bytes(name: str, data: bytes | Callable[[], bytes]) -> Callable[[Path], Path]:
    return lambda tmp: _to_file(tmp, name, data() if callable(data) else data)


# (id, builder, max_pixels, accepted codes, also rejected by make_derivatives)
REJECTIONS: list[tuple[str, Callable[[Path], Path], int, set[str], bool]] = [
    ("zero_bytes", _bytes("x.jpg", b""), MAX, {"empty"}, True),
    ("random_garbage", _bytes("x.jpg", random.Random(1234).randbytes(4096)), MAX,
     {"unsupported_type"}, True),
    ("text_named_jpg", _bytes("x.jpg", b"hello, this is not a photo\n" * 10), MAX,
     {"unsupported_type"}, True),
    ("html_named_jpg", _bytes("x.jpg", b"<html><script>alert(1)</script></html>"), MAX,
     {"unsupported_type"}, True),
    ("svg_named_png", _bytes("x.png", b"<svg xmlns='http://www.w3.org/2000/svg'></svg>"), MAX,
     {"unsupported_type"}, True),
    ("gif_named_jpg", _gif, MAX, {"unsupported_type"}, True),
    ("pdf_named_jpg", _pdf, MAX, {"unsupported_type"}, True),
    ("tiff_named_jpg", _tiff, MAX, {"unsupported_type"}, True),
    ("bmp_named_png", _bmp, MAX, {"unsupported_type"}, True),
    ("zip_named_jpg", _bytes("x.jpg", b"PK\x03\x04" + b"\x00" * 100), MAX,
     {"unsupported_type"}, True),
    ("avif_brand", _bytes("x.heic", b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1miaf"),
     MAX, {"unsupported_type"}, True),
    ("jpeg_magic_only", _bytes("x.jpg", b"\xff\xd8\xff"), MAX, {"corrupt", "truncated"}, True),
    ("png_magic_only", _bytes("x.png", imaging._PNG_MAGIC), MAX, {"corrupt", "truncated"}, True),
    ("webp_header_only", _bytes("x.webp", b"RIFF\x00\x10\x00\x00WEBPVP8 \x00\x00"), MAX,
     {"corrupt", "truncated"}, True),
    ("heic_ftyp_only", _bytes("x.heic", b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic"),
     MAX, {"corrupt", "truncated"}, True),
    ("truncated_jpeg", _truncated("JPEG"), MAX, {"truncated"}, True),
    ("truncated_progressive_jpeg", _truncated("JPEG", progressive=True), MAX,
     {"truncated"}, True),
    ("truncated_png", _truncated("PNG"), MAX, {"truncated"}, True),
    ("truncated_webp", _truncated("WEBP"), MAX, {"truncated"}, True),
    ("png_bad_crc", _png_bad_crc, MAX, {"corrupt"}, True),
    ("png_zero_width", _bytes("x.png", lambda: _png_1bit(0, 10, full_data=False)), MAX,
     {"corrupt"}, True),
    ("low_max_pixels", lambda tmp: _save(photo(), tmp / "x.jpg", "JPEG"), 10_000,
     {"too_many_pixels"}, True),
    ("png_30000x30000", _bytes("bomb.png", lambda: _png_1bit(30_000, 30_000)), MAX,
     {"decompression_bomb"}, True),
    # between 1x and 2x Pillow's limit: Pillow only *warns*; we must still refuse
    ("png_10000x10000_warning_zone", _bytes("bomb.png", lambda: _png_1bit(10_000, 10_000)),
     10**10, {"decompression_bomb"}, True),
    ("png_declares_100000x100000", _bytes("x.png", lambda: _png_1bit(100_000, 100_000,
     full_data=False)), MAX, {"decompression_bomb"}, True),
    ("jpeg_declares_60000x60000", _bytes("x.jpg", lambda: _jpeg_with_dims(60_000, 60_000)),
     MAX, {"decompression_bomb"}, True),
    ("jpeg_declares_8000x8000_capped", _bytes("x.jpg", lambda: _jpeg_with_dims(8000, 8000)),
     MAX, {"too_many_pixels"}, True),
]  # fmt: skip
if HEIF_ENCODER:
    REJECTIONS.append(("truncated_heic", _truncated("HEIF"), MAX, {"truncated"}, True))


@pytest.mark.parametrize(
    ("builder", "max_pixels", "codes", "derivatives_reject"),
    [pytest.param(*case[1:], id=case[0]) for case in REJECTIONS],
)
def test_rejections(
    tmp_path: Path,
    recwarn: pytest.WarningsRecorder,
    builder: Callable[[Path], Path],
    max_pixels: int,
    codes: set[str],
    derivatives_reject: bool,
) -> None:
    path = builder(tmp_path)
    started = time.perf_counter()
    with pytest.raises(ImageRejected) as caught:
        inspect(path, max_pixels=max_pixels)
    elapsed = time.perf_counter() - started
    assert caught.value.code in codes
    assert caught.value.status == (415 if caught.value.code == "unsupported_type" else 422)
    assert str(caught.value)  # an English message
    assert elapsed < 2.0, "rejections happen from the header, without decoding"
    assert not [w for w in recwarn if issubclass(w.category, Image.DecompressionBombWarning)]

    if derivatives_reject:
        with pytest.raises(ImageRejected) as caught:
            make_derivatives(path, max_pixels=max_pixels)
        assert caught.value.code in codes


def test_global_state_untouched(tmp_path: Path) -> None:
    limit, filters = Image.MAX_IMAGE_PIXELS, list(warnings.filters)
    inspect(_save(photo(), tmp_path / "ok.jpg", "JPEG"), max_pixels=MAX)
    with pytest.raises(ImageRejected):
        inspect(_to_file(tmp_path, "b.png", _png_1bit(10_000, 10_000)), max_pixels=10**10)
    with pytest.raises(ImageRejected):
        inspect(_save(photo(), tmp_path / "x.jpg", "JPEG"), max_pixels=100)
    assert limit == Image.MAX_IMAGE_PIXELS
    assert warnings.filters == filters


def test_concurrent_inspects_keep_their_own_caps(tmp_path: Path) -> None:
    ok = _save(photo(), tmp_path / "ok.jpg", "JPEG")
    bomb = _to_file(tmp_path, "b.png", _png_1bit(10_000, 10_000))

    def run(job: tuple[Path, int]) -> str:
        try:
            inspect(job[0], max_pixels=job[1])
        except ImageRejected as exc:
            return exc.code
        return "ok"

    jobs = [(ok, MAX), (ok, 1000), (bomb, 10**10)] * 8
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(run, jobs))
    assert results == ["ok", "too_many_pixels", "decompression_bomb"] * 8


# --------------------------------------------------------------------------- polyglots & fuzz


def _zip_payload() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("evil.html", "<script>alert('POLYGLOT-MARKER')</script>")
    return buf.getvalue()


@pytest.mark.parametrize(
    "suffix",
    [
        _zip_payload(),
        b"<html><script>alert('POLYGLOT-MARKER')</script></html>",
        b"\xff\xd8\xff\xe0POLYGLOT-MARKER" + b"\x00" * 100,  # a second, broken JPEG
    ],
    ids=["zip", "html", "second_jpeg"],
)
def test_polyglot_never_leaks_into_derivatives(tmp_path: Path, suffix: bytes) -> None:
    path = _to_file(tmp_path, "p.jpg", _jpeg_bytes() + suffix)
    try:
        inspect(path, max_pixels=MAX)
        display, thumb = make_derivatives(path)
    except ImageRejected:
        return
    for data in (display, thumb):
        _assert_stripped(data)
        assert b"POLYGLOT-MARKER" not in data and b"PK\x03\x04" not in data


@pytest.mark.parametrize(
    "data",
    [
        _jpeg_header_then_garbage,
        lambda: imaging._PNG_MAGIC + random.Random(5).randbytes(5000),
        lambda: b"RIFF\x00\x10\x00\x00WEBPVP8 " + random.Random(6).randbytes(5000),
        lambda: (
            b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + random.Random(7).randbytes(5000)
        ),
        lambda: _jpeg_bytes()[:300] + _png_1bit(64, 64),
    ],
    ids=["jpeg_header_garbage", "png_garbage", "webp_garbage", "heic_garbage", "jpeg_then_png"],
)
def test_header_then_garbage_never_crashes(tmp_path: Path, data: Callable[[], bytes]) -> None:
    path = _to_file(tmp_path, "x", data())
    try:
        inspect(path, max_pixels=MAX)
        _assert_stripped(make_derivatives(path)[0])
    except ImageRejected as exc:
        assert exc.status in (415, 422)


@cache
def _samples() -> list[bytes]:
    img = photo((48, 36))
    out = [_jpeg_bytes(img), _jpeg_bytes(img, progressive=True)]
    for fmt in ("PNG", "WEBP"):
        buf = io.BytesIO()
        img.save(buf, format=fmt, exif=exif_block(orientation=6, gps=PARIS))
        out.append(buf.getvalue())
    if HEIF_ENCODER:
        out.append(_heic_bytes(img))
    return out


@pytest.mark.filterwarnings("ignore::UserWarning")  # Pillow warns about the mangled EXIF
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    sample=st.integers(min_value=0, max_value=10),
    flips=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=6),
    cut=st.one_of(st.none(), st.floats(0.0, 1.0)),
)
def test_fuzzed_files_only_ever_raise_image_rejected(
    sample: int, flips: list[tuple[int, int]], cut: float | None
) -> None:
    samples = _samples()
    data = bytearray(samples[sample % len(samples)])
    for position, value in flips:
        data[position % len(data)] = value
    if cut is not None:
        data = data[: int(len(data) * cut)]
    with tempfile.TemporaryDirectory() as tmp:
        path = _to_file(Path(tmp), "fuzz", bytes(data))
        try:
            info = inspect(path, max_pixels=4_000_000)
        except ImageRejected:
            return
        assert info.width > 0 and info.height > 0
        try:
            display, _ = make_derivatives(path, max_pixels=4_000_000)
        except ImageRejected:
            return
        _assert_stripped(display)


def test_icc_profiles(tmp_path: Path) -> None:
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    for name, icc in (("good", srgb), ("broken", b"not an icc profile at all")):
        path = _save(photo(), tmp_path / f"{name}.jpg", "JPEG", icc_profile=icc)
        display, _ = make_derivatives(path)
        assert _assert_stripped(display).size == (400, 300)


# --------------------------------------------------------------------------- helpers


def test_exif_gps_edge_cases() -> None:
    assert exif_gps(exif_block(gps=(-22.9519, -43.2105))) == (
        pytest.approx(-22.9519, abs=1e-6),
        pytest.approx(-43.2105, abs=1e-6),
    )
    assert exif_gps(Image.Exif()) is None
    assert exif_gps(exif_block(gps=(0.0, 0.0))) is None  # "null island": no fix

    def gps_exif(**tags: object) -> Image.Exif:
        exif = exif_block(gps=PARIS)
        ifd = exif.get_ifd(ExifTags.IFD.GPSInfo)
        for name, value in tags.items():
            tag = getattr(ExifTags.GPS, name)
            if value is None:
                del ifd[tag]
            else:
                ifd[tag] = value
        return exif

    zero_den = (IFDRational(48), IFDRational(1, 0), IFDRational(0))
    assert exif_gps(gps_exif(GPSLatitude=zero_den)) is None
    assert exif_gps(gps_exif(GPSLatitudeRef=None)) is None  # hemisphere unknown
    assert exif_gps(gps_exif(GPSLatitudeRef="X")) is None
    assert exif_gps(gps_exif(GPSStatus="V")) is None  # receiver said: void
    bad_minutes = (IFDRational(48), IFDRational(75), IFDRational(0))
    assert exif_gps(gps_exif(GPSLatitude=bad_minutes)) is None
    assert exif_gps(gps_exif(GPSLatitudeRef=b"N\x00")) == exif_gps(gps_exif())
    assert exif_gps(gps_exif(GPSLongitude="garbage")) is None
    # through a real round trip: an image object is accepted too
    assert exif_gps(_open(_jpeg_bytes(exif=exif_block(gps=PARIS)))) is not None


def test_exif_gps_rejects_latitude_beyond_pole() -> None:
    exif = exif_block(gps=PARIS)
    exif.get_ifd(ExifTags.IFD.GPSInfo)[ExifTags.GPS.GPSLatitude] = (
        IFDRational(95),
        IFDRational(0),
        IFDRational(0),
    )
    assert exif_gps(exif) is None


@pytest.mark.parametrize(
    ("taken", "offset", "subsec", "expected"),
    [
        ("2024:05:06 07:08:09", None, None, datetime(2024, 5, 6, 7, 8, 9)),
        ("2024:05:06 07:08:09", "+05:30", None,
         datetime(2024, 5, 6, 7, 8, 9, tzinfo=timezone(timedelta(hours=5, minutes=30)))),
        ("2024:05:06 07:08:09", "-03:00", "25",
         datetime(2024, 5, 6, 7, 8, 9, 250000, tzinfo=timezone(timedelta(hours=-3)))),
        ("2024:05:06 07:08:09", "Z", None, datetime(2024, 5, 6, 7, 8, 9)),
        ("2024-05-06 07:08:09", None, None, datetime(2024, 5, 6, 7, 8, 9)),
        ("0000:00:00 00:00:00", None, None, None),
        ("    :  :     :  :  ", None, None, None),
        ("yesterday", None, None, None),
    ],
)  # fmt: skip
def test_exif_taken_at(
    taken: str, offset: str | None, subsec: str | None, expected: datetime | None
) -> None:
    exif = exif_block(taken=taken, offset=offset)
    if subsec is not None:
        exif.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.SubsecTimeOriginal] = subsec
    assert exif_taken_at(exif) == expected
    assert exif_taken_at(Image.Exif()) is None


def test_haversine() -> None:
    assert haversine_m(*PARIS, *PARIS) == 0
    london = (51.500729, -0.124625)  # Big Ben
    assert haversine_m(*PARIS, *london) == pytest.approx(340_000, rel=0.01)
    assert haversine_m(0, 0, 0, 1) == pytest.approx(111_195, rel=1e-3)
    assert haversine_m(0, 179.9, 0, -179.9) == pytest.approx(22_239, rel=1e-3)  # antimeridian
    assert haversine_m(90, 0, -90, 0) == pytest.approx(math.pi * 6_371_008.8)


def test_image_rejected_shape() -> None:
    exc = ImageRejected("unsupported_type")
    assert (exc.code, exc.status) == ("unsupported_type", 415)
    exc = ImageRejected("truncated", "detail")
    assert (exc.code, exc.status) == ("truncated", 422)
    assert "detail" in str(exc)


def test_invalid_arguments(tmp_path: Path) -> None:
    path = _save(photo(), tmp_path / "ok.jpg", "JPEG")
    with pytest.raises(ValueError):
        inspect(path, max_pixels=0)
    with pytest.raises(ValueError):
        make_derivatives(path, display_px=100, thumb_px=200)
    with pytest.raises(FileNotFoundError):  # a server-side error, not the client's
        inspect(tmp_path / "missing.jpg", max_pixels=MAX)
