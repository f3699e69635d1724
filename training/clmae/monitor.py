"""Per-epoch monitoring on a fixed batch of held-out images (issue item 6).

Records what a model card needs and cannot recover later: the masked reconstruction error under the
learned top-K mask and under a random mask of the same ratio, the mean kept ratio (mean keep score),
and the mean pairwise IoU of the top-K kept sets across the images.
"""

from __future__ import annotations

import torch
from torch import nn

from clmae import losses
from clmae.selection import num_kept, select_random, select_topk


def mean_pairwise_iou(kept: torch.Tensor) -> float:
    """kept (N, L) 0/1 -> mean IoU of the kept sets over pairs i < j (nan for N < 2)."""
    n = kept.shape[0]
    if n < 2:
        return float("nan")
    kept = kept.float()
    inter = kept @ kept.T  # (N, N)
    sizes = kept.sum(dim=1)
    union = sizes[:, None] + sizes[None, :] - inter
    iu = torch.triu_indices(n, n, offset=1)
    return (inter[iu[0], iu[1]] / union[iu[0], iu[1]].clamp_min(1e-12)).mean().item()


@torch.no_grad()
def evaluate_masks(mae: nn.Module, masking: nn.Module | None, images: torch.Tensor, *, mask_ratio: float,
                   seed: int = 0) -> tuple[dict, torch.Tensor | None]:
    """images (N, 3, H, W) -> (metrics, keep_scores (N, L) or None). The random mask is seeded (fixed)."""
    was_training = mae.training
    mae.eval()
    n, num_patches = images.shape[0], mae.config.num_patches
    k = num_kept(num_patches, mask_ratio)
    tokens = mae.forward_tokens(images)  # (N, L, D)
    target = mae.forward_target(images)  # (N, L, p*p*3)

    def recon_error(ids_keep: torch.Tensor, ids_restore: torch.Tensor, mask: torch.Tensor) -> float:
        pred = mae.forward_decoder(mae.forward_encoder(tokens, ids_keep), ids_restore)
        return losses.masked_mse(pred, target, mask).item()

    noise = torch.rand(n, num_patches, generator=torch.Generator().manual_seed(seed)).to(images.device)
    metrics = {"recon_random": recon_error(*select_random(noise, k))}
    keep_scores = None
    if masking is not None:
        masking_was_training = masking.training
        masking.eval()
        keep_scores = masking(tokens)  # (N, L)
        ids_keep, ids_restore, mask = select_topk(keep_scores, k)
        metrics["recon_learned"] = recon_error(ids_keep, ids_restore, mask)
        metrics["keep_score_mean"] = keep_scores.mean().item()
        metrics["mask_iou_mean"] = mean_pairwise_iou(1.0 - mask)
        masking.train(masking_was_training)
    mae.train(was_training)
    return metrics, keep_scores
