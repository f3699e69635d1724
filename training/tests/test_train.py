"""End-to-end runs of the train CLI on synthetic images: learning, exact resume, atomic checkpoints."""

import json
from pathlib import Path

import pytest
import torch

from clmae import checkpoint as ckpt
from clmae.train import main

from conftest import MICRO

FAST = ["--config", MICRO, "--batch-size", "16", "--num-workers", "0", "--log-every", "1", "--eval-count", "8", "--threads", "1"]


def _records(run_dir: Path, kind: str) -> list[dict]:
    return [r for r in map(json.loads, (run_dir / "log.jsonl").read_text().splitlines()) if r["type"] == kind]


def test_tiny_run_learns_and_reaches_the_keep_ratio(synthetic_folder, tmp_path):
    out = tmp_path / "run"
    main([*FAST, "--data", str(synthetic_folder), "--output-dir", str(out), "--epochs", "12", "--blr", "2e-2",
          "--warmup-epochs", "1"])
    iters, epochs = _records(out, "iter"), _records(out, "epoch")
    assert len(epochs) == 12
    start, end = iters[0]["loss_mae"], epochs[-1]["mean_loss_mae"]
    assert end < 0.5 * start, (start, end)
    assert abs(epochs[-1]["mean_keep_score_mean"] - 0.25) < 0.05
    monitors = _records(out, "monitor")
    assert [m["epoch"] for m in monitors] == list(range(13))
    assert {"recon_learned", "recon_random", "keep_score_mean", "mask_iou_mean"} <= set(monitors[-1])
    scores = json.loads((out / "keep_scores" / "epoch_012.json").read_text())
    assert len(scores["keep_scores"]) == 8 and len(scores["keep_scores"][0]) == 16
    assert (out / "keep_scores" / "epoch_000.json").is_file()
    factors = [r["curriculum_factor"] for r in iters if r["iter"] == 1]
    assert factors[0] == 1.0 and factors[-1] == pytest.approx(-1.0)


@pytest.mark.parametrize("method", ["clmae", "mae"])
def test_stop_and_resume_matches_uninterrupted(synthetic_folder, tmp_path, method):
    args = [*FAST, "--method", method, "--data", str(synthetic_folder), "--epochs", "2", "--limit-images", "48"]
    main([*args, "--output-dir", str(tmp_path / "a")])
    for stop in ("2", "3", "100"):  # stops mid-epoch 0, then mid-epoch 1, then finishes
        main([*args, "--output-dir", str(tmp_path / "b"), "--stop-after-iters", stop])
    keys = ("epoch", "iter", "loss_mae", "loss_masking", "lr", "curriculum_factor")
    a = [tuple(r.get(k) for k in keys) for r in _records(tmp_path / "a", "iter")]
    b = [tuple(r.get(k) for k in keys) for r in _records(tmp_path / "b", "iter")]
    assert len(a) == 6 and a == b
    sa, sb = ckpt.load(tmp_path / "a" / "checkpoint.pt"), ckpt.load(tmp_path / "b" / "checkpoint.pt")
    assert sa["position"] == sb["position"] == {"epoch": 2, "iter": 0}
    for key, value in sa["mae"].items():
        assert torch.equal(value, sb["mae"][key]), key
    if method == "mae":
        assert not _records(tmp_path / "a", "monitor")[-1].keys() & {"recon_learned", "keep_score_mean"}
        assert not (tmp_path / "a" / "keep_scores").exists()


def test_resume_with_other_epochs_is_an_error(synthetic_folder, tmp_path):
    args = [*FAST, "--data", str(synthetic_folder), "--output-dir", str(tmp_path), "--limit-images", "16"]
    main([*args, "--epochs", "1"])
    with pytest.raises(ValueError, match="--epochs"):
        main([*args, "--epochs", "3"])


def test_crash_during_save_keeps_the_old_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "checkpoint.pt"
    ckpt.save_atomic({"position": 1, "weights": torch.ones(3)}, path)

    def crash(state, f):
        f.write(b"partial bytes")
        raise KeyboardInterrupt("killed mid-save")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(KeyboardInterrupt):
        ckpt.save_atomic({"position": 2, "weights": torch.zeros(3)}, path)
    monkeypatch.undo()
    state = ckpt.load(path)
    assert state["position"] == 1 and torch.equal(state["weights"], torch.ones(3))


def test_zero_epochs_writes_an_untrained_checkpoint(synthetic_folder, tmp_path):
    main([*FAST, "--data", str(synthetic_folder), "--output-dir", str(tmp_path), "--epochs", "0"])
    state = ckpt.load(tmp_path / "checkpoint.pt")
    assert state["position"] == {"epoch": 0, "iter": 0} and state["masking"] is not None


def test_empty_data_folder_fails_clearly(tmp_path):
    (tmp_path / "data").mkdir()
    with pytest.raises(ValueError, match="no images"):
        main([*FAST, "--data", str(tmp_path / "data"), "--output-dir", str(tmp_path / "run"), "--epochs", "1"])
