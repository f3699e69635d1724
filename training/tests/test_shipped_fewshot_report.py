"""shipped_fewshot_report: the README report is the runs' own rows, renamed, or nothing."""

import copy
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))

import shipped_fewshot_report as sfr  # noqa: E402
from scaling_results import PIXELS_FEATURE, PIXELS_RUN  # noqa: E402

TRANSFORM = {"resize_shorter_side": 73, "center_crop": 64, "mean": [0.485, 0.456, 0.406]}
SETTINGS = {"protocol": "p", "method": "logreg", "pooling": "mean", "normalize": True, "preprocess_resize": 72,
            "shots": [1, 16], "seeds": [0, 1, 2]}


def benchmark_report(feature: str, sha: str | None, acc: float) -> dict:
    rows = [{"shots": 16, "acc1_mean": acc, "acc1_std": 1.0}]
    return {**copy.deepcopy(SETTINGS), "generated_at": f"2026-12-0{int(acc) % 9 + 1}T00:00:00Z",
            "command": f"benchmark {feature}", "pixel_baseline": "16x16x3 pixels",
            "models": {} if sha is None else {feature: {"encoder_sha256": sha, "method": "m", "config": "c"}},
            "datasets": [{"name": name, "path": f"/data/{name}", "split": "seeded stratified split (test fraction 0.2, seed 0)",
                          "classes": ["a", "b"], "train_pool": 10, "test_images": 4,
                          "max_test_per_class": 100000, "results": {feature: copy.deepcopy(rows)}}
                         for name in ("imagewoof", "cifar10")]}


def write_manifest(bundle: Path, sha: str, transform: dict = TRANSFORM) -> None:
    bundle.mkdir(parents=True, exist_ok=True)
    (bundle / "manifest.json").write_text(json.dumps({"graphs": {"encoder": {"sha256": sha}},
                                                      "eval_transform": transform}))


def setup(tmp_path: Path, shipped: dict[str, str]) -> tuple[Path, Path]:
    """Shipped bundles in models/, the runs' results in results/ (the pixel rows pooled from run-c's inputs, as
    evaluate_scaling_runs.py writes them) and the bundles the results measured in runs/<run>/bundle/<run>/."""
    models, results, runs = tmp_path / "models", tmp_path / "results", tmp_path / "runs"
    for bundle, sha in shipped.items():
        write_manifest(models / bundle, sha)
    for run, sha, acc in (("run-c", "aa", 30.0), ("run-m", "bb", 31.0)):
        (results / run).mkdir(parents=True)
        (results / run / "fewshot.json").write_text(json.dumps(benchmark_report(run, sha, acc)))
        write_manifest(runs / run / "bundle" / run, sha)
    (results / PIXELS_RUN).mkdir(parents=True)
    pixels = benchmark_report(PIXELS_FEATURE, None, 20.0)
    pixels["models"] = {"run-c": {"encoder_sha256": "aa", "method": "m", "config": "c"}}
    (results / PIXELS_RUN / "fewshot.json").write_text(json.dumps(pixels))
    return models, results


def run_tool(models: Path, results: Path, out: Path) -> int:
    return sfr.main(["--models-dir", str(models), "--results-dir", str(results), "--out", str(out),
                     "--runs-dir", str(models.parent / "runs"), "--run", "clmae-b=run-c", "--run", "mae-b=run-m"])


def test_the_runs_rows_under_the_bundle_names(tmp_path):
    models, results = setup(tmp_path, {"clmae-b": "aa", "mae-b": "bb"})
    out = tmp_path / "fewshot.json"
    assert run_tool(models, results, out) == 0
    report = json.loads(out.read_text())
    assert set(report["models"]) == {"clmae-b", "mae-b"}
    assert report["models"]["clmae-b"]["encoder_sha256"] == "aa"
    for d in report["datasets"]:
        assert d["results"]["clmae-b"][0]["acc1_mean"] == 30.0
        assert d["results"]["mae-b"][0]["acc1_mean"] == 31.0
        assert d["results"][PIXELS_FEATURE][0]["acc1_mean"] == 20.0
        assert set(d["results"]) == {"clmae-b", "mae-b", PIXELS_FEATURE}
    assert {k: report[k] for k in SETTINGS} == SETTINGS
    assert "`" not in report["command"]  # quoted in backticks by the benchmark's Markdown


