"""Every loss against literal values (spec 3)."""

import math

import pytest
import torch

from clmae import losses


def _scores_with_mean(p, n=1, num_patches=8):
    return torch.full((n, num_patches), p)


@pytest.mark.parametrize("p, expected", [(0.1, 0.0725), (0.4, 0.0541), (0.5, 0.1438), (0.25, 0.0)])
def test_kl_per_image_literal(p, expected):
    value = losses.kl_ratio_per_image(_scores_with_mean(p), 0.25).item()
    assert value == pytest.approx(expected, abs=2e-4)  # spec 3.5: 0.072, 0.054, 0.144


def test_kl_scaled_equals_official_sum_at_256_and_never_nan():
    scores = torch.rand(256, 16)
    per_image = losses.kl_ratio_per_image(scores, 0.25)
    assert losses.kl_ratio(scores, 0.25, 256).item() == pytest.approx(per_image.sum().item(), rel=1e-5)
    saturated = torch.cat([torch.zeros(1, 16), torch.ones(1, 16)])
    value = losses.kl_ratio(saturated, 0.25)
    assert torch.isfinite(value)
    saturated.requires_grad_(True)
    losses.kl_ratio(saturated, 0.25).backward()
    assert torch.isfinite(saturated.grad).all()


@pytest.mark.parametrize("m, expected", [(0.5, 0.3008), (0.25, 0.0346), (0.1, 0.00116), (0.0, 5.11e-5)])
def test_gauss_literal(m, expected):
    value = losses.gauss_binarisation(torch.full((2, 4), m)).item()
    assert value == pytest.approx(expected, rel=0.02)


def test_diversity_literal_and_single_image():
    a = torch.zeros(1, 196)
    b = torch.zeros(1, 196)
    b[0, :49] = 1.0  # differs in 49 positions: distance 7
    assert losses.diversity(torch.cat([a, b])).item() == pytest.approx(math.exp(-0.7), rel=1e-5)
    assert losses.diversity(a).item() == 0.0


def test_diversity_matches_double_loop_and_has_finite_grad_for_equal_rows():
    m = torch.rand(6, 10)
    m[3] = m[1]  # zero distance pair
    m.requires_grad_(True)
    loop = sum(math.exp(-0.1 * torch.dist(m[i], m[j]).item()) for i in range(6) for j in range(i + 1, 6)) / 15
    value = losses.diversity(m)
    assert value.item() == pytest.approx(loop, rel=1e-5)
    value.backward()
    assert torch.isfinite(m.grad).all()


def test_masked_mse_literal():
    pred = torch.zeros(1, 3, 2)
    target = torch.tensor([[[1.0, 1.0], [2.0, 2.0], [3.0, 3.0]]])
    mask = torch.tensor([[1.0, 0.0, 1.0]])
    assert losses.masked_mse(pred, target, mask).item() == pytest.approx((1.0 + 9.0) / 2)  # patch 1 kept: ignored


def test_weighted_reconstruction_literal():
    pred = torch.zeros(1, 2, 1)
    target = torch.tensor([[[1.0], [2.0]]])
    keep = torch.tensor([[0.75, 0.5]])  # weights 0.25, 0.5
    assert losses.weighted_reconstruction(pred, target, keep).item() == pytest.approx((0.25 * 1 + 0.5 * 4) / 0.75)
