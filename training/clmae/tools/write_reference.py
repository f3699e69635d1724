"""Write reference outputs of a bundle for the service's tests to compare against (tolerance 1e-4).

    cd training && ../.venv/bin/python -m clmae.tools.write_reference \
        --bundle ../models/clmae-vit-mini-p8-64 --out ../test/fixtures/reference/clmae-vit-mini-p8-64.json

For 3 deterministic synthetic images it stores the preprocessed inputs (normalised float32 NCHW,
base64 of little-endian float32), the bundle's graph sha256s and the onnxruntime outputs of the
bundle's own graphs: the full-sequence latent (plus cls and mean-pooled patch tokens, unnormalised),
the keep scores (clmae), and decoder predictions for (a) the learned top-K mask at the bundle's ratio
(clmae) and (b) a given mask. The file is generated: re-run this tool whenever the bundle changes.
"""

from __future__ import annotations

import argparse
import base64
import json
import math
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort

TOLERANCE = 1e-4


def encode_f32(array: np.ndarray) -> dict:
    """{dtype, shape, base64} of a little-endian float32 array."""
    a = np.ascontiguousarray(array, dtype="<f4")
    return {"dtype": "float32", "shape": list(a.shape), "base64": base64.b64encode(a.tobytes()).decode("ascii")}


def decode_f32(tensor: dict) -> np.ndarray:
    return np.frombuffer(base64.b64decode(tensor["base64"]), dtype="<f4").reshape(tensor["shape"])


def synthetic_pixels(size: int) -> list[tuple[str, str, np.ndarray]]:
    """Three deterministic RGB images (size, size, 3) uint8: name, description, pixels."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float64) / max(size - 1, 1)
    gradient = np.stack([x, y, 1.0 - x], axis=-1)
    checker = ((np.floor(x * 8) + np.floor(y * 8)) % 2)[..., None] * np.array([0.9, 0.2, 0.1]) + 0.05
    r = np.hypot(x - 0.55, y - 0.45)
    disc = np.where(r < 0.3, 1.0, 0.0)[..., None] * np.array([0.1, 0.7, 0.3]) \
        + (0.5 + 0.5 * np.sin(12 * math.pi * x * y))[..., None] * np.array([0.4, 0.2, 0.6]) * (r >= 0.3)[..., None]
    out = []
    for name, desc, img in (("gradient", "R = column ramp, G = row ramp, B = 1 - column ramp", gradient),
                            ("checker", "8x8 red/dark checkerboard", checker),
                            ("disc", "green disc on a sin(12 pi x y) purple pattern", disc)):
        out.append((name, desc, np.clip(np.round(img * 255.0), 0, 255).astype(np.uint8)))
    return out


def normalise(pixels: np.ndarray, mean: list[float], std: list[float]) -> np.ndarray:
    """(H, W, 3) uint8 -> (3, H, W) float32: x / 255, then (x - mean) / std per channel."""
    x = pixels.astype(np.float32) / 255.0
    x = (x - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return x.transpose(2, 0, 1).astype(np.float32)


def order_to_ids(ids_shuffle: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ids_shuffle (N, L) kept-first order -> ids_keep (N, K), ids_restore (N, L), mask (N, L) (1 = removed)."""
    n, num_patches = ids_shuffle.shape
    ids_restore = np.empty_like(ids_shuffle)
    rows = np.arange(n)[:, None]
    ids_restore[rows, ids_shuffle] = np.arange(num_patches)[None, :]
    return ids_shuffle[:, :k].copy(), ids_restore, (ids_restore >= k).astype(np.int64)


def given_mask(n: int, num_patches: int) -> np.ndarray:
    """The 'given' mask used here: patch t is kept when t % 4 == 0 (image 0), t % 4 == 1 (image 1), ..."""
    kept = np.stack([(np.arange(num_patches) % 4) == (i % 4) for i in range(n)])
    return (~kept).astype(np.int64)  # (N, L), 1 = removed


