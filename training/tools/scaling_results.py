"""The scaling curve's committed results (issue 16) and the comparisons the model card states about them.

Reads models/runs/scaling-<method>-<config>-<images>/ (log.jsonl and config.json copied by
`scripts/train-scaling-curve.sh logs`, fewshot.json written by `scripts/evaluate-scaling-runs.sh`) and the
pixel baseline models/runs/scaling-pixels-16x16/fewshot.json. Pure functions of those files: no plotting,
no markdown (training/tools/model_card.py renders), so that the comparison rules are tested on their own
(training/tests/test_scaling_results.py).

Rules, fixed before any result was read:
- a difference is "beyond the seeds' std" when |mean_a - mean_b| > max(std_a, std_b) (sample std over the
  seeded runs), the rule the card already used for the shipped models;
- wins, losses and ties count every (data set, shot count, Acc@1/Acc@5) cell; ties are |diff| <= 1e-9;
- the goal (issue 16): 16-shot Acc@1 at least GOAL_MARGINS points above the 16x16x3 pixel baseline.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

METHODS = ("clmae", "mae")
# scripts/train-scaling-curve.sh's budgets (24,576 / 98,304 / 245,760 images at least) rounded up to whole
# epochs of 9,408 images (all of Imagenette train, batch 64, drop_last): the points the curve should have.
PLANNED_IMAGES_SEEN = (28_224, 103_488, 254_016)
PIXELS_RUN = "scaling-pixels-16x16"
PIXELS_FEATURE = "pixels-16x16"
# Issue 16's goal, in Acc@1 percentage points over the pixel baseline at 16 shots.
GOAL_MARGINS = {"sport_balls": 10.0, "cifar10": 10.0, "imagewoof": 4.0}
GOAL_SHOTS = 16
# The rest of the protocol, as a benchmark report records it (tools/evaluate_scaling_runs.py passes these flags).
PROTOCOL = {"method": "logreg", "pooling": "mean", "normalize": True, "seeds": [0, 1, 2]}
TIE = 1e-9

_RUN_NAME = re.compile(r"^scaling-(clmae|mae)-(.+)-(\d+)$")


def run_name(method: str, config: str, images_seen: int) -> str:
    """The run folder's name (as tools/scaling_plan.py names it)."""
    return f"scaling-{method}-{config.replace('_', '-')}-{images_seen}"


def parse_run_name(name: str) -> tuple[str, str, int] | None:
    """'scaling-clmae-vit-mini-p8-64-28224' -> ('clmae', 'vit-mini-p8-64', 28224); None for other names."""
    m = _RUN_NAME.match(name)
    return (m.group(1), m.group(2), int(m.group(3))) if m else None


@dataclass
class ScalingRun:
    """One run's committed state."""

    name: str
    method: str
    config: str
    images_seen: int
    epochs_planned: int | None  # None when config.json is not committed yet
    epochs_done: int
    fewshot: dict | None = None  # the benchmark report, when evaluated
    log: dict[str, list[dict]] = field(default_factory=dict)

    @property
    def finished(self) -> bool:
        return self.epochs_planned is not None and self.epochs_done >= self.epochs_planned

    def state(self) -> str:
        if self.fewshot is not None and self.finished:
            return "finished, evaluated"
        if self.finished:
            return "finished, not evaluated yet (scripts/evaluate-scaling-runs.sh)"
        if self.epochs_planned is None:
            return "not yet trained"
        return f"training: {self.epochs_done} of {self.epochs_planned} epochs logged"


def read_log(path: Path) -> dict[str, list[dict]]:
    """log.jsonl -> records grouped by type; a half-written last line (a run writing now) is skipped."""
    records: dict[str, list[dict]] = {}
    for line in path.read_text().splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        records.setdefault(rec.get("type", "?"), []).append(rec)
    return records


