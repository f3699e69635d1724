"""The model card's issue-16 sections (training/tools/scaling_card.py) render what the files hold, and only that."""

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "training" / "tools"))
import scaling_card  # noqa: E402
import scaling_results as sr  # noqa: E402


def result(method: str, variant: str, ips: float, load: float = 0.5) -> dict:
    return {"method": method, "variant": variant, "images_per_second": ips, "cpu_ms_per_image": 1000 / ips,
            "load_average": load}


def throughput_file(tmp_path: Path, results: list[dict]) -> Path:
    path = tmp_path / "train-throughput.json"
    path.write_text(json.dumps({"cpu": "test CPU", "threads": 2, "torch": "x", "batch_size": 64, "config": "c",
                                "iters": 20, "warmup_iters": 3, "results": results}))
    return path


def test_throughput_before_and_after(tmp_path):
    path = throughput_file(tmp_path, [result("mae", "before", 10.0), result("clmae", "before", 4.0),
                                      result("mae", "memory", 25.0), result("clmae", "memory", 5.0)])
    text = scaling_card.throughput_section(path)
    memory = next(line for line in text.splitlines() if line.startswith("| memory"))
    assert "| 2.50x/1.25x |" in memory
    assert "busy machine" not in text


def test_throughput_on_a_busy_machine_says_so_and_missing_file_gives_the_command(tmp_path):
    path = throughput_file(tmp_path, [result("mae", "before", 10.0, load=7.9), result("clmae", "before", 4.0)])
    assert "busy machine" in scaling_card.throughput_section(path)
    missing = scaling_card.throughput_section(tmp_path / "nothing.json")
    assert "Not measured yet" in missing and "--json-out ../models/card/train-throughput.json" in missing


def row(shots, acc1):
    return {"shots": shots, "acc1": {"mean": acc1, "std": 0.01}, "acc5": {"mean": 0.9, "std": 0.01}}


def write_run(runs: Path, method: str, images: int, epochs: int, done: int, acc: float | None = None):
    d = runs / sr.run_name(method, "vit_mini_p8_64", images)
    d.mkdir(parents=True)
    (d / "config.json").write_text(json.dumps({"epochs": epochs}))
    recs = [{"type": "epoch", "epoch": e, "mean_curriculum_factor": 1 - 2 * e / max(epochs - 1, 1)} for e in range(done)]
    recs += [{"type": "monitor", "epoch": e, "recon_learned": 0.9, "recon_random": 1.0, "keep_score_mean": 0.25,
              "mask_iou_mean": 0.3} for e in range(done + 1)]
    (d / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    if acc is not None:
        (d / "fewshot.json").write_text(json.dumps({"models": {d.name: {}}, "datasets": [
            {"name": ds, "results": {d.name: [row(16, acc)]}} for ds in scaling_card.DATASET_ORDER]}))


def test_missing_budgets_are_not_invented(tmp_path):
    small = sr.PLANNED_IMAGES_SEEN[0]
    write_run(tmp_path, "clmae", small, 3, 3, acc=0.30)
    write_run(tmp_path, "mae", small, 3, 3, acc=0.28)
    write_run(tmp_path, "clmae", sr.PLANNED_IMAGES_SEEN[1], 11, 2)
    values = scaling_card.scaling_values(tmp_path, tmp_path, None, {}, lambda monitor, lambdas: f"{len(monitor)} rows")
    table = values["scaling_accuracy"].splitlines()
    assert f"| {small:,} | CL-MAE | 30.0±1.0 | 30.0±1.0 | 30.0±1.0 |" in table
    assert any(line.startswith(f"| {sr.PLANNED_IMAGES_SEEN[1]:,} | CL-MAE | training: 2 of 11 epochs logged") for line in table)
    assert f"| {sr.PLANNED_IMAGES_SEEN[2]:,} | MAE | not yet trained | not yet trained | not yet trained |" in table
    assert "+2.0" in values["scaling_comparison"]  # 16-shot Acc@1 difference of the evaluated budget, points
    # The curriculum comes from the largest budget with an epoch, and says it is not the largest planned one.
    cur = values["scaling_curriculum"]
    assert sr.run_name("clmae", "vit_mini_p8_64", sr.PLANNED_IMAGES_SEEN[1]) in cur
    assert "still training (2 of 11 epochs logged)" in cur and f"{sr.PLANNED_IMAGES_SEEN[2]:,} images, has none yet" in cur
    assert (tmp_path / "scaling-curve.png").stat().st_size > 1000


def protocol_report(models: dict[str, str], acc: dict[str, float], max_test: int = 100000) -> dict:
    """A benchmark report following issue 16's protocol: feature -> 16-shot Acc@1 on every goal data set."""
    return {**sr.PROTOCOL, "shots": [16], "preprocess_resize": "sharp",
            "models": {name: {"encoder_sha256": sha} for name, sha in models.items()},
            "datasets": [{"name": ds, "test_images": 1000, "max_test_per_class": max_test,
                          "results": {f: [row(16, a)] for f, a in acc.items()}} for ds in scaling_card.DATASET_ORDER]}


def test_goal_has_no_verdict_for_a_stale_readme_table_or_another_protocol(tmp_path):
    names = {"clmae": "clmae-bundle", "mae": "mae-bundle"}
    shipped = protocol_report({"clmae-bundle": "a" * 64, "mae-bundle": "b" * 64},
                              {"clmae-bundle": 0.5, "mae-bundle": 0.5, sr.PIXELS_FEATURE: 0.1})
    text = scaling_card.goal_section([], None, shipped, names, {"clmae": "a" * 64, "mae": "b" * 64})
    assert "| shipped `mae-bundle` | sport_balls | 50.0 | 10.0 | +40.0 |" in text
    assert "the shipped `mae-bundle`: meets the goal" in text
    # The bundles were replaced and the README table not measured again: no verdict on the old numbers.
    text = scaling_card.goal_section([], None, shipped, names, {"clmae": "a" * 64, "mae": "c" * 64})
    assert "| shipped `mae-bundle` | all | no verdict: the README table measured encoder bbbbbbbbbbbbbbbb" in text
    assert "the shipped `mae-bundle`" not in text and "the shipped `clmae-bundle`: meets the goal" in text
    # A run evaluated on 50 test images per class is not the protocol's goal check.
    small = sr.PLANNED_IMAGES_SEEN[0]
    for method in sr.METHODS:
        write_run(tmp_path, method, small, 3, 3)
        name = sr.run_name(method, "vit_mini_p8_64", small)
        (tmp_path / name / "fewshot.json").write_text(json.dumps(protocol_report({name: "d" * 64}, {name: 0.5},
                                                                                 max_test=50)))
    pixels = protocol_report({}, {sr.PIXELS_FEATURE: 0.1})
    runs = sr.read_runs(tmp_path)
    text = scaling_card.goal_section(runs, pixels, None, names)
    assert f"| MAE, {small:,} images | all | no verdict: imagewoof: at most 50 test images per class" in text
    assert "met, " not in text