def build_reference(bundle: Path) -> dict:
    manifest = json.loads((bundle / "manifest.json").read_text())
    size, num_patches = manifest["image_size"], manifest["num_patches"]
    spec = manifest["eval_transform"]
    sessions = {key: ort.InferenceSession(str(bundle / g["file"]), providers=["CPUExecutionProvider"])
                for key, g in manifest["graphs"].items()}
    pictures = synthetic_pixels(size)
    images = np.stack([normalise(p, spec["mean"], spec["std"]) for _, _, p in pictures])  # (N, 3, H, W)
    n = images.shape[0]

    def encode(ids_keep):
        return sessions["encoder"].run(None, {"images": images, "ids_keep": ids_keep})[0]

    def decode(latent, ids_restore):
        return sessions["decoder"].run(None, {"latent": latent, "ids_restore": ids_restore})[0]

    full = np.tile(np.arange(num_patches, dtype=np.int64), (n, 1))  # (N, L): embeddings use the full sequence
    latent = encode(full)  # (N, 1+L, D)
    ref = {
        "generated_by": "python -m clmae.tools.write_reference (do not edit; re-run when the bundle changes)",
        "bundle": manifest["name"], "method": manifest["method"], "tolerance": TOLERANCE,
        "graph_sha256": {key: g["sha256"] for key, g in manifest["graphs"].items()},
        "images": [{"name": name, "description": desc, "size": size} for name, desc, _ in pictures],
        "pixels": [{"dtype": "uint8", "layout": "HWC RGB", "shape": list(p.shape),
                    "base64": base64.b64encode(np.ascontiguousarray(p).tobytes()).decode("ascii")}
                   for _, _, p in pictures],
        "input": encode_f32(images),
        "input_note": "normalised float32 NCHW (x / 255 - mean) / std of the synthetic pixels; feed these, "
                      "not a re-encoded image, to compare graph outputs",
        "embeddings": {"ids_keep": "0..L-1 for every image", "latent": encode_f32(latent),
                       "cls": latent[:, 0, :].tolist(), "mean_patch_tokens": latent[:, 1:, :].mean(axis=1).tolist(),
                       "note": "after the encoder's final LayerNorm; not L2-normalised"},
        "reconstructions": {},
    }
    k = int(math.floor(num_patches * (1.0 - manifest["mask_ratio"]) + 1e-9))
    if "keep_scores" in sessions:
        keep_scores = sessions["keep_scores"].run(None, {"images": images})[0]  # (N, L)
        ref["keep_scores"] = keep_scores.tolist()
        order = np.argsort(-keep_scores, axis=1, kind="stable")  # descending, ties to the lower index
        ids_keep, ids_restore, mask = order_to_ids(order, k)
        ref["reconstructions"]["learned"] = {
            "mask_ratio": manifest["mask_ratio"], "num_kept": k, "ids_keep": ids_keep.tolist(),
            "ids_restore": ids_restore.tolist(), "mask": mask.tolist(),
            "pred": encode_f32(decode(encode(ids_keep), ids_restore)),
            "note": "top-K of keep_scores; ids_keep in descending-score order (any order of the same set gives "
                    "the same pred within tolerance: the encoder is permutation-equivariant after the gather)"}
    mask = given_mask(n, num_patches)
    kept_first = np.argsort(mask, axis=1, kind="stable")  # kept patches ascending, then removed ascending
    ids_keep, ids_restore, mask_check = order_to_ids(kept_first, int((mask[0] == 0).sum()))
    assert (mask_check == mask).all(), "given mask round trip failed. This is a bug."
    ref["reconstructions"]["given"] = {
        "masked_patches": [np.flatnonzero(m).tolist() for m in mask], "num_kept": int(ids_keep.shape[1]),
        "ids_keep": ids_keep.tolist(), "ids_restore": ids_restore.tolist(), "mask": mask.tolist(),
        "pred": encode_f32(decode(encode(ids_keep), ids_restore)),
        "note": "ids_keep = kept patches ascending; ids_restore = rank in [kept ascending, removed ascending]"}
    return ref


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m clmae.tools.write_reference", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bundle", required=True, help="bundle directory (models/<name>)")
    p.add_argument("--out", required=True, help="output JSON, e.g. test/fixtures/reference/<name>.json")
    args = p.parse_args(argv)
    ref = build_reference(Path(args.bundle))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(ref) + "\n")
    print(f"wrote {out} ({out.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
