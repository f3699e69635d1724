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


def _assert_same_state(a, b, where: str) -> None:
    """Nested state dicts (module or optimizer) hold equal tensors and values everywhere."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for key in a:
            _assert_same_state(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_same_state(x, y, f"{where}[{i}]")
    else:
        assert a == b, where


@pytest.mark.parametrize("method,pipeline", [("clmae", "files"), ("mae", "files"), ("clmae", "memory")])
def test_stop_and_resume_matches_uninterrupted(synthetic_folder, tmp_path, method, pipeline):
    args = [*FAST, "--method", method, "--data", str(synthetic_folder), "--epochs", "2", "--limit-images", "48",
            "--data-pipeline", pipeline]
    main([*args, "--output-dir", str(tmp_path / "a")])
    for stop in ("2", "3", "100"):  # stops mid-epoch 0, then mid-epoch 1, then finishes
        main([*args, "--output-dir", str(tmp_path / "b"), "--stop-after-iters", stop])
    keys = ("epoch", "iter", "loss_mae", "loss_masking", "lr", "curriculum_factor")
    a = [tuple(r.get(k) for k in keys) for r in _records(tmp_path / "a", "iter")]
    b = [tuple(r.get(k) for k in keys) for r in _records(tmp_path / "b", "iter")]
    assert len(a) == 6 and a == b
    sa, sb = ckpt.load(tmp_path / "a" / "checkpoint.pt"), ckpt.load(tmp_path / "b" / "checkpoint.pt")
    assert sa["position"] == sb["position"] == {"epoch": 2, "iter": 0}
    for part in ("mae", "masking", "opt_mae", "opt_masking"):  # both models, both optimisers' moments and steps
        _assert_same_state(sa[part], sb[part], part)
    assert (sa["masking"] is None) == (method == "mae")
    assert sa["opt_mae"]["state"] and (method == "mae" or sa["opt_masking"]["state"])
    if method == "mae":
        assert not _records(tmp_path / "a", "monitor")[-1].keys() & {"recon_learned", "keep_score_mean"}
        assert not (tmp_path / "a" / "keep_scores").exists()


def test_resume_with_other_epochs_is_an_error(synthetic_folder, tmp_path):
    args = [*FAST, "--data", str(synthetic_folder), "--output-dir", str(tmp_path), "--limit-images", "16"]
    main([*args, "--epochs", "1"])
    with pytest.raises(ValueError, match="--epochs"):
        main([*args, "--epochs", "3"])
    with pytest.raises(ValueError, match="--lambda-kl was 0.1 in the checkpoint, now 0.2"):
        main([*args, "--epochs", "1", "--lambda-kl", "0.2"])


# One command-line change per RUN_DEFINING setting (world_size: a second process under torchrun).
BASE = ["--data", "unused", "--output-dir", "unused", "--epochs", "4"]
CHANGES = {
    "config": ["--config", "vit_mini_p8_64"], "method": ["--method", "mae"], "epochs": ["--epochs", "5"],
    "batch_size": ["--batch-size", "32"], "world_size": None, "seed": ["--seed", "1"],
    "limit_images": ["--limit-images", "100"], "blr": ["--blr", "1e-3"], "min_lr": ["--min-lr", "1e-6"],
    "warmup_epochs": ["--warmup-epochs", "2"], "weight_decay": ["--weight-decay", "0.1"],
    "faithful_ghost_updates": ["--faithful-ghost-updates"], "mask_ratio": ["--mask-ratio", "0.5"],
    "norm_pix": ["--no-norm-pix"], "curriculum": ["--curriculum", "partner"], "lambda_kl": ["--lambda-kl", "0"],
    "kl_reference_batch": ["--kl-reference-batch", "64"], "lambda_div": ["--lambda-div", "1"],
    "lambda_gauss": ["--lambda-gauss", "0.5"], "data_pipeline": ["--data-pipeline", "memory"],
    "load_size": ["--data-pipeline", "memory", "--load-size", "20"], "crop_scale": ["--crop-scale", "0.5", "1"],
    "model_config": None,  # the same config name, defined otherwise (a later version of configs.py)
}


def _resolved(extra, world_size=1, base=BASE):
    from clmae.distributed import DistInfo
    from clmae.train import build_parser, resolve_args

    info = DistInfo(rank=0, world_size=world_size, local_rank=0, device=torch.device("cpu"))
    return resolve_args(build_parser().parse_args([*FAST, *base, *extra]), info)


def test_every_run_defining_setting_has_a_refusal_test():
    from clmae.train import RUN_DEFINING

    assert set(CHANGES) == set(RUN_DEFINING)


@pytest.mark.parametrize("key", sorted(CHANGES))
def test_resume_refuses_a_changed_run_defining_setting(key):
    from clmae.train import check_resume_compatible

    # load_size is compared between two memory-pipeline runs (files-pipeline runs store none)
    base = BASE + (["--data-pipeline", "memory"] if key == "load_size" else [])
    saved = _resolved([], base=base)
    if key == "world_size":
        changed = _resolved([], world_size=2, base=base)
    elif key == "model_config":
        changed = _resolved([], base=base)
        changed["model_config"] = {**changed["model_config"], "num_heads": 4}  # same parameter shapes
    else:
        changed = _resolved(CHANGES[key], base=base)
    assert saved[key] != changed[key]
    check_resume_compatible(saved, _resolved([], base=base))  # unchanged: resumes
    with pytest.raises(ValueError, match=f"cannot resume: --{key.replace('_', '-')} was "):
        check_resume_compatible(saved, changed)


def test_checkpoints_from_before_a_setting_existed_resume_with_its_old_value():
    from clmae.train import check_resume_compatible

    saved = {k: v for k, v in _resolved([]).items() if k not in ("data_pipeline", "load_size", "crop_scale")}
    check_resume_compatible(saved, _resolved([]))  # files pipeline, crops 0.2-1: what those runs did
    with pytest.raises(ValueError, match="--data-pipeline was 'files'"):
        check_resume_compatible(saved, _resolved(["--data-pipeline", "memory"]))


def test_resume_refuses_other_training_images(tmp_path):
    """The same images under another path resume; one image fewer, or renamed, is refused (count, file list)."""
    import shutil

    from conftest import write_synthetic_images

    data = write_synthetic_images(tmp_path / "data", 16)
    args = [*FAST, "--output-dir", str(tmp_path / "run"), "--epochs", "1"]
    main([*args, "--data", str(data)])
    moved = shutil.copytree(data, tmp_path / "elsewhere" / "data")
    main([*args, "--data", str(moved)])  # same images, other folder: resumes (nothing left to train)
    fewer = shutil.copytree(data, tmp_path / "fewer")
    next(fewer.rglob("*.png")).unlink()
    with pytest.raises(ValueError, match="cannot resume: the checkpoint trained on 16 images .* now gives 15"):
        main([*args, "--data", str(fewer)])
    renamed = shutil.copytree(data, tmp_path / "renamed")
    first = next(renamed.rglob("*.png"))
    first.rename(first.with_name("other.png"))
    with pytest.raises(ValueError, match="cannot resume: the checkpoint trained on 16 images"):
        main([*args, "--data", str(renamed)])
    # A checkpoint from before the file-list digest is compared by count only.
    state = ckpt.load(tmp_path / "run" / "checkpoint.pt")
    del state["args"]["data_files_sha256"]
    ckpt.save_atomic(state, tmp_path / "run" / "checkpoint.pt")
    main([*args, "--data", str(renamed)])
    with pytest.raises(ValueError, match="now gives 15"):
        main([*args, "--data", str(fewer)])


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
