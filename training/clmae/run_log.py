"""Progress bar and the JSON-lines metrics log of a run (main process only)."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

from tqdm import tqdm


def _clean(value):
    """JSON-safe value: non-finite floats become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


class RunLog:
    """Appends one JSON object per line to <output-dir>/log.jsonl; no-op off the main process."""

    def __init__(self, path: str | os.PathLike, enabled: bool = True) -> None:
        self.path = Path(path)
        self.enabled = enabled
        if enabled:
            self.path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, record: dict) -> None:
        if not self.enabled:
            return
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(_clean(record), sort_keys=False) + "\n")
            f.flush()


class Progress:
    """tqdm bar over one epoch showing loss, curriculum factor, kept ratio and images/s."""

    def __init__(self, *, epoch: int, epochs: int, total: int, initial: int, enabled: bool) -> None:
        self.bar = tqdm(total=total, initial=initial, desc=f"epoch {epoch + 1}/{epochs}", disable=not enabled,
                        dynamic_ncols=True, leave=True)

    def update(self, metrics: dict, images_per_second: float) -> None:
        post = {"loss": f"{metrics.get('loss_mae', float('nan')):.4f}",
                "lambda": f"{metrics.get('curriculum_factor', 0.0):+.3f}"}
        if "keep_score_mean" in metrics:
            post["kept"] = f"{metrics['keep_score_mean']:.3f}"
        post["img/s"] = f"{images_per_second:.1f}"
        self.bar.set_postfix(post, refresh=False)
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()
