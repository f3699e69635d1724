"""tools/evaluate_scaling_runs.py: which bundle and which result belong to a finished run (no benchmark run here)."""

import json
import sys
from pathlib import Path

import torch

from clmae import checkpoint as ckpt
from clmae import export

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
import evaluate_scaling_runs as ev  # noqa: E402


def test_a_bundle_of_an_earlier_training_in_the_same_folder_is_exported_again(tmp_path, monkeypatch):
    run = tmp_path / "scaling-clmae-vit-mini-p8-64-28224"
    bundle = run / "bundle" / run.name
    bundle.mkdir(parents=True)
    exported = []
    monkeypatch.setattr(export, "main", lambda argv: exported.append(argv))  # the export itself is tested elsewhere

    def train(wall: float) -> None:
        ckpt.save_atomic({"position": {"epoch": 3, "iter": 0}, "wall_time_seconds": wall,
                          "mae": {"w": torch.zeros(1)}}, run / "checkpoint.pt")

    def bundle_of(wall: float) -> None:
        (bundle / "manifest.json").write_text(json.dumps({"training": {"epochs": 3, "wall_time_seconds": wall}}))

    train(1234.5)
    bundle_of(1234.5)
    assert ev.ensure_bundle(run, 3) == bundle and exported == []  # the bundle of this checkpoint: kept
    train(987.25)  # the folder trained again (same epochs): the old bundle is stale
    ev.ensure_bundle(run, 3)
    assert len(exported) == 1 and exported[0][:2] == ["--checkpoint", str(run / "checkpoint.pt")]
