"""Per-epoch monitoring metrics."""

import math

import torch

from clmae.configs import get_config
from clmae.mae import build_models
from clmae.monitor import evaluate_masks, mean_pairwise_iou


def test_pairwise_iou_literal():
    kept = torch.tensor([[1, 1, 0, 0], [1, 0, 1, 0], [1, 1, 0, 0]])
    # pairs: (0,1) 1/3, (0,2) 1, (1,2) 1/3
    assert mean_pairwise_iou(kept) == (1 / 3 + 1 + 1 / 3) / 3 or abs(mean_pairwise_iou(kept) - 5 / 9) < 1e-6
    assert math.isnan(mean_pairwise_iou(kept[:1]))


def test_evaluate_masks_keys():
    torch.manual_seed(0)
    config = get_config("vit_micro_p4_16")
    images = torch.randn(5, 3, 16, 16)
    mae, masking = build_models(config, "clmae")
    metrics, keep_scores = evaluate_masks(mae, masking, images, mask_ratio=0.75)
    assert set(metrics) == {"recon_random", "recon_learned", "keep_score_mean", "mask_iou_mean"}
    assert keep_scores.shape == (5, 16)
    assert 0.0 <= metrics["mask_iou_mean"] <= 1.0
    mae_only, none = evaluate_masks(mae, None, images, mask_ratio=0.75)
    assert set(mae_only) == {"recon_random"} and none is None
    assert mae_only["recon_random"] == metrics["recon_random"]  # the random mask is seeded (fixed)
