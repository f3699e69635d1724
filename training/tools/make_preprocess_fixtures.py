"""Writes the small images that the preprocessing parity test runs on (test/fixtures/preprocess/).

Each image exercises one step of the evaluation transform in manifest.json's eval_transform:
- exif-rotate-6.jpg: a 120x90 landscape JPEG stored sideways with EXIF Orientation 6 (rotate 90 deg
  clockwise to display), so the displayed image is 90x120 (portrait). Tests EXIF handling + JPEG.
- exif-rotate-3.jpg: 100x80 with Orientation 3 (rotate 180 deg). Non-square.
- wide-odd-offset.png: 150x146; the shorter side 146 -> 73 gives a long side int(73*150/146) = 75, and
  the centre crop offset (75 - 64) / 2 = 5.5 rounds to 6 with Python's round-half-to-even but floors
  to 5: an off-by-one in the crop shows up here.
- tall.png: 80x200 RGB, a large downscale (antialiasing matters).
- rgba.png: 96x72 RGBA with transparent areas; PIL's convert('RGB') drops alpha (no compositing).
- large.jpg: 512x384 plain JPEG (no EXIF), a 5x downscale like the real photos the service gets.
- icc-p3.jpg: 160x120 JPEG with an embedded Display P3 ICC profile; PIL ignores the profile (the stored
  values are the model input), so the service must not convert it to sRGB either.
- gray.png: 70x90 8-bit grayscale; converted to RGB by replicating the channel.

Pixels are smooth gradients plus seeded noise and a few sharp edges, so resampling differences show.
Re-running writes identical pixels (seeded); the files are committed, so the test never runs this.

Usage (from the repository root):
    .venv/bin/python training/tools/make_preprocess_fixtures.py [--out-dir test/fixtures/preprocess]
"""
from __future__ import annotations

import argparse
import base64
from pathlib import Path

import numpy as np
from PIL import Image

ORIENTATION_TAG = 0x0112
# Display P3 matrix/TRC profile ("sP3C", CC0), as sharp 0.34 embeds it with withIccProfile('p3').
DISPLAY_P3_ICC = base64.b64decode(
    "AAAB4GxjbXMEIAAAbW50clJHQiBYWVogB+IAAwAUAAkADgAdYWNzcE1TRlQAAAAAc2F3c2N0cmwAAAAAAAAAAAAAAAAAAPbWAAEA"
    "AAAA0y1oYW5kguKocouKP/clPrmS7iTWrgAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAKZGVzYwAAAPwAAAAkY3BydAAA"
    "ASAAAAAid3RwdAAAAUQAAAAUY2hhZAAAAVgAAAAsclhZWgAAAYQAAAAUZ1hZWgAAAZgAAAAUYlhZWgAAAawAAAAUclRSQwAAAcAA"
    "AAAgZ1RSQwAAAcAAAAAgYlRSQwAAAcAAAAAgbWx1YwAAAAAAAAABAAAADGVuVVMAAAAIAAAAHABzAFAAMwBDbWx1YwAAAAAAAAAB"
    "AAAADGVuVVMAAAAGAAAAHABDAEMAMAAAWFlaIAAAAAAAAPbWAAEAAAAA0y1zZjMyAAAAAAABDEIAAAXe///zJQAAB5MAAP2Q///7"
    "of///k4AAAOaAADAFFhZWiAAAAAAAACD3wAAPb8AAAAAWFlaIAAAAAAAAEq/AACxNwAACrVYWVogAAAAAAAAKDgAABEKAADIeHBh"
    "cmEAAAAAAAMAAAACZmkAAPKnAAANWQAAE9AAAApb"
)


def make_pixels(width: int, height: int, channels: int, seed: int, noise: float = 18.0) -> np.ndarray:
    """(height, width, channels) uint8: gradients + noise + a bright square and a dark bar."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    planes = [
        255 * x / max(width - 1, 1),
        255 * y / max(height - 1, 1),
        127.5 + 127.5 * np.sin(x / 5.0) * np.cos(y / 7.0),
        255 * ((x + y) % 40 < 20),
    ]
    img = np.stack(planes[:channels], axis=-1)
    img += rng.normal(0, noise, size=img.shape)
    img[height // 4: height // 2, width // 5: width // 2] = 250  # sharp-edged square
    img[(2 * height) // 3: (2 * height) // 3 + 3, :] = 5  # thin dark bar
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def save_exif_jpeg(path: Path, pixels: np.ndarray, orientation: int) -> None:
    exif = Image.Exif()
    exif[ORIENTATION_TAG] = orientation
    Image.fromarray(pixels, "RGB").save(path, format="JPEG", quality=92, exif=exif)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out-dir", type=Path, default=Path("test/fixtures/preprocess"),
                        help="directory for the fixture images (created if missing)")
    args = parser.parse_args()
    out: Path = args.out_dir
    out.mkdir(parents=True, exist_ok=True)

    save_exif_jpeg(out / "exif-rotate-6.jpg", make_pixels(120, 90, 3, seed=1), orientation=6)
    save_exif_jpeg(out / "exif-rotate-3.jpg", make_pixels(100, 80, 3, seed=2), orientation=3)
    Image.fromarray(make_pixels(150, 146, 3, seed=3), "RGB").save(out / "wide-odd-offset.png")
    Image.fromarray(make_pixels(80, 200, 3, seed=4), "RGB").save(out / "tall.png")
    Image.fromarray(make_pixels(512, 384, 3, seed=7, noise=6.0), "RGB").save(out / "large.jpg", quality=85)
    Image.fromarray(make_pixels(160, 120, 3, seed=8), "RGB").save(out / "icc-p3.jpg", quality=92,
                                                                  icc_profile=DISPLAY_P3_ICC)
    rgba = make_pixels(96, 72, 4, seed=5)
    rgba[:, :, 3] = np.where(np.arange(96)[None, :] < 30, 0, rgba[:, :, 3])  # fully transparent left band
    Image.fromarray(rgba, "RGBA").save(out / "rgba.png")
    Image.fromarray(make_pixels(70, 90, 1, seed=6)[:, :, 0], "L").save(out / "gray.png")
    for f in sorted(out.iterdir()):
        print(f"{f} {f.stat().st_size} bytes")


if __name__ == "__main__":
    main()
