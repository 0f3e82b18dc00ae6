"""Draw the app icons (PNG) with Pillow: `.venv/bin/python pwa/icons/make_icons.py`.

A plough-blade blue square with a white "T" and a snow-white road line; the maskable variant keeps
the drawing inside the 80 % safe zone.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

HERE = Path(__file__).resolve().parent
BLUE = (11, 61, 145, 255)
WHITE = (255, 255, 255, 255)
AMBER = (255, 191, 0, 255)


def draw(size: int, safe: float) -> Image.Image:
    image = Image.new("RGBA", (size, size), BLUE)
    d = ImageDraw.Draw(image)
    inner = size * safe
    o = (size - inner) / 2
    bar_h = inner * 0.18
    d.rectangle(
        [o + inner * 0.12, o + inner * 0.14, o + inner * 0.88, o + inner * 0.14 + bar_h], fill=WHITE
    )
    d.rectangle(
        [o + inner * 0.41, o + inner * 0.14, o + inner * 0.59, o + inner * 0.78], fill=WHITE
    )
    d.rectangle(
        [o + inner * 0.08, o + inner * 0.84, o + inner * 0.92, o + inner * 0.92], fill=AMBER
    )
    return image


def main() -> None:
    draw(192, 1.0).save(HERE / "icon-192.png", optimize=True)
    draw(512, 1.0).save(HERE / "icon-512.png", optimize=True)
    draw(512, 0.8).save(HERE / "icon-maskable-512.png", optimize=True)


if __name__ == "__main__":
    main()
