"""Losses of the two CL-MAE steps (spec 3): pure functions, computed in fp32.

Shapes: pred, target (N, L, p*p*3); mask (N, L) with 1 = removed; keep_scores (N, L) in (0, 1).
"""

from __future__ import annotations

import math

import torch

GAUSS_SIGMA = 0.12
# The official code divides by the Gaussian normaliser 1/(sigma*sqrt(2*pi)) instead of multiplying (spec A5).
GAUSS_SCALE = GAUSS_SIGMA * math.sqrt(2.0 * math.pi)  # ~0.3008
DIVERSITY_SCALE = 0.1
KL_CLAMP = 1e-6


def patch_errors(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """e (N, L): mean over the p*p*3 values of (pred - target)^2."""
    return ((pred.float() - target.float()) ** 2).mean(dim=-1)


def masked_mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """MAE loss (spec 1.7, 3.1): sum(mask * e) / sum(mask), a global mean over removed patches."""
    mask = mask.float()
    return (patch_errors(pred, target) * mask).sum() / mask.sum()


def weighted_reconstruction(pred: torch.Tensor, target: torch.Tensor, keep_scores: torch.Tensor) -> torch.Tensor:
    """Masking step (spec 3.2): sum((1 - m) * e) / sum(1 - m); gradients reach m through both sums."""
    weights = 1.0 - keep_scores.float()
    return (patch_errors(pred, target) * weights).sum() / weights.sum()


def gauss_binarisation(keep_scores: torch.Tensor) -> torch.Tensor:
    """Spec 3.4/A5: mean of 0.3008 * exp(-(m - 0.5)^2 / (2 * 0.12^2)); pushes scores to 0 or 1."""
    m = keep_scores.float()
    return (GAUSS_SCALE * torch.exp(-((m - 0.5) ** 2) / (2.0 * GAUSS_SIGMA ** 2))).mean()


def kl_ratio_per_image(keep_scores: torch.Tensor, target_keep: float) -> torch.Tensor:
    """Spec 3.5/A3: KL(Bernoulli(p_n) || Bernoulli(rho)) per image, (N,), p_n = mean_t m, rho = 1 - mask_ratio.

    p_n is clamped to [1e-6, 1 - 1e-6] so a saturated mean never gives NaN.
    """
    p = keep_scores.float().mean(dim=1).clamp(KL_CLAMP, 1.0 - KL_CLAMP)  # (N,)
    rho = float(target_keep)
    return p * torch.log(p / rho) + (1.0 - p) * torch.log((1.0 - p) / (1.0 - rho))


def kl_ratio(keep_scores: torch.Tensor, target_keep: float, reference_batch: int = 256) -> torch.Tensor:
    """The KL term at the official code's strength: mean over the batch x reference_batch.

    The official code sums over the per-GPU batch of 256; mean x 256 equals that sum at B = 256 and
    keeps the same strength at any other per-device batch (spec A3).
    """
    return kl_ratio_per_image(keep_scores, target_keep).mean() * reference_batch


def diversity(keep_scores: torch.Tensor) -> torch.Tensor:
    """Spec 3.6/A6: mean over pairs i < j of exp(-0.1 * ||m_i - m_j||_2); 0 when N = 1. Vectorised."""
    m = keep_scores.float()
    n = m.shape[0]
    if n < 2:
        return m.sum() * 0.0
    sq = (m.unsqueeze(1) - m.unsqueeze(0)).pow(2).sum(dim=-1)  # (N, N) squared distances
    dist = torch.sqrt(sq + 1e-12)  # the epsilon keeps the gradient finite at zero distance
    iu = torch.triu_indices(n, n, offset=1, device=m.device)
    return torch.exp(-DIVERSITY_SCALE * dist[iu[0], iu[1]]).mean()
