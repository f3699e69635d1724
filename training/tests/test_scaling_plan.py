"""tools/scaling_plan.py: which runs are still to do (the projection itself needs a benchmark run: not here)."""

import json
import sys
from pathlib import Path

import torch

from clmae import checkpoint as ckpt

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
import scaling_plan  # noqa: E402


def test_epochs_done_is_the_checkpoints_position_not_the_logs_epoch_records(tmp_path):
    """A run stopped between an epoch's log record and its checkpoint logs that epoch twice; one stopped
    after the last epoch's record but before its checkpoint has not finished. Both must be resumed."""
    assert scaling_plan.epochs_done(tmp_path) == 0  # not started
    epochs = [0, 1, 1, 2]  # epoch 1 logged twice, epoch 2 (the last of 3) logged, its checkpoint never written
    (tmp_path / "log.jsonl").write_text("".join(json.dumps({"type": "epoch", "epoch": e}) + "\n" for e in epochs))
    ckpt.save_atomic({"position": {"epoch": 2, "iter": 40}, "mae": {"w": torch.zeros(1)}}, tmp_path / "checkpoint.pt")
    assert scaling_plan.epochs_done(tmp_path) == 2
