"""Pure image processing for photo evidence: validate an upload, read metadata, make derivatives.

No database, no web code. Every function here is synchronous and CPU/IO bound: call it through
``asyncio.to_thread`` (and bound the concurrency: ``inspect`` decodes PNG/WebP/HEIF at full size).

Over 400 lines on purpose: the safety rules below bind sniffing, decoding and re-encoding
together, and are reviewed as one (a quarter of the file is this docstring).

Safety rules (see ARCHITECTURE.md, "Photo pitfalls"):

* The type is decided by magic bytes only (``sniff``), never by the file name or the client's
  Content-Type; Pillow is then restricted to that one format, so a GIF/PDF/TIFF named ``.jpg``
  never reaches another decoder.
* Pixel caps: ``width * height`` is checked against the caller's ``max_pixels`` right after
  ``Image.open`` (header only, before any decoding), and Pillow's own protection
  (``Image.MAX_IMAGE_PIXELS``) stays on with ``DecompressionBombWarning`` turned into an error.
  The global ``MAX_IMAGE_PIXELS`` is never modified. ``warnings.catch_warnings`` is not
  thread-safe before Python 3.14 (it swaps the process-wide filter list): with concurrent calls
  from worker threads, the "error" filter for ``DecompressionBombWarning`` can outlive the call
  and stay installed process-wide (observed on 3.11; harmless, it is the policy we want). So
  the explicit size check is the guard that counts; the warning filter is a second line.
* Any exception from Pillow or pillow-heif becomes ``ImageRejected`` with a stable ``code``.
* Derivatives are re-encoded from pixels: ``ImageOps.exif_transpose`` first (portraits stay
  upright), then saved as progressive JPEG with no EXIF, GPS, XMP, ICC profile or comment.
  Bytes appended to the original (a ZIP, HTML, a script) never survive re-encoding.
* HEIF: libheif applies the container's rotation/mirror (``irot``/``imir``) while decoding and
  pillow-heif resets the EXIF orientation to 1 (keeping the old value in
  ``info["original_orientation"]``), so a HEIF image is already upright after decoding.
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import os
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Final, Literal

import pillow_heif
from PIL import ExifTags, Image, ImageCms, ImageOps, UnidentifiedImageError

from server.geo import haversine_m  # re-exported: EXIF position vs job site, one implementation

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "SNIFF_BYTES",
    "ImageInfo",
    "ImageRejected",
    "exif_gps",
    "exif_taken_at",
    "haversine_m",
    "inspect",
    "make_derivatives",
    "sniff",
]

log = logging.getLogger("tournee.photos")

pillow_heif.register_heif_opener()

RejectCode = Literal[
    "unsupported_type", "empty", "truncated", "decompression_bomb", "too_many_pixels", "corrupt"
]

#: How many leading bytes ``sniff`` needs (enough for an ISO-BMFF ``ftyp`` box with its brands).
SNIFF_BYTES: Final = 64
#: A sane default cap: 64 MP covers 48 MP phone sensors; Pillow's own limit is ~89.5 MP.
DEFAULT_MAX_PIXELS: Final = 64_000_000

_MESSAGES: Final[dict[str, str]] = {
    "unsupported_type": "Unsupported image type: send a JPEG, PNG, WebP or HEIC photo.",
    "empty": "The uploaded file is empty.",
    "truncated": "The image is truncated: the upload was probably cut short.",
    "decompression_bomb": "The image declares far too many pixels (possible decompression bomb).",
    "too_many_pixels": "The image has more pixels than this service accepts.",
    "corrupt": "The image is corrupt and cannot be decoded.",
}

#: sniffed MIME type → the only Pillow format allowed to open it
_PIL_FORMAT: Final[dict[str, str]] = {
    "image/jpeg": "JPEG",
    "image/png": "PNG",
    "image/webp": "WEBP",
    "image/heic": "HEIF",
    "image/heif": "HEIF",
}

# ISO-BMFF brands. Kept in line with what pillow-heif's opener accepts (major brand only).
_HEIC_BRANDS: Final = frozenset(
    {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs"}
)
_HEIF_BRANDS: Final = frozenset({b"mif1", b"msf1"})
_AVIF_BRANDS: Final = frozenset({b"avif", b"avis"})

_PNG_MAGIC: Final = b"\x89PNG\r\n\x1a\n"


class ImageRejected(Exception):
    """The upload is not an acceptable image. ``code`` is stable, ``status`` is the HTTP status."""

    def __init__(self, code: RejectCode, detail: str | None = None) -> None:
        message = _MESSAGES[code] if detail is None else f"{_MESSAGES[code]} ({detail})"
        super().__init__(message)
        self.code: RejectCode = code
        self.status: int = 415 if code == "unsupported_type" else 422


@dataclass(frozen=True, slots=True)
class ImageInfo:
    mime: str  # sniffed: image/jpeg, image/png, image/webp, image/heic, image/heif
    format: str  # Pillow format name: JPEG, PNG, WEBP, HEIF
    width: int  # as displayed, i.e. after the orientation is applied
    height: int
    orientation: int  # EXIF orientation 1..8 (for HEIF: the original value, already applied)
    lat: float | None  # EXIF GPS, WGS84 degrees, only when complete and plausible
    lon: float | None
    taken_at: datetime | None  # EXIF DateTimeOriginal; aware only if OffsetTimeOriginal is set

    @property
    def gps(self) -> tuple[float, float] | None:
        return None if self.lat is None or self.lon is None else (self.lat, self.lon)


# --------------------------------------------------------------------------- detection


def sniff(data_prefix: bytes) -> str | None:
    """MIME type from magic bytes only (pass at least ``SNIFF_BYTES`` bytes), else None."""
    head = bytes(data_prefix[:SNIFF_BYTES])
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(_PNG_MAGIC):
        return "image/png"
    if len(head) >= 16 and head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if len(head) >= 16 and head[4:8] == b"ftyp":
        box_size = int.from_bytes(head[0:4], "big")
        if box_size < 16:
            return None
        major = head[8:12]
        compatible = {head[i : i + 4] for i in range(16, min(box_size, len(head)) - 3, 4)}
        if major in _HEIC_BRANDS:
            return "image/heic"
        if major in _HEIF_BRANDS:
            if compatible & _HEIC_BRANDS:
                return "image/heic"
            if compatible & _AVIF_BRANDS:
                return None  # AVIF in a HEIF box: no AV1 decoder is part of our stack
            return "image/heif"
    return None


# --------------------------------------------------------------------------- error mapping


@contextlib.contextmanager
def _pillow_errors() -> Iterator[None]:
    """Map everything Pillow/pillow-heif can raise to ``ImageRejected``."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            yield
        except ImageRejected:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise ImageRejected("decompression_bomb") from exc
        except UnidentifiedImageError as exc:  # before OSError: it is a subclass
            raise ImageRejected("corrupt", "unreadable header") from exc
        except EOFError as exc:
            raise ImageRejected("truncated") from exc
        except Exception as exc:  # OSError, ValueError, SyntaxError, struct.error, RuntimeError...
            message = str(exc).lower()
            if any(hint in message for hint in _TRUNCATION_HINTS):
                raise ImageRejected("truncated") from exc
            raise ImageRejected("corrupt") from exc


