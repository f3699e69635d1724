"""Export one untrained encoder twice, for the A/B of bench/encoder-ids-keep.ts (issue 15):

    encoder-ids-keep.onnx  images (N, 3, H, W) + ids_keep (N, K) -> latent (N, 1+K, D)   (the bundle's graph)
    encoder-full.onnx      images (N, 3, H, W)                   -> latent (N, 1+L, D)   (no gather; L fixed)

Same weights (one model, one seed), same exporter (clmae.export.export_graph), so the only difference is
the gather and the dynamic K. onnxruntime-node ignores freeDimensionOverrides, so L is fixed in the graph.

    cd training && ../.venv/bin/python tools/export_encoder_variants.py --config vit_base_p16_224 \
        --output ../runs/bench-models/encoder-variants-vit-base
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from torch import nn

from clmae.configs import CONFIGS, get_config
from clmae.export import DEFAULT_OPSET, export_graph
from clmae.mae import build_models
from clmae.export_graphs import EncoderGraph


class FullEncoderGraph(nn.Module):
    """Every patch, in grid order: the encoder without ids_keep (K = L)."""

    def __init__(self, graph: EncoderGraph) -> None:
        super().__init__()
        self.stem = graph.stem
        self.encoder = graph.encoder

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.encoder.forward_sequence(self.stem(images))  # (N, 1+L, D)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="vit_base_p16_224", help=", ".join(CONFIGS))
    p.add_argument("--output", required=True, help="directory for the two graphs")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    config = get_config(args.config)
    torch.manual_seed(args.seed)
    mae, _ = build_models(config, "mae")
    with_ids = EncoderGraph(mae.stem, mae.encoder).eval()
    full = FullEncoderGraph(with_ids).eval()
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    s, L, D = config.image_size, config.num_patches, config.embed_dim
    images = torch.randn(2, 3, s, s)
    ids = torch.arange(L).expand(2, L).contiguous()
    export_graph(with_ids, (images, ids), out / "encoder-ids-keep.onnx",
                 {"inputs": [{"name": "images", "shape": ["N", 3, s, s]}, {"name": "ids_keep", "shape": ["N", "K"]}],
                  "outputs": [{"name": "latent", "shape": ["N", "1+K", D]}]}, DEFAULT_OPSET)
    export_graph(full, (images,), out / "encoder-full.onnx",
                 {"inputs": [{"name": "images", "shape": ["N", 3, s, s]}],
                  "outputs": [{"name": "latent", "shape": ["N", 1 + L, D]}]}, DEFAULT_OPSET)
    with torch.no_grad():
        diff = (with_ids(images, ids) - full(images)).abs().max().item()
    print(f"wrote {out}/encoder-ids-keep.onnx and encoder-full.onnx ({config.name}, L = {L}); "
          f"PyTorch max |ids_keep - full| = {diff:.2e}")


if __name__ == "__main__":
    main()
