"""The model card tool rebuilds its numbers and figures from the committed run logs (no ../shared needed)."""

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "training" / "tools"))
model_card = pytest.importorskip("model_card")


def test_card_is_rebuilt_from_the_committed_logs(tmp_path):
    run = model_card.shipped_runs()["clmae"]  # the run the shipped bundle's manifest names
    if not (ROOT / "models" / "runs" / run / "log.jsonl").exists():
        pytest.skip("no committed run logs")
    output = tmp_path / "README.md"
    model_card.main(["--output", str(output), "--card-dir", str(tmp_path / "card"), "--skip-readme"])
    card = output.read_text()
    assert "{" not in card.split("## Configuration")[1].split("## Training curves")[0]  # every placeholder filled
    numbers = json.loads((tmp_path / "card" / "numbers.json").read_text())
    # The card's headline figures are the committed logs' figures, not copies of them.
    monitor = [json.loads(line) for line in open(ROOT / "models" / "runs" / run / "log.jsonl")
               if '"type": "monitor"' in line]
    assert numbers["final_keep"] == f"{max(monitor, key=lambda m: m['epoch'])['keep_score_mean']:.3f}"
    for name in ("losses", "curriculum", "recon-learned-vs-random", "masks-over-training"):
        assert (tmp_path / "card" / f"{name}.png").stat().st_size > 1000
    # The committed card is what the tool writes today: refresh it with training/tools/model_card.py.
    committed = (ROOT / "models" / "README.md").read_text()
    assert committed == card, "models/README.md is stale: run .venv/bin/python training/tools/model_card.py"


def test_topk_mask_keeps_the_highest_scores():
    import numpy as np

    scores = np.array([[[0.9, 0.1], [0.5, 0.7]]])
    mask = model_card.topk_mask(scores, mask_ratio=0.5)
    assert mask.tolist() == [[[0.0, 1.0], [1.0, 0.0]]]
