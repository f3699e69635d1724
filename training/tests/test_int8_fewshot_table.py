"""The int8 few-shot comparison pairs each variant with the rows of the fp32 source it was quantised from, and
only comparable ones; anything it cannot pair is a refusal (exit 3), never a verdict."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))

import int8_fewshot_table as tool  # noqa: E402

SETTINGS = {"protocol": "p", "method": "logreg", "pooling": "mean", "normalize": True,
            "preprocess_resize": "sharp", "shots": [1, 2], "seeds": [0, 1, 2]}
SHA = {"m": "fp32-a", "m-int8": "int8-a", "m-int8-static": "int8-b"}


def bundles(tmp_path: Path, source_sha: str = "fp32-a") -> Path:
    models = tmp_path / "models"
    (models / "m").mkdir(parents=True)
    (models / "m" / "manifest.json").write_text(json.dumps({"graphs": {"encoder": {"sha256": SHA["m"]}}}))
    for variant in ("m-int8", "m-int8-static"):
        (models / variant).mkdir()
        (models / variant / "manifest.json").write_text(json.dumps({
            "graphs": {"encoder": {"sha256": SHA[variant]}},
            "quantization": {"source": {"name": "m", "sha256": {"encoder": source_sha}}}}))
    return models


def dataset(name: str, results: dict[str, list[float]], test_images: int = 100) -> dict:
    return {"name": name, "path": f"/data/{name}", "split": "s", "classes": ["a", "b"], "train_pool": 10,
            "test_images": test_images, "max_test_per_class": 100000,
            "results": {model: [{"shots": n, "acc1": {"mean": acc, "std": 0.0}} for n, acc in zip((1, 2), accs)]
                        for model, accs in results.items()}}


def write(tmp_path: Path, name: str, datasets: list[dict], sha: dict | None = None, **overrides) -> Path:
    models = {m for d in datasets for m in d["results"]}
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps({**SETTINGS, **overrides, "datasets": datasets,
                                "models": {m: {"encoder_sha256": (sha or SHA)[m]} for m in models}}))
    return path


def run(models: Path, *reports: Path, extra: tuple[str, ...] = ()) -> int:
    return tool.main(["--models-dir", str(models), *[a for r in reports for a in ("--report", str(r))], *extra])


def test_pairs_variants_across_reports_and_judges_the_bar(tmp_path, capsys):
    models = bundles(tmp_path)
    base = write(tmp_path, "base", [dataset("woof", {"m": [0.20, 0.30], "m-int8": [0.205, 0.29]})])
    other = write(tmp_path, "other", [dataset("woof", {"m-int8-static": [0.20, 0.32]})])
    assert run(models, base, other) == 1  # static is 2 points off
    out = capsys.readouterr().out
    assert "| woof | m-int8 | 20.0 / 20.5 (+0.50) | 30.0 / 29.0 (-1.00) |" in out
    assert "m-int8: largest |difference| 1.00 points Acc@1, within 1" in out  # -1.0000000000000036 is at the bar
    assert "m-int8-static: largest |difference| 2.00 points Acc@1, NOT within 1" in out
    assert run(models, base, other, extra=("--variant", "m-int8")) == 0
    assert "m-int8-static" not in capsys.readouterr().out


def test_refuses_rows_that_cannot_be_paired(tmp_path, capsys):
    models = bundles(tmp_path)
    base = write(tmp_path, "base", [dataset("woof", {"m": [0.2, 0.3]})])
    refused = {
        "other test set": write(tmp_path, "t", [dataset("woof", {"m-int8": [0.2, 0.3]}, test_images=99)]),
        "other settings": write(tmp_path, "s", [dataset("woof", {"m-int8": [0.2, 0.3]})], preprocess_resize="pillow"),
        "other fp32 results": write(tmp_path, "r", [dataset("woof", {"m": [0.2, 0.4], "m-int8": [0.2, 0.3]})]),
        "variant on fewer data sets": write(tmp_path, "d", [dataset("woof", {"m-int8": [0.2, 0.3]}),
                                                            dataset("bark", {"m": [0.2, 0.3]})]),
        "another int8 encoder": write(tmp_path, "e", [dataset("woof", {"m-int8": [0.2, 0.3]})],
                                      sha={**SHA, "m-int8": "int8-old"}),
        "no manifest": write(tmp_path, "x", [dataset("woof", {"z": [0.2, 0.3]})], sha={"z": "z"}),
        "a list, not a report": tmp_path / "list.json",
        "not JSON": tmp_path / "broken.json",
        "missing file": tmp_path / "absent.json",
    }
    refused["not JSON"].write_text("{")
    refused["a list, not a report"].write_text("[]")
    nan = json.loads(write(tmp_path, "n", [dataset("woof", {"m-int8": [0.2, 0.3]})]).read_text())
    nan["datasets"][0]["results"]["m-int8"][1]["acc1"]["mean"] = float("nan")
    refused["a NaN Acc@1"] = tmp_path / "nan.json"
    refused["a NaN Acc@1"].write_text(json.dumps(nan))
    for why, path in refused.items():
        assert run(models, base, path) == 3, why
    assert run(models, base) == 3  # no int8 rows at all
    ok = write(tmp_path, "ok", [dataset("woof", {"m-int8": [0.2, 0.3]})])
    assert run(models, base, ok) == 0
    assert run(models, base, ok, extra=("--variant", "m-int8-static")) == 3
    assert "refused" in capsys.readouterr().err


def test_refuses_fp32_rows_of_other_weights(tmp_path):
    """A report left from the weights before a retrain has the fp32 name but not the encoder quantised."""
    models = bundles(tmp_path, source_sha="fp32-new")
    report = write(tmp_path, "stale", [dataset("woof", {"m": [0.2, 0.3], "m-int8": [0.2, 0.3]})])
    assert run(models, report) == 3


def test_refuses_rows_of_a_model_without_its_encoder(tmp_path):
    """fp32 rows whose report does not say which encoder produced them cannot vouch for anything."""
    models = bundles(tmp_path)
    listed = write(tmp_path, "listed", [dataset("woof", {"m": [0.2, 0.3], "m-int8": [0.2, 0.3]})])
    unlisted = json.loads(write(tmp_path, "u", [dataset("bark", {"m": [0.5, 0.6], "m-int8": [0.2, 0.3]})]).read_text())
    del unlisted["models"]["m"]
    (tmp_path / "unlisted.json").write_text(json.dumps(unlisted))
    assert run(models, listed) == 0
    assert run(models, listed, tmp_path / "unlisted.json") == 3


def test_refuses_one_model_measured_with_two_encoders(tmp_path):
    """Current fp32 rows listed first must not vouch for a stale report's rows of the same name."""
    models = bundles(tmp_path)
    current = write(tmp_path, "current", [dataset("bark", {"m": [0.2, 0.3], "m-int8": [0.2, 0.3]})])
    stale = write(tmp_path, "stale", [dataset("woof", {"m": [0.2, 0.3], "m-int8": [0.2, 0.3]})],
                  sha={**SHA, "m": "fp32-old"})
    assert run(models, current, stale) == 3
    assert run(models, current) == 0


@pytest.mark.parametrize("shots", [[0.2], [0.2, 0.3, 0.4]])
def test_refuses_other_shot_counts(tmp_path, shots):
    models = bundles(tmp_path)
    base = write(tmp_path, "base", [dataset("woof", {"m": [0.2, 0.3]})])
    bad = dataset("woof", {})
    bad["results"]["m-int8"] = [{"shots": n, "acc1": {"mean": acc, "std": 0}} for n, acc in zip((1, 2, 4), shots)]
    assert run(models, base, write(tmp_path, "bad", [bad])) == 3
