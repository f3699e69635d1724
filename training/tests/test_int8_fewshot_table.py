"""The int8 few-shot comparison pairs each variant with its fp32 source's rows, and only comparable ones."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))

import int8_fewshot_table as tool  # noqa: E402

SETTINGS = {"protocol": "p", "method": "logreg", "pooling": "mean", "normalize": True,
            "preprocess_resize": "sharp", "shots": [1, 2], "seeds": [0, 1, 2]}


def dataset(name: str, results: dict[str, list[float]], test_images: int = 100) -> dict:
    return {"name": name, "path": f"/data/{name}", "split": "s", "classes": ["a", "b"], "train_pool": 10,
            "test_images": test_images, "max_test_per_class": 100000,
            "results": {model: [{"shots": n, "acc1": {"mean": acc, "std": 0.0}} for n, acc in zip((1, 2), accs)]
                        for model, accs in results.items()}}


def write(tmp_path: Path, name: str, datasets: list[dict], **overrides) -> Path:
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps({**SETTINGS, **overrides, "datasets": datasets}))
    return path


def test_source_names():
    assert tool.source_of("m-int8") == "m"
    assert tool.source_of("m-int8-static-fullrange") == "m"
    assert tool.source_of("m") is None
    assert tool.source_of("m-int8x") is None


def test_pairs_variants_across_reports_and_judges_the_bar(tmp_path, capsys):
    base = write(tmp_path, "base", [dataset("woof", {"m": [0.20, 0.30], "m-int8": [0.205, 0.29]})])
    other = write(tmp_path, "other", [dataset("woof", {"m-int8-static": [0.20, 0.32]})])
    assert tool.main(["--report", str(base), "--report", str(other)]) == 1  # static is 2 points off
    out = capsys.readouterr().out
    assert "| woof | m-int8 | 20.0 / 20.5 (+0.50) | 30.0 / 29.0 (-1.00) |" in out
    assert "m-int8: largest |difference| 1.00 points Acc@1, within 1" in out
    assert "m-int8-static: largest |difference| 2.00 points Acc@1, NOT within 1" in out
    assert tool.main(["--report", str(base), "--report", str(other), "--variant", "m-int8"]) == 0
    assert "m-int8-static" not in capsys.readouterr().out


def test_refuses_rows_that_cannot_be_paired(tmp_path, capsys):
    base = write(tmp_path, "base", [dataset("woof", {"m": [0.2, 0.3]})])
    other_test_set = write(tmp_path, "t", [dataset("woof", {"m-int8": [0.2, 0.3]}, test_images=99)])
    other_settings = write(tmp_path, "s", [dataset("woof", {"m-int8": [0.2, 0.3]})], preprocess_resize="pillow")
    no_source = write(tmp_path, "n", [dataset("woof", {"z-int8": [0.2, 0.3]})])
    for path in (other_test_set, other_settings, no_source):
        assert tool.main(["--report", str(base), "--report", str(path)]) == 3
    assert tool.main(["--report", str(base)]) == 3  # no int8 rows at all
    ok = write(tmp_path, "ok", [dataset("woof", {"m-int8": [0.2, 0.3]})])
    assert tool.main(["--report", str(base), "--report", str(ok), "--variant", "m-int8-static"]) == 3
    assert "refused" in capsys.readouterr().err


@pytest.mark.parametrize("shots", [[0.2], [0.2, 0.3, 0.4]])
def test_refuses_other_shot_counts(tmp_path, shots):
    base = write(tmp_path, "base", [dataset("woof", {"m": [0.2, 0.3]})])
    bad = dataset("woof", {})
    bad["results"]["m-int8"] = [{"shots": n, "acc1": {"mean": acc, "std": 0}} for n, acc in zip((1, 2, 4), shots)]
    assert tool.main(["--report", str(base), "--report", str(write(tmp_path, "bad", [bad]))]) == 3
