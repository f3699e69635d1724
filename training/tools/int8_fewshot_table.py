"""README's int8 few-shot tables: each int8 variant's Acc@1 beside its fp32 source's, from the benchmark JSON.

    .venv/bin/python training/tools/int8_fewshot_table.py --report runs/int8/fewshot/clmae-vit-mini-p8-64.json \
        --report runs/int8/fewshot/static.json [--variant clmae-vit-mini-p8-64-int8-static ...]

scripts/quantize-default-models.sh measure writes the reports (src/cli/fewshot-benchmark.ts's JSON). Each int8
row (a model named `<source>-int8...`) is paired with the fp32 row of `<source>` found in any report given;
rows of different data sets, test sets or protocol settings are never paired (exit 3). Prints one Markdown row
per (data set, int8 variant): `fp32 / int8 (difference)` Acc@1 in % per shot count, each a mean over the seeds,
then the largest |difference| per variant and whether it is within --max-points (issue 15's bar: 1 point).
Exits 1 when a variant misses the bar, so a publish step can rely on it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

EPS = 1e-9  # Acc@1 means are fractions: x100 leaves float noise at the bar itself
SETTINGS = ("protocol", "method", "pooling", "normalize", "preprocess_resize", "shots", "seeds")
DATASET_FIELDS = ("name", "path", "split", "classes", "train_pool", "test_images", "max_test_per_class")


class Refused(Exception):
    """The reports cannot be compared row by row."""


def source_of(model: str) -> str | None:
    """`clmae-vit-mini-p8-64-int8-static` -> `clmae-vit-mini-p8-64`; None for an fp32 name."""
    head, sep, _ = model.rpartition("-int8")
    if sep and (model.endswith("-int8") or model[len(head) + 5:].startswith("-")):
        return head
    return None


def load(paths: list[Path]) -> tuple[dict, dict[tuple[str, str], list[dict]]]:
    """The reports' shared settings and data sets, and every row by (data set, model)."""
    settings: dict | None = None
    datasets: dict[str, dict] = {}
    rows: dict[tuple[str, str], list[dict]] = {}
    for path in paths:
        report = json.loads(path.read_text())
        mine = {key: report.get(key) for key in SETTINGS}
        if settings is None:
            settings = mine
        elif mine != settings:
            raise Refused(f"{path}: settings {mine} differ from the first report's {settings}")
        for dataset in report["datasets"]:
            fields = {key: dataset.get(key) for key in DATASET_FIELDS}
            seen = datasets.setdefault(dataset["name"], fields)
            if seen != fields:
                raise Refused(f"{path}: data set {dataset['name']} was measured on another test set or split")
            for model, cells in dataset["results"].items():
                rows[(dataset["name"], model)] = cells
    if settings is None:
        raise Refused("no report given")
    return settings, rows


def table(rows: dict[tuple[str, str], list[dict]], max_points: float,
          variants: list[str] | None = None) -> tuple[list[str], dict[str, float]]:
    """Markdown lines and the largest |difference| (points) per int8 variant (those named, else all)."""
    shots = sorted({cell["shots"] for cells in rows.values() for cell in cells})
    lines = ["| data set | int8 variant | " + " | ".join(f"{n}-shot" for n in shots) + " |",
             "|---|---|" + "---|" * len(shots)]
    worst: dict[str, float] = {}
    for (dataset, model), cells in rows.items():
        source = source_of(model)
        if source is None or (variants and model not in variants):
            continue
        if (dataset, source) not in rows:
            raise Refused(f"{model} on {dataset}: no fp32 row of {source} in the reports")
        fp32 = {cell["shots"]: cell["acc1"]["mean"] * 100 for cell in rows[(dataset, source)]}
        int8 = {cell["shots"]: cell["acc1"]["mean"] * 100 for cell in cells}
        if set(fp32) != set(int8):
            raise Refused(f"{model} on {dataset}: other shot counts than {source}")
        parts = []
        for n in shots:
            diff = int8[n] - fp32[n]
            worst[model] = max(worst.get(model, 0.0), abs(diff))
            parts.append(f"{fp32[n]:.1f} / {int8[n]:.1f} ({diff:+.2f})")
        lines.append(f"| {dataset} | {model} | " + " | ".join(parts) + " |")
    if not worst:
        raise Refused("no int8 rows in the reports")
    missing = sorted(set(variants or []) - set(worst))
    if missing:
        raise Refused(f"no rows of {', '.join(missing)} in the reports")
    lines.append("")
    for model, points in worst.items():
        verdict = "within" if points <= max_points + EPS else "NOT within"
        lines.append(f"- {model}: largest |difference| {points:.2f} points Acc@1, {verdict} {max_points:g}")
    return lines, worst


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--report", type=Path, action="append", required=True, help="fewshot-benchmark JSON (repeat)")
    parser.add_argument("--variant", action="append", help="table only these int8 models (repeat; default: all)")
    parser.add_argument("--max-points", type=float, default=1.0, help="largest |int8 - fp32| Acc@1 allowed, in points")
    args = parser.parse_args(argv)
    try:
        _, rows = load(args.report)
        lines, worst = table(rows, args.max_points, args.variant)
    except Refused as refusal:
        print(f"int8_fewshot_table: refused: {refusal}", file=sys.stderr)
        return 3
    print("\n".join(lines))
    return 0 if all(points <= args.max_points + EPS for points in worst.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
