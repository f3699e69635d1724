"""README's int8 few-shot tables: each int8 variant's Acc@1 beside its fp32 source's, from the benchmark JSON.

    .venv/bin/python training/tools/int8_fewshot_table.py --models-dir runs/int8/models \\
        --report runs/int8/fewshot/clmae-vit-mini-p8-64.json --report runs/int8/fewshot/static.json \\
        [--variant clmae-vit-mini-p8-64-int8-static ...]

scripts/quantize-default-models.sh measure writes the reports (src/cli/fewshot-benchmark.ts's JSON) and the
bundles they measured (--models-dir). A model whose manifest has a `quantization` object is an int8 variant;
its fp32 source is the one that object names, and its rows are paired with that source's rows only when the
reports measured exactly those graphs (the variant's encoder sha256 is its manifest's, the source rows'
encoder sha256 is the one the variant was quantised from: a report left over from other weights is refused),
on the same data sets, test sets, shot counts and protocol settings. Anything else exits 3.
Prints one Markdown row per (data set, variant): `fp32 / int8 (difference)` Acc@1 in % per shot count, each a
mean over the seeds (the bar applies to that mean), then each variant's largest |difference| against
--max-points (issue 15's bar: 1 point). Exits 1 when a tabled variant misses it, 0 when all are within.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

# what must agree between reports for their rows to sit in one table: the published-table tool's own lists
from shipped_fewshot_report import DATASET_FIELDS, SETTINGS  # noqa: E402

EPS = 1e-9  # Acc@1 means are fractions: x100 leaves float noise at the bar itself


class Refused(Exception):
    """The reports cannot be compared row by row."""


class Reports:
    """Every row of the reports by (data set, model), with the encoder sha256 each model was measured with."""

    def __init__(self, paths: list[Path]):
        self.rows: dict[tuple[str, str], list[dict]] = {}
        self.encoder: dict[str, str] = {}
        settings: dict | None = None
        datasets: dict[str, dict] = {}
        for path in paths:
            report = json.loads(path.read_text())
            mine = {key: report.get(key) for key in SETTINGS}
            if settings is None:
                settings = mine
            elif mine != settings:
                raise Refused(f"{path}: settings {mine} differ from the first report's {settings}")
            for model, info in report["models"].items():
                if self.encoder.setdefault(model, info["encoder_sha256"]) != info["encoder_sha256"]:
                    raise Refused(f"{path}: {model} was measured with another encoder in another report")
            for dataset in report["datasets"]:
                fields = {key: dataset.get(key) for key in DATASET_FIELDS}
                if datasets.setdefault(dataset["name"], fields) != fields:
                    raise Refused(f"{path}: data set {dataset['name']} was measured on another test set or split")
                for model, cells in dataset["results"].items():
                    if model not in report["models"]:
                        raise Refused(f"{path}: {model} has results but no encoder in the report's models")
                    if self.rows.setdefault((dataset["name"], model), cells) != cells:
                        raise Refused(f"{path}: {model} on {dataset['name']} has other results in another report")
        if settings is None:
            raise Refused("no report given")

    def datasets_of(self, model: str) -> list[str]:
        return [dataset for dataset, name in self.rows if name == model]


def source_of(models_dir: Path, model: str, reports: Reports) -> str | None:
    """The fp32 source an int8 variant's manifest names, after checking both were measured as shipped; None
    for a model without `quantization`."""
    path = models_dir / model / "manifest.json"
    if not path.is_file():
        raise Refused(f"{model}: no manifest at {path}")
    manifest = json.loads(path.read_text())
    quantization = manifest.get("quantization")
    if not quantization:
        return None
    source = quantization["source"]["name"]
    if reports.encoder.get(model) != manifest["graphs"]["encoder"]["sha256"]:
        raise Refused(f"{model}: the reports measured another encoder than {path}'s")
    if source not in reports.encoder:
        raise Refused(f"{model}: no rows of its fp32 source {source} in the reports")
    if reports.encoder[source] != quantization["source"]["sha256"]["encoder"]:
        raise Refused(f"{model}: the reports' {source} rows were measured on other weights than it was quantised from")
    return source


def acc1_by_shots(cells: list[dict]) -> dict[int, float]:
    by_shots = {cell["shots"]: cell["acc1"]["mean"] * 100 for cell in cells}
    if not all(math.isfinite(value) for value in by_shots.values()):  # max(0.0, nan) is 0.0: a NaN would pass
        raise Refused("an Acc@1 mean that is not a finite number")
    return by_shots


def within(points: float, max_points: float) -> bool:
    return points <= max_points + EPS


def table(reports: Reports, models_dir: Path, max_points: float,
          variants: list[str] | None = None) -> tuple[list[str], dict[str, float]]:
    """Markdown lines and the largest |difference| (points) per int8 variant (those named, else all)."""
    pairs: list[tuple[str, str, str]] = []  # (data set, variant, source)
    for model in reports.encoder:
        if variants and model not in variants:
            continue
        source = source_of(models_dir, model, reports)
        if source is None:
            continue
        mine, theirs = reports.datasets_of(model), reports.datasets_of(source)
        if sorted(mine) != sorted(theirs):
            raise Refused(f"{model}: measured on {sorted(mine)}, its source {source} on {sorted(theirs)}")
        pairs += [(dataset, model, source) for dataset in mine]
    if not pairs:
        raise Refused("no int8 rows in the reports")
    missing = sorted(set(variants or []) - {model for _, model, _ in pairs})
    if missing:
        raise Refused(f"no rows of {', '.join(missing)} in the reports")
    shots = sorted(acc1_by_shots(reports.rows[pairs[0][:2]]))
    lines = ["| data set | int8 variant | " + " | ".join(f"{n}-shot" for n in shots) + " |",
             "|---|---|" + "---|" * len(shots)]
    worst: dict[str, float] = {}
    for dataset, model, source in pairs:
        fp32, int8 = acc1_by_shots(reports.rows[(dataset, source)]), acc1_by_shots(reports.rows[(dataset, model)])
        if sorted(fp32) != shots or sorted(int8) != shots:
            raise Refused(f"{model} on {dataset}: other shot counts than {shots}")
        parts = []
        for n in shots:
            diff = int8[n] - fp32[n]
            worst[model] = max(worst.get(model, 0.0), abs(diff))
            parts.append(f"{fp32[n]:.1f} / {int8[n]:.1f} ({diff:+.2f})")
        lines.append(f"| {dataset} | {model} | " + " | ".join(parts) + " |")
    lines.append("")
    for model, points in worst.items():
        verdict = "within" if within(points, max_points) else "NOT within"
        lines.append(f"- {model}: largest |difference| {points:.2f} points Acc@1, {verdict} {max_points:g}")
    return lines, worst


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--report", type=Path, action="append", required=True, help="fewshot-benchmark JSON (repeat)")
    parser.add_argument("--models-dir", type=Path, required=True, help="the bundles the reports measured")
    parser.add_argument("--variant", action="append", help="table only these int8 models (repeat; default: all)")
    parser.add_argument("--max-points", type=float, default=1.0, help="largest |int8 - fp32| Acc@1 allowed, in points")
    args = parser.parse_args(argv)
    try:
        lines, worst = table(Reports(args.report), args.models_dir, args.max_points, args.variant)
    except (Refused, KeyError, TypeError, ValueError, AttributeError, OSError) as refusal:  # malformed: a refusal, not a verdict
        print(f"int8_fewshot_table: refused: {refusal!r}", file=sys.stderr)
        return 3
    print("\n".join(lines))
    return 0 if all(within(points, args.max_points) for points in worst.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
