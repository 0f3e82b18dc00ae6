"""Photo pipeline benchmark: derivatives of a 12 MP phone-sized JPEG, with and without draft.

    .venv/bin/python bench/bench_photos.py [--repeat 5] [--keep]

Each variant runs in a fresh subprocess, so its peak RSS (``ru_maxrss``) is its own: the table
shows the peak *above* the process's RSS after imports and before any image work. Pillow's pixel
buffers are allocated in C, invisible to tracemalloc, hence RSS. Time is the median of
``--repeat`` runs in that process (the first run is included in the peak, not only the median).

Variants:
  make_derivatives   server.photos.imaging.make_derivatives (JPEG draft to just above 1600 px)
  draft_square_box   the same with draft("RGB", (1600, 1600)): on 4:3 the short side must stay
                     >= 1600, so libjpeg decodes at full scale and draft buys nothing
  naive_full_decode  open, load() at full size, exif_transpose, resize (LANCZOS, no draft)
  pillow_thumbnail   open, thumbnail() with Pillow's default reducing_gap=2 (its own draft)
  inspect            server.photos.imaging.inspect (verify + 1/8-scale load + metadata)
"""

from __future__ import annotations

import argparse
import io
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from PIL import Image, ImageDraw, ImageFilter, ImageOps  # noqa: E402

from server.photos import imaging  # noqa: E402

WIDTH, HEIGHT = 4000, 3000
DISPLAY_PX, THUMB_PX, QUALITY = 1600, 320, 82
VARIANTS = (
    "make_derivatives",
    "draft_square_box",
    "naive_full_decode",
    "pillow_thumbnail",
    "inspect",
)


def make_photo(path: Path) -> None:
    """A 12 MP JPEG that compresses like a real photo: gradients, shapes, sensor-like noise."""
    size = (WIDTH, HEIGHT)
    horizontal = Image.linear_gradient("L").resize(size)
    vertical = Image.linear_gradient("L").rotate(90).resize(size)
    radial = Image.radial_gradient("L").resize(size)
    img = Image.merge("RGB", (horizontal, vertical, radial))
    draw = ImageDraw.Draw(img)
    for i in range(60):  # structure: edges make the DCT work, like a street scene
        x, y = (i * 397) % WIDTH, (i * 211) % HEIGHT
        colour = ((i * 53) % 256, (i * 97) % 256, (i * 31) % 256)
        draw.ellipse((x, y, x + 180 + (i * 37) % 600, y + 120 + (i * 23) % 400), fill=colour)
    img = img.filter(ImageFilter.GaussianBlur(2))
    noise = Image.merge("RGB", [Image.effect_noise(size, 28) for _ in range(3)])
    img = Image.blend(img, noise, 0.18)
    exif = Image.Exif()
    exif[0x0112] = 6  # portrait, as phones store it
    img.save(path, format="JPEG", quality=92, exif=exif)


