"""Writes test/fixtures/patches-reference.json: training/clmae/patches.py on a small seeded image, so the
TypeScript mirror (src/imaging/patches.ts, test/imaging/patches.test.ts) is checked against the training code
itself: same patch order, same norm-pix target, same inverse.

Usage (from the repository root):
    .venv/bin/python training/tools/dump_patch_reference.py [--out test/fixtures/patches-reference.json]
"""
from __future__ import annotations

import argparse
import base64
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # training/ for `import clmae`
from clmae.patches import build_target, patchify  # noqa: E402

SIZE, PATCH, EPS = 16, 4, 1e-6


def f32(array: np.ndarray) -> dict:
    a = np.ascontiguousarray(array, dtype="<f4")
    return {"shape": list(a.shape), "base64": base64.b64encode(a.tobytes()).decode("ascii")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("test/fixtures/patches-reference.json"), help="JSON to write")
    args = parser.parse_args()
    images = torch.from_numpy(np.random.default_rng(0).normal(size=(1, 3, SIZE, SIZE)).astype(np.float32))
    reference = {
        "generated_by": "training/tools/dump_patch_reference.py (generated; do not edit)",
        "image_size": SIZE, "patch_size": PATCH, "norm_pix_eps": EPS,
        "images": f32(images[0].numpy()),  # (3, H, W)
        "patches": f32(patchify(images, PATCH)[0].numpy()),  # (L, p*p*3)
        "norm_pix_target": f32(build_target(images, PATCH, norm_pix=True, eps=EPS)[0].numpy()),  # (L, p*p*3)
    }
    args.out.write_text(json.dumps(reference, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
