"""Python reference of the evaluation transform, for the service's preprocessing parity test.

Reads `eval_transform` from a bundle manifest and applies, to every fixture image, what training
evaluates with (torchvision, PIL backend):

    PIL.Image.open -> first frame -> ImageOps.exif_transpose -> convert("RGB")
    -> Resize(resize_shorter_side, interpolation, antialias)   # shorter side; long = int(short * long / short)
    -> CenterCrop(center_crop)                                  # offset = int(round((size - crop) / 2))
    -> ToTensor() -> Normalize(mean, std)                       # (3, crop, crop) float32

and writes test/fixtures/preprocess-reference.json (generated; do not edit). The TypeScript test
test/imaging/eval-transform.test.ts runs src/imaging/ on the same files and compares within its stated
tolerance. Tensors are stored as base64 of little-endian float32, CHW. The file also holds
`resample_cases`: Pillow's Image.resize of small seeded random images, for test/imaging/resample.test.ts.

Usage (from the repository root):
    .venv/bin/python training/tools/dump_eval_transform.py \
        [--manifest training/bundle-format/manifest.example.json] \
        [--images test/fixtures/preprocess] [--out test/fixtures/preprocess-reference.json]
"""
from __future__ import annotations

import argparse
import base64
import json
from pathlib import Path

import numpy as np
import torchvision
from PIL import Image, ImageOps
from torchvision import transforms
from torchvision.transforms import InterpolationMode

INTERPOLATION = {"bicubic": InterpolationMode.BICUBIC, "bilinear": InterpolationMode.BILINEAR}
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".gif"}


def build_eval_transform(spec: dict) -> transforms.Compose:
    """The manifest's eval_transform as a torchvision pipeline (after decoding and RGB conversion)."""
    if spec["color_mode"] != "RGB":
        raise ValueError(f"eval_transform.color_mode {spec['color_mode']!r} is not supported (only RGB)")
    return transforms.Compose([
        transforms.Resize(spec["resize_shorter_side"], interpolation=INTERPOLATION[spec["interpolation"]],
                          antialias=spec["antialias"]),
        transforms.CenterCrop(spec["center_crop"]),
        transforms.ToTensor(),
        transforms.Normalize(spec["mean"], spec["std"]),
    ])


def load_rgb(path: Path) -> tuple[Image.Image, list[int]]:
    """Decoded, first frame, EXIF-oriented, RGB (alpha dropped, as PIL's convert does); plus the stored size."""
    with Image.open(path) as img:
        stored = [img.width, img.height]
        img.seek(0)
        oriented = ImageOps.exif_transpose(img)
        return oriented.convert("RGB"), stored


def resized_size(width: int, height: int, short_target: int) -> list[int]:
    """torchvision's size rule for Resize(int): the shorter side becomes short_target, long = int(t * long / short)."""
    if width <= height:
        return [short_target, int(short_target * height / width)]
    return [int(short_target * width / height), short_target]


# (in_w, in_h, out_w, out_h): both pass orders of Pillow 13, up- and downscales, equality edge cases
RESAMPLE_CASES = [(40, 30, 17, 11), (30, 40, 29, 12), (31, 45, 50, 20), (45, 31, 60, 50), (50, 50, 7, 41),
                  (22, 36, 12, 16), (36, 22, 30, 10), (20, 20, 33, 33), (41, 19, 41, 9), (19, 41, 9, 41)]


def dump_resample_cases(filter_name: str) -> list[dict]:
    """PIL Image.resize on seeded random RGB images: the resampler's own parity cases (uint8, exact)."""
    rng = np.random.default_rng(0)
    cases = []
    for in_w, in_h, out_w, out_h in RESAMPLE_CASES:
        src = rng.integers(0, 256, size=(in_h, in_w, 3), dtype=np.uint8)
        resample = {"bicubic": Image.Resampling.BICUBIC, "bilinear": Image.Resampling.BILINEAR}[filter_name]
        out = np.asarray(Image.fromarray(src, "RGB").resize((out_w, out_h), resample))
        cases.append({"in_size": [in_w, in_h], "out_size": [out_w, out_h], "filter": filter_name,
                      "src_base64": base64.b64encode(src.tobytes()).decode("ascii"),
                      "out_base64": base64.b64encode(out.tobytes()).decode("ascii")})
    return cases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--manifest", type=Path, default=Path("training/bundle-format/manifest.example.json"),
                        help="manifest.json whose eval_transform is applied")
    parser.add_argument("--images", type=Path, default=Path("test/fixtures/preprocess"),
                        help="directory of fixture images (made by training/tools/make_preprocess_fixtures.py)")
    parser.add_argument("--out", type=Path, default=Path("test/fixtures/preprocess-reference.json"),
                        help="reference JSON to write")
    args = parser.parse_args()

    if not args.manifest.is_file():
        raise FileNotFoundError(f"manifest not found: {args.manifest}")
    spec = json.loads(args.manifest.read_text())["eval_transform"]
    transform = build_eval_transform(spec)
    files = sorted(p for p in args.images.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise FileNotFoundError(f"no images in {args.images}")

    crop = spec["center_crop"]
    entries = []
    for path in files:
        rgb, stored = load_rgb(path)
        size = resized_size(rgb.width, rgb.height, spec["resize_shorter_side"])
        x = transform(rgb).numpy().astype("<f4")  # (3, crop, crop)
        assert x.shape == (3, crop, crop), f"{path}: transform gave {x.shape}"
        entries.append({
            "file": path.name,
            "stored_size": stored,
            "oriented_size": [rgb.width, rgb.height],
            "resized_size": size,
            "crop_offset": [int(round((size[0] - crop) / 2.0)), int(round((size[1] - crop) / 2.0))],
            "shape": list(x.shape),
            "tensor_f32le_base64": base64.b64encode(np.ascontiguousarray(x).tobytes()).decode("ascii"),
        })
        print(f"{path.name}: stored {stored} -> oriented {[rgb.width, rgb.height]} -> resized {size}")

    reference = {
        "generated_by": "training/tools/dump_eval_transform.py (generated; do not edit)",
        "torchvision_version": torchvision.__version__,
        "pillow_version": Image.__version__,
        "manifest": str(args.manifest),
        "eval_transform": spec,
        "layout": "CHW float32 little-endian, normalised: (x / 255 - mean) / std",
        "images": entries,
        "resample_layout": "HWC uint8 RGB",
        "resample_cases": dump_resample_cases("bicubic") + dump_resample_cases("bilinear"),
    }
    args.out.write_text(json.dumps(reference, indent=1) + "\n")
    print(f"wrote {args.out} ({len(entries)} images)")


if __name__ == "__main__":
    main()
