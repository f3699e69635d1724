"""Schedules as tables of the global step (style rule 5): resuming restores one integer.

lr: linear warm-up from 0, then half-cycle cosine to min_lr, set every iteration from the fractional
epoch (MAE util/lr_sched.py). Curriculum factor: set once per epoch (spec 3.3).
"""

from __future__ import annotations

import math

CURRICULA = ("linear", "partner", "adversary", "off")


def lr_at(step: int, *, iters_per_epoch: int, epochs: int, warmup_epochs: float, lr: float,
          min_lr: float = 0.0) -> float:
    """Learning rate at global iteration `step` (fractional epoch = step / iters_per_epoch)."""
    epoch = step / iters_per_epoch
    if epoch < warmup_epochs:
        return lr * epoch / warmup_epochs
    span = max(epochs - warmup_epochs, 1e-12)
    return min_lr + (lr - min_lr) * 0.5 * (1.0 + math.cos(math.pi * (epoch - warmup_epochs) / span))


def lr_table(*, iters_per_epoch: int, epochs: int, warmup_epochs: float, lr: float, min_lr: float = 0.0) -> list[float]:
    """lr for every global iteration of the run, length epochs * iters_per_epoch."""
    return [lr_at(s, iters_per_epoch=iters_per_epoch, epochs=epochs, warmup_epochs=warmup_epochs, lr=lr,
                  min_lr=min_lr) for s in range(epochs * iters_per_epoch)]


def curriculum_factor(epoch: int, epochs: int, curriculum: str = "linear") -> float:
    """lambda(e) for 0-based epoch e of E (spec 3.3).

    linear: 1 - 2e/E for e < E/2, else 1 - 2(e+1)/E (+1 first epoch, -1 last, skips 0 for even E);
    partner: +1; adversary: -1; off: 0 (only the regularisers train the masking module).
    """
    if curriculum == "linear":
        return 1.0 - 2.0 * epoch / epochs if epoch < epochs / 2 else 1.0 - 2.0 * (epoch + 1) / epochs
    if curriculum == "partner":
        return 1.0
    if curriculum == "adversary":
        return -1.0
    if curriculum == "off":
        return 0.0
    raise ValueError(f"unknown curriculum {curriculum!r}; valid: {', '.join(CURRICULA)}")


def curriculum_table(epochs: int, curriculum: str = "linear") -> list[float]:
    """lambda(e) for every epoch of the run."""
    return [curriculum_factor(e, epochs, curriculum) for e in range(epochs)]
