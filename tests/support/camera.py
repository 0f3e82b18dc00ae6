"""Camera-like JPEGs for the field tests: 4000×3000, textured like a street scene (not noise,
which no encoder can shrink), about 1.5 MB, with the EXIF a phone writes (DateTimeOriginal,
GPS, Make, Model) and Orientation 6 (the pixels are stored sideways, as phones do)."""

from __future__ import annotations

import io
import random
from datetime import datetime

from PIL import Image, ImageDraw, ImageFilter


def _dms(value: float) -> tuple[float, float, float]:
    value = abs(value)
    degrees = int(value)
    minutes = int((value - degrees) * 60)
    seconds = round(((value - degrees) * 60 - minutes) * 60, 4)
    return (float(degrees), float(minutes), seconds)


def camera_jpeg(
    seed: int,
    *,
    taken: datetime,
    lat: float,
    lon: float,
    size: tuple[int, int] = (4000, 3000),
    orientation: int = 6,
    quality: int = 75,
) -> bytes:
    rng = random.Random(seed)
    width, height = size
    small = Image.new("RGB", (width // 8, height // 8))
    draw = ImageDraw.Draw(small)
    for _ in range(400):
        x, y = rng.randrange(small.width), rng.randrange(small.height)
        w, h = rng.randrange(4, 80), rng.randrange(4, 60)
        colour = tuple(rng.randrange(40, 230) for _ in range(3))
        draw.rectangle((x, y, x + w, y + h), fill=colour)
    image = small.resize(size, Image.Resampling.BILINEAR).filter(ImageFilter.GaussianBlur(1))
    # fine grain, like a phone sensor, so the file is camera-sized
    grain = Image.effect_noise((width // 2, height // 2), 40).resize(size).convert("RGB")
    image = Image.blend(image, grain, 0.15)
    exif = Image.Exif()
    exif[0x010F] = "Samsung"  # Make
    exif[0x0110] = "SM-G991W"  # Model
    exif[0x0112] = orientation
    exif[0x0132] = taken.strftime("%Y:%m:%d %H:%M:%S")
    ifd = exif.get_ifd(0x8769)
    ifd[0x9003] = taken.strftime("%Y:%m:%d %H:%M:%S")  # DateTimeOriginal
    gps = exif.get_ifd(0x8825)
    gps[1] = "N" if lat >= 0 else "S"
    gps[2] = _dms(lat)
    gps[3] = "E" if lon >= 0 else "W"
    gps[4] = _dms(lon)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality, exif=exif)
    return out.getvalue()
