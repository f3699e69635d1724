"""Fixed 2-D sin-cos position embeddings (spec 1.3), built in float64 and returned as float32."""

from __future__ import annotations

import torch


def sincos_1d(embed_dim: int, positions: torch.Tensor) -> torch.Tensor:
    """positions (M,) -> (M, embed_dim): [sin(pos * w_k) ..., cos(pos * w_k) ...], w_k = 10000^(-k / (embed_dim/2))."""
    assert embed_dim % 2 == 0, "sin-cos embedding width must be even"
    omega = torch.arange(embed_dim // 2, dtype=torch.float64) / (embed_dim / 2.0)
    omega = 1.0 / 10000 ** omega  # (embed_dim/2,)
    angles = positions.to(torch.float64)[:, None] * omega[None, :]  # (M, embed_dim/2)
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)


def sincos_2d(embed_dim: int, grid_size: int, cls_token: bool = True) -> torch.Tensor:
    """Table (1 + L, D) if cls_token else (L, D), L = grid_size**2, token t = row * grid_size + col.

    The first D/2 channels encode the column, the last D/2 the row; the cls row is all zeros.
    """
    assert embed_dim % 4 == 0, "2-D sin-cos embedding width must be divisible by 4"
    coords = torch.arange(grid_size, dtype=torch.float64)
    rows, cols = torch.meshgrid(coords, coords, indexing="ij")  # (g, g) each
    emb_col = sincos_1d(embed_dim // 2, cols.reshape(-1))  # (L, D/2)
    emb_row = sincos_1d(embed_dim // 2, rows.reshape(-1))  # (L, D/2)
    table = torch.cat([emb_col, emb_row], dim=1)  # (L, D)
    if cls_token:
        table = torch.cat([torch.zeros(1, embed_dim, dtype=torch.float64), table], dim=0)  # (1+L, D)
    return table.to(torch.float32)
