"""The CL-MAE curriculum masking module (spec 2.2): tokens (N, L, D) -> keep_scores (N, L) in (0, 1).

A transformer over the encoder's patch tokens (patch embedding + pos table, shared with the MAE),
a learnable cls token, LayerNorm (eps 1e-5, as the official code) -> Linear(D, L) -> sigmoid on the
cls output: one keep score per patch position, high = keep. No sorting inside (selection.py).
"""

from __future__ import annotations

import torch
from torch import nn

from clmae.vit import Block, init_vit_weights


class MaskingModule(nn.Module):
    """Args:
        num_patches: L (the head is Linear(D, L), so the module is tied to one grid).
        embed_dim: D, the encoder width (no input projection).
        depth, num_heads: blocks and heads (paper: 5 x 4).
        mlp_ratio: MLP width ratio of the blocks.
    """

    def __init__(self, *, num_patches: int, embed_dim: int, depth: int, num_heads: int, mlp_ratio: float) -> None:
        super().__init__()
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.blocks = nn.ModuleList(
            Block(dim=embed_dim, num_heads=num_heads, mlp_ratio=mlp_ratio, norm_eps=1e-5) for _ in range(depth))
        self.norm = nn.LayerNorm(embed_dim, eps=1e-5)
        self.head = nn.Linear(embed_dim, num_patches)
        self.apply(init_vit_weights)
        nn.init.normal_(self.cls_token, std=0.02)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens (N, L, D) -> keep_scores (N, L) float32; the head runs in fp32 (spec A10)."""
        x = torch.cat([self.cls_token.expand(tokens.shape[0], -1, -1), tokens], dim=1)  # (N, 1+L, D)
        for block in self.blocks:
            x = block(x)
        cls = self.norm(x[:, 0, :])  # (N, D)
        if cls.device.type not in ("cpu", "cuda"):  # e.g. the meta device of the config tests
            return torch.sigmoid(self.head(cls.float()))
        with torch.autocast(device_type=cls.device.type, enabled=False):
            return torch.sigmoid(self.head(cls.float()))  # (N, L)
