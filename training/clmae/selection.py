"""Turning scores or noise into masks (spec 1.4, 2.3, 2.4): pure functions, no randomness inside.

Mask convention: see patches.py (mask 1 = removed). K = floor(L * (1 - mask_ratio)).
"""

from __future__ import annotations

import math

import torch


def num_kept(num_patches: int, mask_ratio: float) -> int:
    """K = floor(L * (1 - r)), as MAE's int(); at least 1."""
    return max(1, int(math.floor(num_patches * (1.0 - mask_ratio) + 1e-9)))


def select_from_order(ids_shuffle: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """ids_shuffle (N, L) (patch ids, kept first) -> ids_keep (N, K), ids_restore (N, L), mask (N, L).

    ids_restore[n, t] = rank of patch t in ids_shuffle (scatter, no second sort); mask = ids_restore >= K.
    """
    n, num_patches = ids_shuffle.shape
    ranks = torch.arange(num_patches, device=ids_shuffle.device).expand(n, -1)  # (N, L)
    ids_restore = torch.empty_like(ids_shuffle).scatter_(1, ids_shuffle, ranks)  # (N, L)
    ids_keep = ids_shuffle[:, :k]  # (N, K)
    mask = (ids_restore >= k).float()  # (N, L), 1 = removed
    return ids_keep, ids_restore, mask


def select_topk(keep_scores: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Deterministic top-K (CL-MAE): keep the K highest keep_scores (N, L); ties go to the lower index."""
    ids_shuffle = torch.sort(keep_scores.detach(), dim=1, descending=True, stable=True).indices  # (N, L)
    return select_from_order(ids_shuffle, k)


def select_random(noise: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """MAE's random masking: keep the K smallest noise (N, L) values (noise is an input, not drawn here)."""
    ids_shuffle = torch.sort(noise, dim=1, stable=True).indices  # (N, L) ascending
    return select_from_order(ids_shuffle, k)


def gate_tokens(tokens: torch.Tensor, keep_scores: torch.Tensor) -> torch.Tensor:
    """Soft gating of the masking step: tokens (N, L, D) * keep_scores (N, L, 1) -> (N, L, D), all L kept."""
    return tokens * keep_scores.unsqueeze(-1).to(tokens.dtype)


def identity_restore(n: int, num_patches: int, device: torch.device) -> torch.Tensor:
    """ids_restore (N, L) = 0..L-1 for a full sequence in grid order (the soft path and embeddings)."""
    return torch.arange(num_patches, device=device).expand(n, -1)