def read_runs(runs_dir: Path) -> list[ScalingRun]:
    """Every committed scaling run under runs_dir (models/runs), sorted by budget then method."""
    runs = []
    for d in sorted(runs_dir.glob("scaling-*")):
        parsed = parse_run_name(d.name)
        if parsed is None or not d.is_dir():
            continue
        method, config, images = parsed
        log = read_log(d / "log.jsonl") if (d / "log.jsonl").is_file() else {}
        cfg = json.loads((d / "config.json").read_text()) if (d / "config.json").is_file() else None
        epochs_done = len({r["epoch"] for r in log.get("epoch", [])})
        fewshot = json.loads((d / "fewshot.json").read_text()) if (d / "fewshot.json").is_file() else None
        runs.append(ScalingRun(name=d.name, method=method, config=config, images_seen=images,
                               epochs_planned=cfg["epochs"] if cfg else None, epochs_done=epochs_done,
                               fewshot=fewshot, log=log))
    return sorted(runs, key=lambda r: (r.images_seen, METHODS.index(r.method)))


def budgets(runs: list[ScalingRun]) -> list[int]:
    """The planned budgets and any other budget that has a committed run, ascending."""
    return sorted(set(PLANNED_IMAGES_SEEN) | {r.images_seen for r in runs})


def by_budget(runs: list[ScalingRun]) -> dict[int, dict[str, ScalingRun]]:
    out: dict[int, dict[str, ScalingRun]] = {}
    for r in runs:
        out.setdefault(r.images_seen, {})[r.method] = r
    return out


def evaluated_budgets(runs: list[ScalingRun]) -> list[int]:
    """Budgets whose runs of both methods are finished and evaluated, ascending."""
    return [b for b, pair in sorted(by_budget(runs).items())
            if all(m in pair and pair[m].finished and pair[m].fewshot is not None for m in METHODS)]


# ---------------------------------------------------------------------------------------------------------------
# reading one feature's rows out of a benchmark report


def feature_rows(report: dict, feature: str | None = None) -> dict[str, dict[int, dict]]:
    """-> {data set: {shots: row}} of one feature (default: the report's only model).

    A row is the benchmark's ShotResult: {"shots", "acc1": {"mean", "std", "runs"}, "acc5": {...}}.
    """
    if feature is None:
        models = list(report["models"])
        if len(models) != 1:
            raise ValueError(f"the report has models {models}: name the feature to read")
        feature = models[0]
    return {d["name"]: {row["shots"]: row for row in d["results"][feature]}
            for d in report["datasets"] if feature in d["results"]}


def accuracy(rows: dict[str, dict[int, dict]], dataset: str, shots: int = GOAL_SHOTS,
             metric: str = "acc1") -> tuple[float, float] | None:
    """(mean, std) in percent, or None when that cell was not measured."""
    row = rows.get(dataset, {}).get(shots)
    if row is None:
        return None
    return 100 * row[metric]["mean"], 100 * row[metric]["std"]


# ---------------------------------------------------------------------------------------------------------------
# CL-MAE vs MAE


@dataclass(frozen=True)
class Cell:
    dataset: str
    shots: int
    metric: str
    diff: float  # CL-MAE minus MAE, percentage points
    beyond_std: bool


@dataclass
class Comparison:
    cells: list[Cell]

    @property
    def total(self) -> int:
        return len(self.cells)

    @property
    def wins(self) -> list[Cell]:
        return [c for c in self.cells if c.diff > 100 * TIE]

    @property
    def losses(self) -> list[Cell]:
        return [c for c in self.cells if c.diff < -100 * TIE]

    @property
    def ties(self) -> list[Cell]:
        return [c for c in self.cells if abs(c.diff) <= 100 * TIE]

    @property
    def clear_wins(self) -> list[Cell]:
        return [c for c in self.wins if c.beyond_std]

    @property
    def clear_losses(self) -> list[Cell]:
        return [c for c in self.losses if c.beyond_std]


