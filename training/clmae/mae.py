"""The masked autoencoder (spec 1.5-1.7) as a composition: stem, encoder, decoder. MAE's method names.

The masking module is a separate nn.Module (masking.py) so that the two parts get their own
optimizer and their own DDP wrapper (spec A2, A9); losses live in losses.py.
"""

from __future__ import annotations

import torch
from torch import nn

from clmae.configs import ModelConfig
from clmae.masking import MaskingModule
from clmae.patches import build_target
from clmae.vit import Decoder, Encoder, PatchStem


class MaskedAutoencoder(nn.Module):
    """Args:
        config: the named architecture.
        norm_pix: predict per-patch normalised pixels (the target of build_target).
        norm_pix_eps: epsilon of that normalisation.
    """

    def __init__(self, *, config: ModelConfig, norm_pix: bool = True, norm_pix_eps: float = 1e-6) -> None:
        super().__init__()
        self.config = config
        self.norm_pix = norm_pix
        self.norm_pix_eps = norm_pix_eps
        self.stem = PatchStem(image_size=config.image_size, patch_size=config.patch_size, embed_dim=config.embed_dim)
        self.encoder = Encoder(embed_dim=config.embed_dim, depth=config.depth, num_heads=config.num_heads,
                               mlp_ratio=config.mlp_ratio)
        self.decoder = Decoder(num_patches=config.num_patches, grid_size=config.grid_size,
                               embed_dim=config.embed_dim, decoder_embed_dim=config.decoder_embed_dim,
                               depth=config.decoder_depth, num_heads=config.decoder_num_heads,
                               mlp_ratio=config.mlp_ratio, patch_dim=config.patch_dim)

    def forward_tokens(self, images: torch.Tensor) -> torch.Tensor:
        """images (N, 3, H, W) -> tokens (N, L, D) with the position embedding added."""
        return self.stem(images)

    def forward_encoder(self, tokens: torch.Tensor, ids_keep: torch.Tensor) -> torch.Tensor:
        """tokens (N, L, D) + ids_keep (N, K) -> latent (N, 1+K, D)."""
        return self.encoder(tokens, ids_keep)

    def forward_decoder(self, latent: torch.Tensor, ids_restore: torch.Tensor) -> torch.Tensor:
        """latent (N, 1+K, D) + ids_restore (N, L) -> pred (N, L, p*p*3)."""
        return self.decoder(latent, ids_restore)

    def forward_target(self, images: torch.Tensor) -> torch.Tensor:
        """images (N, 3, H, W) -> target (N, L, p*p*3), fp32."""
        return build_target(images, self.config.patch_size, self.norm_pix, self.norm_pix_eps)

    def forward(self, images: torch.Tensor, ids_keep: torch.Tensor, ids_restore: torch.Tensor) -> torch.Tensor:
        """The MAE step's forward (one DDP call): images + hard mask -> pred (N, L, p*p*3)."""
        return self.forward_decoder(self.forward_encoder(self.forward_tokens(images), ids_keep), ids_restore)


def build_models(config: ModelConfig, method: str, *, norm_pix: bool = True,
                 norm_pix_eps: float = 1e-6) -> tuple[MaskedAutoencoder, MaskingModule | None]:
    """The MAE, and the masking module for method 'clmae' (None for 'mae')."""
    if method not in ("clmae", "mae"):
        raise ValueError(f"unknown method {method!r}; valid: clmae, mae")
    mae = MaskedAutoencoder(config=config, norm_pix=norm_pix, norm_pix_eps=norm_pix_eps)
    masking = None
    if method == "clmae":
        masking = MaskingModule(num_patches=config.num_patches, embed_dim=config.embed_dim,
                                depth=config.masking_depth, num_heads=config.masking_num_heads,
                                mlp_ratio=config.mlp_ratio)
    return mae, masking