def _peak_rss_kib() -> int:
    """Peak RSS of this process image. VmHWM, because ru_maxrss survives exec() on Linux: a
    child would report its parent's peak (the photo generation) as its own."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS


def _encode(img: Image.Image) -> bytes:
    out = io.BytesIO()
    img.save(out, format="JPEG", quality=QUALITY, progressive=True, optimize=True)
    return out.getvalue()


def run_variant(variant: str, path: Path) -> tuple[int, int]:
    """One run; returns the two output sizes (bytes), or (0, 0) for inspect."""
    if variant == "make_derivatives":
        display, thumb = imaging.make_derivatives(path, display_px=DISPLAY_PX, thumb_px=THUMB_PX)
        return len(display), len(thumb)
    if variant == "draft_square_box":
        with Image.open(path) as img:
            img.draft("RGB", (DISPLAY_PX, DISPLAY_PX))
            img.load()
            ImageOps.exif_transpose(img, in_place=True)
            display = img.convert("RGB")
        display.thumbnail((DISPLAY_PX, DISPLAY_PX), Image.Resampling.LANCZOS)
        thumb = display.copy()
        thumb.thumbnail((THUMB_PX, THUMB_PX), Image.Resampling.LANCZOS)
        return len(_encode(display)), len(_encode(thumb))
    if variant == "naive_full_decode":
        with Image.open(path) as img:
            img.load()
            upright = ImageOps.exif_transpose(img).convert("RGB")
        scale = DISPLAY_PX / max(upright.size)
        display = upright.resize(
            (round(upright.width * scale), round(upright.height * scale)), Image.Resampling.LANCZOS
        )
        scale = THUMB_PX / max(display.size)
        thumb = display.resize(
            (round(display.width * scale), round(display.height * scale)), Image.Resampling.LANCZOS
        )
        return len(_encode(display)), len(_encode(thumb))
    if variant == "pillow_thumbnail":
        with Image.open(path) as img:
            img.thumbnail((DISPLAY_PX, DISPLAY_PX), Image.Resampling.LANCZOS)  # reducing_gap=2
            display = ImageOps.exif_transpose(img).convert("RGB")
        thumb = display.copy()
        thumb.thumbnail((THUMB_PX, THUMB_PX), Image.Resampling.LANCZOS)
        return len(_encode(display)), len(_encode(thumb))
    if variant == "inspect":
        imaging.inspect(path, max_pixels=imaging.DEFAULT_MAX_PIXELS)
        return 0, 0
    raise SystemExit(f"unknown variant {variant}")


def child(variant: str, path: Path, repeat: int) -> None:
    before = _peak_rss_kib()
    times, sizes = [], (0, 0)
    for _ in range(repeat):
        started = time.perf_counter()
        sizes = run_variant(variant, path)
        times.append(time.perf_counter() - started)
    print(
        json.dumps(
            {
                "variant": variant,
                "median_ms": statistics.median(times) * 1000,
                "first_ms": times[0] * 1000,
                "peak_delta_mib": (_peak_rss_kib() - before) / 1024,
                "baseline_mib": before / 1024,
                "sizes": sizes,
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--keep", action="store_true", help="keep the generated JPEG")
    parser.add_argument("--child", nargs=2, metavar=("VARIANT", "FILE"), help=argparse.SUPPRESS)
    parser.add_argument("--generate", metavar="FILE", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], Path(args.child[1]), args.repeat)
        return
    if args.generate:
        make_photo(Path(args.generate))
        return

    workdir = Path(tempfile.mkdtemp(prefix="tournee-bench-"))
    photo = workdir / "photo_12mp.jpg"
    started = time.perf_counter()
    # in a subprocess too: keeps the ~250 MiB of generation out of this process
    subprocess.run([sys.executable, __file__, "--generate", photo], check=True)
    print(
        f"source: {WIDTH}x{HEIGHT} JPEG q92, orientation 6, "
        f"{photo.stat().st_size / 1e6:.2f} MB (generated in {time.perf_counter() - started:.1f} s)"
    )
    print(f"targets: display {DISPLAY_PX}px, thumb {THUMB_PX}px, q{QUALITY}, progressive")
    print(f"{args.repeat} runs per variant, each variant in a fresh process\n")

    results = {}
    for variant in VARIANTS:
        proc = subprocess.run(
            [sys.executable, __file__, "--repeat", str(args.repeat), "--child", variant, photo],
            capture_output=True,
            text=True,
            check=True,
        )
        results[variant] = json.loads(proc.stdout.strip().splitlines()[-1])

    header = f"{'variant':<20}{'median ms':>11}{'1st run ms':>12}{'peak RSS +MiB':>15}  outputs"
    print(header)
    print("-" * len(header))
    for variant, r in results.items():
        sizes = (
            ""
            if variant == "inspect"
            else "{:.0f} kB + {:.0f} kB".format(*(s / 1000 for s in r["sizes"]))
        )
        print(
            f"{variant:<20}{r['median_ms']:>11.0f}{r['first_ms']:>12.0f}"
            f"{r['peak_delta_mib']:>15.1f}  {sizes}"
        )
    ours, naive = results["make_derivatives"], results["naive_full_decode"]
    print(
        f"\nnaive / make_derivatives: time x{naive['median_ms'] / ours['median_ms']:.1f}, "
        f"peak memory x{naive['peak_delta_mib'] / max(ours['peak_delta_mib'], 0.1):.1f}"
    )
    print(f"(process baseline after imports: {ours['baseline_mib']:.0f} MiB)")
    if args.keep:
        print(f"kept {photo}")
    else:
        photo.unlink()
        workdir.rmdir()


if __name__ == "__main__":
    main()