# Pillow: "image file is truncated", "Truncated File Read"; libheif: "Unexpected end of file"
_TRUNCATION_HINTS: Final = ("truncated", "end of file")


def _check_pixels(size: tuple[int, int], max_pixels: int) -> None:
    width, height = size
    if width <= 0 or height <= 0:
        raise ImageRejected("corrupt", "zero-sized image")
    pixels = width * height
    pillow_limit = Image.MAX_IMAGE_PIXELS
    if pillow_limit is not None and pixels > pillow_limit:
        raise ImageRejected("decompression_bomb", f"{width}x{height}")
    if pixels > max_pixels:
        raise ImageRejected("too_many_pixels", f"{width}x{height} > {max_pixels} pixels")


def _sniff_file(path: Path) -> tuple[str, str]:
    """(mime, Pillow format) of a file, or ImageRejected. File-system errors propagate."""
    with path.open("rb") as fh:
        prefix = fh.read(SNIFF_BYTES)
        file_size = os.fstat(fh.fileno()).st_size
    if not prefix:
        raise ImageRejected("empty")
    mime = sniff(prefix)
    if mime is None:
        raise ImageRejected("unsupported_type")
    # libwebp only says "could not create decoder object"; the RIFF header knows better
    if mime == "image/webp" and file_size < 8 + int.from_bytes(prefix[4:8], "little"):
        raise ImageRejected("truncated", "shorter than its RIFF header declares")
    return mime, _PIL_FORMAT[mime]


# --------------------------------------------------------------------------- metadata


def _safe_exif(img: Image.Image) -> Image.Exif | None:
    try:
        return img.getexif()
    except Exception:  # malformed EXIF is the camera's fault, not a reason to refuse the photo
        log.info("unreadable EXIF ignored", exc_info=True)
        return None


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    return value.strip("\x00 ") if isinstance(value, str) else ""