def test_refused_when_a_shipped_encoder_is_not_the_graph_measured(tmp_path, capsys):
    models, results = setup(tmp_path, {"clmae-b": "aa", "mae-b": "other"})
    out = tmp_path / "fewshot.json"
    assert run_tool(models, results, out) == 3
    assert "mae-b's encoder" in capsys.readouterr().err
    assert not out.exists()


def test_refused_when_the_reports_differ_in_settings_or_data(tmp_path, capsys):
    models, results = setup(tmp_path, {"clmae-b": "aa", "mae-b": "bb"})
    path = results / "run-m" / "fewshot.json"
    original = path.read_text()
    report = json.loads(original)
    report["seeds"] = [0]
    path.write_text(json.dumps(report))
    assert run_tool(models, results, tmp_path / "a.json") == 3
    assert "'seeds'" in capsys.readouterr().err

    report = json.loads(original)
    report["datasets"][1]["test_images"] = 3  # a subset of the test split
    path.write_text(json.dumps(report))
    assert run_tool(models, results, tmp_path / "b.json") == 3
    assert "other data sets or splits" in capsys.readouterr().err

    path.write_text(original)
    pixels = results / PIXELS_RUN / "fewshot.json"
    report = json.loads(pixels.read_text())
    report["preprocess_resize"] = 64
    pixels.write_text(json.dumps(report))
    assert run_tool(models, results, tmp_path / "c.json") == 3
    assert "'preprocess_resize'" in capsys.readouterr().err


def test_refused_when_a_split_differs_with_the_same_counts(tmp_path, capsys):
    # Another split seed draws another test set of the same size: the rows would not share a test set.
    models, results = setup(tmp_path, {"clmae-b": "aa", "mae-b": "bb"})
    pixels = results / PIXELS_RUN / "fewshot.json"
    report = json.loads(pixels.read_text())
    report["datasets"][1]["split"] = "seeded stratified split (test fraction 0.2, seed 1)"
    pixels.write_text(json.dumps(report))
    assert run_tool(models, results, tmp_path / "a.json") == 3
    assert "other data sets or splits" in capsys.readouterr().err


def test_refused_when_a_shipped_bundle_preprocesses_otherwise_than_measured(tmp_path, capsys):
    # Same encoder bytes, another eval transform (the manifest's, not the graph's): other inputs, other numbers.
    models, results = setup(tmp_path, {"clmae-b": "aa", "mae-b": "bb"})
    write_manifest(models / "mae-b", "bb", {**TRANSFORM, "resize_shorter_side": 72})
    assert run_tool(models, results, tmp_path / "a.json") == 3
    assert "mae-b preprocesses with" in capsys.readouterr().err


def test_refused_when_the_pixel_rows_were_pooled_from_other_inputs(tmp_path, capsys):
    models, results = setup(tmp_path, {"clmae-b": "aa", "mae-b": "bb"})
    runs = tmp_path / "runs"
    write_manifest(runs / "run-c" / "bundle" / "run-c", "aa", {**TRANSFORM, "center_crop": 48})
    assert run_tool(models, results, tmp_path / "a.json") == 3
    assert "preprocesses with" in capsys.readouterr().err

    # The bundle the pixels came from was exported again (or removed): its transform then is unknown.
    write_manifest(runs / "run-c" / "bundle" / "run-c", "cc")
    assert run_tool(models, results, tmp_path / "b.json") == 3
    assert "exported again" in capsys.readouterr().err
    (runs / "run-c" / "bundle" / "run-c" / "manifest.json").unlink()
    assert run_tool(models, results, tmp_path / "c.json") == 3
    assert "is gone" in capsys.readouterr().err
    assert not any((tmp_path / n).exists() for n in ("a.json", "b.json", "c.json"))
