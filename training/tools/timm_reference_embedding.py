"""The embedding an imported bundle must serve, computed by timm from the checkpoint itself.

Used by test/bundles/imported-bundle.test.ts.

Reads the checkpoint as clmae.import_checkpoint does, loads its encoder keys into
timm.create_model(vit_base_patch16_224 / vit_large_patch16_224, depth from the keys) with strict=True,
preprocesses the image with the bundle's eval transform (torchvision, clmae.data), and writes the class
token and the mean of the patch tokens of forward_features, unnormalised.

    .venv/bin/python training/tools/timm_reference_embedding.py --format mae --checkpoint ckpt.pth \\
        --bundle models/x --image test/fixtures/images/gradient.png --out ref.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import timm
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # training/ for `import clmae`
from clmae.data import build_eval_transform  # noqa: E402
from clmae.import_checkpoint import load_file, split_checkpoint  # noqa: E402

TIMM_NAMES = {768: "vit_base_patch16_224", 1024: "vit_large_patch16_224"}
ENCODER_KEYS = ("cls_token", "pos_embed", "patch_embed.", "blocks.", "norm.")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--format", required=True, choices=("mae", "timm", "clmae"))
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--bundle", required=True, help="the imported bundle (its manifest's eval_transform is used)")
    p.add_argument("--image", required=True)
    p.add_argument("--out", required=True)
    a = p.parse_args()
    path = Path(a.checkpoint)
    state, _, _ = split_checkpoint(load_file(path), a.format, path)
    encoder = {k: v for k, v in state.items() if k.startswith(ENCODER_KEYS)}
    width = encoder["cls_token"].shape[-1]
    depth = 1 + max(int(k.split(".")[1]) for k in encoder if k.startswith("blocks."))
    model = timm.create_model(TIMM_NAMES[width], pretrained=False, num_classes=0, depth=depth).eval()
    model.load_state_dict(encoder, strict=True)
    manifest = json.loads((Path(a.bundle) / "manifest.json").read_text())
    pixels = build_eval_transform(manifest["eval_transform"])(Image.open(a.image).convert("RGB"))[None]
    with torch.no_grad():
        tokens = model.forward_features(pixels)[0]  # (1 + L, D)
    Path(a.out).write_text(json.dumps({"cls": tokens[0].tolist(), "mean": tokens[1:].mean(0).tolist()}))


if __name__ == "__main__":
    main()
