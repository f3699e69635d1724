"""Patch layout and the reconstruction target (spec 1.2, 1.7).

Mask convention (stated once, used everywhere): mask (N, L) with 1 = removed (hidden from the
encoder, reconstructed by the decoder), 0 = kept. keep_score (N, L) in (0, 1): high = keep.
Token order is row-major over the grid (t = row * cols + col); inside a patch the values are
ordered (pixel-row, pixel-col, channel), channel last.
"""

from __future__ import annotations

import torch


def patchify(images: torch.Tensor, patch_size: int) -> torch.Tensor:
    """images (N, 3, H, W) -> patches (N, L, p*p*3)."""
    n, c, h, w = images.shape
    p = patch_size
    assert h == w and h % p == 0, f"patchify needs a square image divisible by {p}, got {h}x{w}"
    g = h // p
    x = images.reshape(n, c, g, p, g, p)  # (N, 3, rows, p, cols, p)
    x = torch.einsum("nchpwq->nhwpqc", x)  # (N, rows, cols, p, p, 3)
    return x.reshape(n, g * g, p * p * c)


def unpatchify(patches: torch.Tensor, patch_size: int) -> torch.Tensor:
    """patches (N, L, p*p*3) -> images (N, 3, H, W); the exact inverse of patchify."""
    n, num_patches, _ = patches.shape
    p = patch_size
    g = int(round(num_patches ** 0.5))
    assert g * g == num_patches, f"unpatchify needs a square grid, got L={num_patches}"
    x = patches.reshape(n, g, g, p, p, 3)
    x = torch.einsum("nhwpqc->nchpwq", x)  # (N, 3, rows, p, cols, p)
    return x.reshape(n, 3, g * p, g * p)


def build_target(images: torch.Tensor, patch_size: int, norm_pix: bool, eps: float = 1e-6) -> torch.Tensor:
    """Training target (N, L, p*p*3) from normalised images (N, 3, H, W).

    With norm_pix each patch is standardised over its p*p*3 values: (x - mean) / sqrt(var + eps),
    var unbiased (MAE's forward_loss).
    """
    target = patchify(images.float(), patch_size)
    if norm_pix:
        mean = target.mean(dim=-1, keepdim=True)
        var = target.var(dim=-1, keepdim=True, unbiased=True)
        target = (target - mean) / (var + eps) ** 0.5
    return target
