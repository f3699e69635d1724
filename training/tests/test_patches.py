"""Patch layout (token t = row * cols + col; pixel-row, pixel-col, channel inside) and the norm-pix target."""

import torch

from clmae.patches import build_target, patchify, unpatchify


def test_roundtrip():
    images = torch.randn(2, 3, 16, 16)
    assert torch.equal(unpatchify(patchify(images, 4), 4), images)


def test_layout_row_major_channel_last():
    images = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).reshape(2, 3, 8, 8)
    patches = patchify(images, 4)  # (2, 4, 48)
    assert patches.shape == (2, 4, 48)
    n, row, col, pr, pc, ch = 1, 1, 0, 2, 3, 1
    t = row * 2 + col
    assert patches[n, t, (pr * 4 + pc) * 3 + ch] == images[n, ch, row * 4 + pr, col * 4 + pc]


def test_norm_pix_target_unbiased():
    images = torch.randn(2, 3, 8, 8)
    target = build_target(images, 4, norm_pix=True, eps=0.0)
    assert torch.allclose(target.mean(-1), torch.zeros(2, 4), atol=1e-5)
    assert torch.allclose(target.var(-1, unbiased=True), torch.ones(2, 4), atol=1e-4)
    assert torch.equal(build_target(images, 4, norm_pix=False), patchify(images, 4))
