"""Spec 3.3's curriculum table and the lr schedule."""

import math

import pytest

from clmae.schedules import curriculum_factor, curriculum_table, lr_at, lr_table


@pytest.mark.parametrize("epochs, mid", [(200, 0.01), (800, 0.0025)])
def test_curriculum_table(epochs, mid):
    table = curriculum_table(epochs)
    assert table[0] == 1.0
    assert table[epochs // 2 - 1] == pytest.approx(mid)
    assert table[epochs // 2] == pytest.approx(-mid)
    assert table[-1] == pytest.approx(-1.0)
    assert 0.0 not in table  # even E skips exactly 0
    assert all(a > b for a, b in zip(table, table[1:]))


def test_curriculum_constants_and_unknown():
    assert curriculum_table(4, "partner") == [1.0] * 4
    assert curriculum_table(4, "adversary") == [-1.0] * 4
    assert curriculum_table(4, "off") == [0.0] * 4
    with pytest.raises(ValueError, match="valid"):
        curriculum_factor(0, 4, "sideways")


def test_lr_warmup_then_cosine():
    table = lr_table(iters_per_epoch=10, epochs=10, warmup_epochs=2, lr=1.0)
    assert len(table) == 100
    assert table[0] == 0.0
    assert table[10] == pytest.approx(0.5)  # half-way through warm-up
    assert table[20] == pytest.approx(1.0)  # peak
    assert table[60] == pytest.approx(0.5)  # half-way through the cosine
    assert table[-1] == pytest.approx(0.5 * (1 + math.cos(math.pi * 7.9 / 8)))
    assert lr_at(100, iters_per_epoch=10, epochs=10, warmup_epochs=2, lr=1.0) == pytest.approx(0.0)
