"""Spec 6.4 item 2: the 2-D sin-cos table."""

import math

import torch

from clmae.pos_embed import sincos_1d, sincos_2d


def test_cls_row_is_zero_and_shape():
    table = sincos_2d(64, 4, cls_token=True)
    assert table.shape == (1 + 16, 64)
    assert torch.count_nonzero(table[0]) == 0


def test_first_half_column_second_half_row():
    d, g = 32, 5
    table = sincos_2d(d, g, cls_token=False).reshape(g, g, d)  # (row, col, D)
    for r in range(g):
        assert torch.allclose(table[r, :, : d // 2], table[0, :, : d // 2])  # first half: column only
    for c in range(g):
        assert torch.allclose(table[:, c, d // 2:], table[:, 0, d // 2:])  # second half: row only
    assert not torch.allclose(table[0, 1, : d // 2], table[0, 0, : d // 2])
    assert not torch.allclose(table[1, 0, d // 2:], table[0, 0, d // 2:])


def test_origin_values_sin_then_cos():
    d = 32
    table = sincos_2d(d, 3, cls_token=False)
    assert table[0, 0].item() == 0.0  # sin(0)
    assert table[0, d // 4].item() == 1.0  # cos(0)


def test_1d_literal_values():
    emb = sincos_1d(4, torch.tensor([1.0]))  # omega = [1, 1/100]
    expected = torch.tensor([[math.sin(1.0), math.sin(0.01), math.cos(1.0), math.cos(0.01)]], dtype=torch.float64)
    assert torch.allclose(emb, expected)
