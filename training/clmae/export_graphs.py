"""nn.Module wrappers, one per exported graph; inputs and outputs named as in the bundle manifest.

encoder:     images (N, 3, H, W) float32 + ids_keep (N, K) int64 -> latent (N, 1+K, D)
decoder:     latent (N, 1+K, D) + ids_restore (N, L) int64       -> pred (N, L, p*p*3)
keep_scores: images (N, 3, H, W)                                  -> keep_scores (N, L) in (0, 1)
The keep_scores graph carries its own copy of the patch stem so that it stands alone.
"""

from __future__ import annotations

import torch
from torch import nn

from clmae.mae import MaskedAutoencoder
from clmae.masking import MaskingModule


class EncoderGraph(nn.Module):
    def __init__(self, mae: MaskedAutoencoder) -> None:
        super().__init__()
        self.stem = mae.stem
        self.encoder = mae.encoder

    def forward(self, images: torch.Tensor, ids_keep: torch.Tensor) -> torch.Tensor:
        return self.encoder(self.stem(images), ids_keep)  # (N, 1+K, D)


class DecoderGraph(nn.Module):
    def __init__(self, mae: MaskedAutoencoder) -> None:
        super().__init__()
        self.decoder = mae.decoder

    def forward(self, latent: torch.Tensor, ids_restore: torch.Tensor) -> torch.Tensor:
        return self.decoder(latent, ids_restore)  # (N, L, p*p*3)


class KeepScoresGraph(nn.Module):
    def __init__(self, mae: MaskedAutoencoder, masking: MaskingModule) -> None:
        super().__init__()
        self.stem = mae.stem
        self.masking = masking

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.masking(self.stem(images))  # (N, L)
