"""The scaling curve's comparison rules (training/tools/scaling_results.py) on small synthetic reports."""

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "training" / "tools"))
import scaling_results as sr  # noqa: E402


def row(shots: int, acc1: float, std1: float, acc5: float = 0.5, std5: float = 0.0) -> dict:
    return {"shots": shots, "acc1": {"mean": acc1, "std": std1, "runs": []}, "acc5": {"mean": acc5, "std": std5, "runs": []}}


def report(feature: str, cells: dict[str, list[dict]]) -> dict:
    return {"models": {feature: {"encoder_sha256": "0" * 64}} if not feature.startswith("pixels") else {},
            "datasets": [{"name": ds, "results": {feature: rows}} for ds, rows in cells.items()]}


def test_wins_losses_ties_and_beyond_std():
    clmae = sr.feature_rows(report("c", {"a": [row(1, 0.30, 0.01, 0.60, 0.05), row(16, 0.50, 0.02, 0.80, 0.01)]}))
    mae = sr.feature_rows(report("m", {"a": [row(1, 0.20, 0.02, 0.62, 0.01), row(16, 0.50, 0.01, 0.70, 0.12)]}))
    cmp = sr.compare_methods(clmae, mae)
    assert cmp.total == 4
    by = {(c.shots, c.metric): c for c in cmp.cells}
    # 1-shot Acc@1: +10 points, beyond max(1, 2) points of std; Acc@5: -2 points, within the 5-point std.
    assert by[(1, "acc1")].diff == pytest.approx(10.0) and by[(1, "acc1")].beyond_std
    assert by[(1, "acc5")].diff == pytest.approx(-2.0) and not by[(1, "acc5")].beyond_std
    # 16-shot Acc@1 is a tie; Acc@5 +10 points but MAE's std is 12: not beyond.
    assert by[(16, "acc1")] in cmp.ties
    assert not by[(16, "acc5")].beyond_std
    assert len(cmp.wins) == 2 and len(cmp.losses) == 1 and len(cmp.ties) == 1
    assert cmp.clear_wins == [by[(1, "acc1")]] and cmp.clear_losses == []


def test_a_clear_loss_is_counted_as_one():
    cmp = sr.compare_methods(sr.feature_rows(report("c", {"a": [row(16, 0.20, 0.01)]})),
                             sr.feature_rows(report("m", {"a": [row(16, 0.25, 0.02)]})))
    assert [c.metric for c in cmp.clear_losses] == ["acc1"]
    assert cmp.wins == [] and len(cmp.ties) == 1  # Acc@5 equal


def test_cells_only_one_method_measured_are_not_compared():
    cmp = sr.compare_methods(sr.feature_rows(report("c", {"a": [row(1, 0.3, 0.0)], "b": [row(1, 0.3, 0.0)]})),
                             sr.feature_rows(report("m", {"a": [row(1, 0.3, 0.0), row(2, 0.4, 0.0)]})))
    assert {(c.dataset, c.shots) for c in cmp.cells} == {("a", 1)}


def test_goal_check_met_missed_and_by_how_much():
    model = sr.feature_rows(report("c", {"sport_balls": [row(16, 0.30, 0.01)], "cifar10": [row(16, 0.33, 0.01)],
                                         "imagewoof": [row(16, 0.20, 0.01)]}))
    pixels = sr.feature_rows(report("pixels-16x16", {"sport_balls": [row(16, 0.158, 0.0)], "cifar10": [row(16, 0.25, 0.0)],
                                                     "imagewoof": [row(16, 0.16, 0.0)]}), "pixels-16x16")
    rows = {r.dataset: r for r in sr.goal_check(model, pixels)}
    assert rows["sport_balls"].margin == pytest.approx(14.2) and rows["sport_balls"].met
    assert rows["sport_balls"].gap == pytest.approx(4.2)
    assert rows["cifar10"].margin == pytest.approx(8.0) and rows["cifar10"].met is False
    assert rows["cifar10"].gap == pytest.approx(-2.0)  # missed by 2 points
    assert rows["imagewoof"].met and rows["imagewoof"].required == 4.0  # exactly 4 points: met
    assert sr.goal_met(list(rows.values())) is False