def _number(value: Any) -> float | None:
    try:
        result = float(value)
    except (TypeError, ValueError, ZeroDivisionError, OverflowError):
        return None
    return result if math.isfinite(result) else None


def _dms(value: Any) -> float | None:
    """Degrees from EXIF (deg, min, sec) rationals; also tolerates (deg,) and (deg, min)."""
    if not isinstance(value, tuple | list) or not 1 <= len(value) <= 3:
        value = (value,)
    parts = [_number(v) for v in value]
    if any(p is None or p < 0 for p in parts):
        return None
    nums: list[float] = [p for p in parts if p is not None]
    if any(p >= 60 for p in nums[1:]):
        return None
    return nums[0] + sum(p / 60.0**i for i, p in enumerate(nums[1:], start=1))


def exif_gps(img: Image.Image | Image.Exif) -> tuple[float, float] | None:
    """(lat, lon) in WGS84 degrees from the GPSInfo IFD, or None if absent/incomplete/implausible.

    Phone browsers usually strip GPS from uploads: this is a bonus, never the only source.
    (0, 0) is treated as "no fix", and so is GPSStatus "V" (void).
    """
    try:
        exif = img if isinstance(img, Image.Exif) else img.getexif()
        gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    except Exception:
        return None
    if not gps or _text(gps.get(ExifTags.GPS.GPSStatus)).upper() == "V":
        return None
    lat = _dms(gps.get(ExifTags.GPS.GPSLatitude))
    lon = _dms(gps.get(ExifTags.GPS.GPSLongitude))
    lat_ref = _text(gps.get(ExifTags.GPS.GPSLatitudeRef)).upper()[:1]
    lon_ref = _text(gps.get(ExifTags.GPS.GPSLongitudeRef)).upper()[:1]
    if lat is None or lon is None or lat_ref not in ("N", "S") or lon_ref not in ("E", "W"):
        return None
    lat = -lat if lat_ref == "S" else lat
    lon = -lon if lon_ref == "W" else lon
    if abs(lat) > 90 or abs(lon) > 180 or (lat == 0 and lon == 0):
        return None
    return lat, lon


_OFFSET_RE: Final = re.compile(r"([+-])(\d{2}):?(\d{2})")


def exif_taken_at(exif: Image.Exif) -> datetime | None:
    """EXIF DateTimeOriginal (+ SubsecTimeOriginal, + OffsetTimeOriginal → aware), or None."""
    try:
        sub = exif.get_ifd(ExifTags.IFD.Exif)
    except Exception:
        return None
    raw = _text(sub.get(ExifTags.Base.DateTimeOriginal))
    if len(raw) < 19:
        return None
    raw = raw[:19].replace("-", ":").replace("T", " ")
    try:
        taken = datetime.strptime(raw, "%Y:%m:%d %H:%M:%S")
    except ValueError:  # "0000:00:00 00:00:00", blanks, garbage
        return None
    subsec = _text(sub.get(ExifTags.Base.SubsecTimeOriginal))
    if subsec.isdigit():
        taken = taken.replace(microsecond=int(subsec[:6].ljust(6, "0")))
    match = _OFFSET_RE.fullmatch(_text(sub.get(ExifTags.Base.OffsetTimeOriginal)))
    if match:
        sign, hours, minutes = match.groups()
        delta = timedelta(hours=int(hours), minutes=int(minutes))
        if delta < timedelta(hours=24):
            taken = taken.replace(tzinfo=timezone(-delta if sign == "-" else delta))
    return taken


def _orientation(exif: Image.Exif | None) -> int:
    value = exif.get(ExifTags.Base.Orientation, 1) if exif is not None else 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


# --------------------------------------------------------------------------- validation


