"""nn.Module wrappers, one per exported graph; inputs and outputs named as in the bundle manifest.

encoder:     images (N, 3, H, W) float32 + ids_keep (N, K) int64 -> latent (N, 1+K, D)
decoder:     latent (N, 1+K, D) + ids_restore (N, L) int64       -> pred (N, L, p*p*3)
keep_scores: images (N, 3, H, W)                                  -> keep_scores (N, L) in (0, 1)
The keep_scores graph carries its own copy of the patch stem so that it stands alone.
Each wrapper takes the parts it runs, so a trained MaskedAutoencoder and the parts mapped from a
released checkpoint (import_checkpoint.py, possibly without a decoder) export the same way.
"""

from __future__ import annotations

import torch
from torch import nn

from clmae.masking import MaskingModule
from clmae.vit import Decoder, Encoder, PatchStem


class EncoderGraph(nn.Module):
    def __init__(self, stem: PatchStem, encoder: Encoder) -> None:
        super().__init__()
        self.stem = stem
        self.encoder = encoder

    def forward(self, images: torch.Tensor, ids_keep: torch.Tensor) -> torch.Tensor:
        return self.encoder(self.stem(images), ids_keep)  # (N, 1+K, D)


class DecoderGraph(nn.Module):
    def __init__(self, decoder: Decoder) -> None:
        super().__init__()
        self.decoder = decoder

    def forward(self, latent: torch.Tensor, ids_restore: torch.Tensor) -> torch.Tensor:
        return self.decoder(latent, ids_restore)  # (N, L, p*p*3)


class KeepScoresGraph(nn.Module):
    def __init__(self, stem: PatchStem, masking: MaskingModule) -> None:
        super().__init__()
        self.stem = stem
        self.masking = masking

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.masking(self.stem(images))  # (N, L)


def build_graphs(*, stem: PatchStem, encoder: Encoder, decoder: Decoder | None = None,
                 masking: MaskingModule | None = None) -> dict[str, nn.Module]:
    """The graphs of one bundle, in eval mode: encoder always, decoder and keep_scores when given."""
    graphs: dict[str, nn.Module] = {"encoder": EncoderGraph(stem, encoder)}
    if decoder is not None:
        graphs["decoder"] = DecoderGraph(decoder)
    if masking is not None:
        graphs["keep_scores"] = KeepScoresGraph(stem, masking)
    return {key: graph.eval() for key, graph in graphs.items()}