def test_goal_is_unknown_when_a_data_set_was_not_measured():
    model = sr.feature_rows(report("c", {"sport_balls": [row(16, 0.9, 0.0)]}))
    pixels = sr.feature_rows(report("pixels-16x16", {"sport_balls": [row(16, 0.1, 0.0)]}), "pixels-16x16")
    rows = sr.goal_check(model, pixels)
    assert [r.met for r in rows] == [True, None, None]
    assert sr.goal_met(rows) is None


def test_run_names_round_trip():
    name = sr.run_name("clmae", "vit_mini_p8_64", 28224)
    assert name == "scaling-clmae-vit-mini-p8-64-28224"
    assert sr.parse_run_name(name) == ("clmae", "vit-mini-p8-64", 28224)
    assert sr.parse_run_name(sr.PIXELS_RUN) is None


def test_read_runs_states_and_evaluated_budgets(tmp_path):
    def write_run(method: str, images: int, epochs: int, done: int, evaluated: bool, partial_line: bool = False):
        d = tmp_path / sr.run_name(method, "vit_mini_p8_64", images)
        d.mkdir()
        (d / "config.json").write_text(json.dumps({"epochs": epochs}))
        lines = [json.dumps({"type": "run"})] + [json.dumps({"type": "epoch", "epoch": e}) for e in range(done)]
        (d / "log.jsonl").write_text("\n".join(lines) + ("\n{\"type\": \"ep" if partial_line else "\n"))
        if evaluated:
            (d / "fewshot.json").write_text(json.dumps(report(d.name, {"a": [row(16, 0.3, 0.0)]})))

    write_run("clmae", 100, 2, 2, True)
    write_run("mae", 100, 2, 2, True)
    write_run("clmae", 300, 3, 1, False, partial_line=True)
    write_run("mae", 300, 3, 3, False)
    runs = sr.read_runs(tmp_path)
    assert [(r.images_seen, r.method) for r in runs] == [(100, "clmae"), (100, "mae"), (300, "clmae"), (300, "mae")]
    assert [r.state() for r in runs][2:] == ["training: 1 of 3 epochs logged",
                                             "finished, not evaluated yet (scripts/evaluate-scaling-runs.sh)"]
    assert sr.evaluated_budgets(runs) == [100]
    assert sr.budgets(runs) == sorted({100, 300, *sr.PLANNED_IMAGES_SEEN})


def protocol_report(**changes) -> dict:
    """A report as evaluate_scaling_runs.py's benchmark writes it, with `changes` applied."""
    body = {**sr.PROTOCOL, "shots": [1, 2, 4, 8, 16], "preprocess_resize": "sharp",
            "datasets": [{"name": "cifar10", "test_images": 2000, "max_test_per_class": 100000, "results": {}}]}
    body.update(changes)
    return body


def test_protocol_problems_name_each_departure():
    assert sr.protocol_problems(protocol_report()) == []
    assert sr.comparison_problems(protocol_report(), protocol_report()) == []
    assert sr.protocol_problems(protocol_report(method="knn", seeds=[0], shots=[1, 8])) == [
        "method 'knn' instead of 'logreg'", "seeds [0] instead of [0, 1, 2]", "no 16-shot cell"]
    capped = protocol_report(datasets=[{"name": "cifar10", "test_images": 2000, "max_test_per_class": 50}])
    assert sr.protocol_problems(capped) == ["cifar10: at most 50 test images per class, not every one of 2000"]
    assert sr.protocol_problems(protocol_report(normalize=False, pooling="cls")) == [
        "pooling 'cls' instead of 'mean'", "normalize False instead of True"]
    assert sr.comparison_problems(protocol_report(), protocol_report(preprocess_resize="pillow")) == [
        "preprocessed with sharp, the pixel baseline with pillow"]
    assert sr.comparison_problems(protocol_report(), capped) == [
        "pixel baseline: cifar10: at most 50 test images per class, not every one of 2000"]
