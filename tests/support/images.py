"""Test images: a recognisable picture, EXIF blocks (orientation, GPS, capture time), encoders."""

from __future__ import annotations

import io
from typing import Any

from PIL import ExifTags, Image
from PIL.TiffImagePlugin import IFDRational


def photo(size: tuple[int, int] = (400, 300)) -> Image.Image:
    """Gradient + noise, with a red marker in the top-left corner of the stored pixels."""
    width, height = size
    gradient = Image.linear_gradient("L").resize(size)
    noise = Image.effect_noise(size, 40)
    img = Image.merge("RGB", (gradient, noise, gradient.transpose(Image.Transpose.FLIP_LEFT_RIGHT)))
    img.paste((255, 0, 0), (0, 0, max(1, width // 8), max(1, height // 8)))
    return img


def dms(value: float) -> tuple[IFDRational, IFDRational, IFDRational]:
    value = abs(value)
    degrees = int(value)
    minutes = int((value - degrees) * 60)
    seconds = round((value - degrees - minutes / 60) * 3600 * 1000)
    return IFDRational(degrees), IFDRational(minutes), IFDRational(seconds, 1000)


def exif_block(
    orientation: int | None = None,
    gps: tuple[float, float] | None = None,
    taken: str | None = None,
    offset: str | None = None,
) -> Image.Exif:
    exif = Image.Exif()
    if orientation is not None:
        exif[ExifTags.Base.Orientation] = orientation
    if gps is not None:
        ifd = exif.get_ifd(ExifTags.IFD.GPSInfo)
        ifd[ExifTags.GPS.GPSLatitudeRef] = "N" if gps[0] >= 0 else "S"
        ifd[ExifTags.GPS.GPSLatitude] = dms(gps[0])
        ifd[ExifTags.GPS.GPSLongitudeRef] = "E" if gps[1] >= 0 else "W"
        ifd[ExifTags.GPS.GPSLongitude] = dms(gps[1])
    if taken is not None:
        sub = exif.get_ifd(ExifTags.IFD.Exif)
        sub[ExifTags.Base.DateTimeOriginal] = taken
        if offset is not None:
            sub[ExifTags.Base.OffsetTimeOriginal] = offset
    return exif


def encode(img: Image.Image, fmt: str = "JPEG", **params: Any) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **params)
    return buf.getvalue()