def compare_methods(clmae: dict[str, dict[int, dict]], mae: dict[str, dict[int, dict]]) -> Comparison:
    """Every (data set, shots, Acc@1/Acc@5) cell that both measured: CL-MAE - MAE and whether it is beyond
    the larger of the two seed stds."""
    cells = []
    for dataset, rows in clmae.items():
        for shots, a in sorted(rows.items()):
            b = mae.get(dataset, {}).get(shots)
            if b is None:
                continue
            for metric in ("acc1", "acc5"):
                diff = a[metric]["mean"] - b[metric]["mean"]
                beyond = abs(diff) > max(a[metric]["std"], b[metric]["std"])
                cells.append(Cell(dataset, shots, metric, 100 * diff, beyond))
    return Comparison(cells)


# ---------------------------------------------------------------------------------------------------------------
# the goal: beat raw pixels


@dataclass(frozen=True)
class GoalRow:
    dataset: str
    model_acc: float | None  # 16-shot Acc@1, %
    pixel_acc: float | None
    required: float  # points over pixels

    @property
    def margin(self) -> float | None:
        return None if self.model_acc is None or self.pixel_acc is None else self.model_acc - self.pixel_acc

    @property
    def met(self) -> bool | None:
        return None if self.margin is None else self.margin >= self.required

    @property
    def gap(self) -> float | None:
        """Points above the requirement (>= 0: met by that much; < 0: missed by -gap)."""
        return None if self.margin is None else self.margin - self.required


def goal_check(model: dict[str, dict[int, dict]], pixels: dict[str, dict[int, dict]],
               margins: dict[str, float] = GOAL_MARGINS, shots: int = GOAL_SHOTS) -> list[GoalRow]:
    """One row per goal data set: the model's and the pixels' 16-shot Acc@1 and the required margin."""
    rows = []
    for dataset, required in margins.items():
        m, p = accuracy(model, dataset, shots), accuracy(pixels, dataset, shots)
        rows.append(GoalRow(dataset, m[0] if m else None, p[0] if p else None, required))
    return rows


def protocol_problems(report: dict) -> list[str]:
    """How a benchmark report departs from issue 16's protocol (empty when it follows it): the probe, pooling,
    normalisation, the 3 seeds, a 16-shot cell, and every test image of each data set."""
    problems = [f"{key} {report.get(key)!r} instead of {value!r}" for key, value in PROTOCOL.items()
                if report.get(key) != value]
    if GOAL_SHOTS not in report.get("shots", []):
        problems.append(f"no {GOAL_SHOTS}-shot cell")
    for d in report.get("datasets", []):
        if "test_images" not in d or d.get("max_test_per_class", 0) < d["test_images"]:
            problems.append(f"{d['name']}: at most {d.get('max_test_per_class')} test images per class, "
                            f"not every one of {d.get('test_images')}")
    return problems


def comparison_problems(model_report: dict, pixel_report: dict) -> list[str]:
    """Why a model's goal check against a pixel baseline would not be issue 16's (empty when it would be)."""
    problems = protocol_problems(model_report)
    problems += [f"pixel baseline: {p}" for p in protocol_problems(pixel_report) if pixel_report is not model_report]
    if model_report.get("preprocess_resize") != pixel_report.get("preprocess_resize"):
        problems.append(f"preprocessed with {model_report.get('preprocess_resize')}, the pixel baseline with "
                        f"{pixel_report.get('preprocess_resize')}")
    return problems


def goal_met(rows: list[GoalRow]) -> bool | None:
    """True when every data set meets its margin, False when one misses, None when one is not measured."""
    if any(r.met is None for r in rows):
        return None
    return all(r.met for r in rows)


def read_pixels(runs_dir: Path) -> dict | None:
    path = runs_dir / PIXELS_RUN / "fewshot.json"
    return json.loads(path.read_text()) if path.is_file() else None