def inspect(path: Path, *, max_pixels: int) -> ImageInfo:
    """Validate ``path`` completely and read its metadata, or raise ``ImageRejected``.

    Two opens: ``verify()`` on the first (checks PNG chunk CRCs; a no-op for JPEG/WebP/HEIF),
    a full ``load()`` on the second to detect truncation and undecodable data. JPEG is loaded
    at 1/8 scale with ``draft``: the entropy-coded data is still read to the end, so truncation
    is still detected, but the inverse DCT and the pixel buffer are 64x cheaper.
    """
    if max_pixels <= 0:
        raise ValueError("max_pixels must be positive")
    path = Path(path)
    mime, fmt = _sniff_file(path)
    with _pillow_errors():
        with Image.open(path, formats=[fmt]) as img:
            _check_pixels(img.size, max_pixels)
            img.verify()
        with Image.open(path, formats=[fmt]) as img:
            _check_pixels(img.size, max_pixels)
            width, height = img.size
            if fmt == "JPEG":
                img.draft("RGB", (max(1, width // 8), max(1, height // 8)))
            img.load()
            exif = _safe_exif(img)
            if fmt == "HEIF":  # already transformed by libheif, see module docstring
                original = img.info.get("original_orientation")
                orientation = original if isinstance(original, int) and 1 <= original <= 8 else 1
            else:
                orientation = _orientation(exif)
                if orientation in (5, 6, 7, 8):
                    width, height = height, width
    gps = exif_gps(exif) if exif is not None else None
    return ImageInfo(
        mime=mime,
        format=fmt,
        width=width,
        height=height,
        orientation=orientation,
        lat=gps[0] if gps else None,
        lon=gps[1] if gps else None,
        taken_at=exif_taken_at(exif) if exif is not None else None,
    )


# --------------------------------------------------------------------------- derivatives


def _draft_size(size: tuple[int, int], box: int) -> tuple[int, int] | None:
    """The size ``thumbnail((box, box))`` will produce, or None if no reduction is needed.

    Passing this to ``draft`` (instead of ``(box, box)``) matters: JPEG draft picks the largest
    scale 1/s that keeps *both* sides >= the request, so a square request on a 4:3 photo
    forces the short side >= box and usually disables the reduction entirely.
    """
    width, height = size
    longest = max(width, height)
    if longest <= box:
        return None
    scale = box / longest
    return max(1, math.ceil(width * scale)), max(1, math.ceil(height * scale))


def _transpose_in_place(img: Image.Image) -> None:
    try:
        ImageOps.exif_transpose(img, in_place=True)  # in place: no copy when already upright
    except Exception:  # unreadable EXIF: keep the pixels as stored
        log.info("exif_transpose failed, orientation ignored", exc_info=True)


_SRGB: Final = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


def _to_srgb(img: Image.Image) -> Image.Image:
    """RGB pixels, colour-managed to sRGB when an embedded ICC profile says so.

    The derivative carries no profile, so a Display P3 photo (iPhone) is converted rather than
    left to be shown as if it were sRGB. Transparency is flattened onto white.
    """
    icc = img.info.get("icc_profile")
    if icc and img.mode in ("RGB", "CMYK", "L"):
        try:
            converted = ImageCms.profileToProfile(
                img, ImageCms.ImageCmsProfile(io.BytesIO(icc)), _SRGB, outputMode="RGB"
            )
            if converted is not None:
                return converted
        except Exception:  # broken or mismatched profile: fall back to a plain conversion
            log.info("ICC conversion failed, profile ignored", exc_info=True)
    if img.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):  # 16-bit/float greyscale
        img = img.convert("I").point(lambda v: v * (1 / 256)).convert("L")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        img.mode == "P" and "transparency" in img.info
    ):
        rgba = img.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return img if img.mode == "RGB" else img.convert("RGB")


def _encode_jpeg(img: Image.Image, quality: int) -> bytes:
    img.info = {}  # JPEG save falls back to im.info for "comment"; take nothing from the source
    out = io.BytesIO()
    img.save(
        out, format="JPEG", quality=quality, progressive=True, optimize=True, exif=b"", comment=b""
    )
    return out.getvalue()


def make_derivatives(
    path: Path,
    *,
    display_px: int = 1600,
    thumb_px: int = 320,
    quality: int = 82,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> tuple[bytes, bytes]:
    """(display JPEG, thumbnail JPEG) bytes: upright, sRGB, stripped of every bit of metadata.

    JPEG sources are decoded at reduced scale (``draft``) to just above ``display_px``; the
    thumbnail is made from the display copy, so the source is decoded once. HEIF sources are
    decoded at full size on purpose: pillow-heif's ``draft`` would substitute the embedded
    thumbnail, whose content is not guaranteed to match the primary image (evidence!).
    """
    if not 0 < thumb_px <= display_px:
        raise ValueError("need 0 < thumb_px <= display_px")
    path = Path(path)
    _, fmt = _sniff_file(path)
    with _pillow_errors(), Image.open(path, formats=[fmt]) as img:
        _check_pixels(img.size, max_pixels)
        if fmt == "JPEG" and (request := _draft_size(img.size, display_px)):
            img.draft("RGB", request)
        img.load()
        _transpose_in_place(img)
        # everything happens inside the `with`: closing an image releases its pixels, and
        # `display` may be `img` itself
        display = _to_srgb(img)
        display.thumbnail((display_px, display_px), Image.Resampling.LANCZOS)
        thumb = display.copy()
        thumb.thumbnail((thumb_px, thumb_px), Image.Resampling.LANCZOS)
        return _encode_jpeg(display, quality), _encode_jpeg(thumb, quality)
