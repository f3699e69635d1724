"""tools/publish_scaling.py: a run is published only from the checkpoint its few-shot result was measured on."""

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
import publish_scaling  # noqa: E402

RUN = "scaling-mae-vit-mini-p8-64-254016"


def write_bundle(folder: Path, sha: str, wall: float) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "manifest.json").write_text(json.dumps({"graphs": {"encoder": {"sha256": sha}},
                                                      "training": {"epochs": 27, "wall_time_seconds": wall}}))
    return folder


def test_a_run_is_published_only_from_the_checkpoint_its_result_measured(tmp_path, capsys):
    runs, results = tmp_path / "runs", tmp_path / "results"
    (results / RUN).mkdir(parents=True)
    (results / RUN / "fewshot.json").write_text(json.dumps({"models": {RUN: {"encoder_sha256": "a" * 64}}}))
    evaluated = runs / RUN / "bundle" / RUN

    def refused(staged: Path) -> str:
        with pytest.raises(SystemExit) as exit_:
            publish_scaling.check_export(staged, RUN, results, runs)
        assert exit_.value.code == 3
        return capsys.readouterr().err

    # The same checkpoint, exported now from other paths (stack-trace metadata): other bytes, still published.
    write_bundle(evaluated, "a" * 64, 5000.25)
    staged = write_bundle(tmp_path / "stage" / "mae-vit-mini-p8-64", "c" * 64, 5000.25)
    assert "re-exported" in publish_scaling.check_export(staged, RUN, results, runs)
    # The checkpoint was trained again after its evaluation.
    assert "its checkpoint changed since it was evaluated" in refused(write_bundle(staged, "c" * 64, 7000.0))
    # The result is not the evaluated bundle's (a stale result), or the evaluated bundle is gone.
    write_bundle(evaluated, "b" * 64, 7000.0)
    assert "its few-shot result measured encoder aaaaaaaaaaaaaaaa" in refused(staged)
    (evaluated / "manifest.json").unlink()
    assert "is gone" in refused(staged)
