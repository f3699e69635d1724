"""Spec 6.4 items 1 and 3: top-K on 1 - noise reproduces MAE's random masks; mask conventions."""

import torch

from clmae import losses
from clmae.selection import num_kept, select_random, select_topk


def _noise(n, num_patches, seed=0):
    # multiples of 1/1024: distinct values for which 1 - noise is exact, so no ties appear
    gen = torch.Generator().manual_seed(seed)
    return torch.stack([torch.randperm(1024, generator=gen)[:num_patches] for _ in range(n)]).float() / 1024


def test_num_kept_floors():
    assert num_kept(196, 0.75) == 49
    assert num_kept(64, 0.75) == 16
    assert num_kept(64, 0.9) == 6
    assert num_kept(10, 0.99) == 1


def test_topk_of_one_minus_noise_equals_random_masking():
    noise = _noise(4, 64)
    k = 16
    a, b = select_random(noise, k), select_topk(1.0 - noise, k)
    for x, y in zip(a, b):
        assert torch.equal(x, y)
    pred, target = torch.randn(4, 64, 12), torch.randn(4, 64, 12)
    assert losses.masked_mse(pred, target, a[2]) == losses.masked_mse(pred, target, b[2])


def test_mask_matches_scatter_and_counts():
    noise = _noise(3, 64, seed=1)
    k = 16
    ids_keep, ids_restore, mask = select_random(noise, k)
    ids_shuffle = torch.argsort(noise, dim=1)
    scattered = torch.ones(3, 64)
    scattered[:, :k] = 0
    scattered = torch.gather(scattered, 1, torch.argsort(ids_shuffle, dim=1))  # MAE's un-shuffle of the mask
    assert torch.equal(mask, scattered)
    assert mask.sum().item() == 3 * (64 - k)
    assert torch.equal(torch.gather(ids_shuffle, 1, ids_restore), torch.arange(64).expand(3, -1))
    assert torch.all(torch.gather(mask, 1, ids_keep) == 0)  # kept patches are 0 (1 = removed)


def test_topk_keeps_highest_scores_ties_to_lower_index():
    scores = torch.tensor([[0.1, 0.9, 0.5, 0.5, 0.2]])
    ids_keep, _, mask = select_topk(scores, 2)
    assert ids_keep.tolist() == [[1, 2]]
    assert mask.tolist() == [[1.0, 0.0, 0.0, 1.0, 1.0]]
