"""The README few-shot report of freshly published bundles, from the results their runs already have.

    .venv/bin/python training/tools/shipped_fewshot_report.py --run clmae-vit-mini-p8-64=<clmae run> \
        --run mae-vit-mini-p8-64=<mae run> --out models/fewshot/fewshot.json

scripts/publish-scaling-models.sh ships scaling runs under the default bundles' names. Each run was already
measured with issue 16's protocol (models/runs/<run>/fewshot.json, the pixel baseline apart in
models/runs/scaling-pixels-16x16/); measuring the same graphs again for the README table costs about half an
hour on 2 cores. This assembles that table's report (src/cli/fewshot-benchmark.ts's JSON) from those results,
renamed to the bundle names, and only when each shipped encoder is byte for byte the graph its result measured
(encoder sha256), each shipped bundle preprocesses images as the bundles measured did (eval_transform: the
manifest's, outside the graph's bytes; read from the evaluated bundles evaluate_scaling_runs.py left in
<runs-dir>/<run>/bundle/, the pixel baseline's included) and the three reports measured the same data sets with
the same settings. Otherwise it exits 3 and the caller measures again (scripts/fewshot-table.sh). The numbers are
copied, never recomputed or edited.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from scaling_results import PIXELS_FEATURE, PIXELS_RUN  # noqa: E402

# What must agree between the reports for their rows to sit in one table (fewshot-benchmark.ts's fields).
SETTINGS = ("protocol", "method", "pooling", "normalize", "preprocess_resize", "shots", "seeds")
# split and path too: another split seed (or another copy of the data) gives a test set of the same size.
DATASET_FIELDS = ("name", "path", "split", "classes", "train_pool", "test_images", "max_test_per_class")


class Refused(Exception):
    """The results cannot stand for the shipped bundles: measure them again."""


def read(path: Path) -> dict:
    if not path.is_file():
        raise Refused(f"{path} is missing")
    return json.loads(path.read_text())


def measured_eval_transform(runs_dir: Path, run: str, sha: str, what: str) -> dict:
    """The eval transform of the bundle a result measured: <runs-dir>/<run>/bundle/<run>/, still that encoder."""
    manifest = runs_dir / run / "bundle" / run / "manifest.json"
    if not manifest.is_file():
        raise Refused(f"{manifest} is gone: the eval transform {what} was measured with is unknown")
    evaluated = json.loads(manifest.read_text())
    if evaluated["graphs"]["encoder"]["sha256"] != sha:
        raise Refused(f"{manifest} was exported again since {what} was measured")
    return evaluated["eval_transform"]


def assemble(bundles: dict[str, tuple[Path, Path]], pixels_path: Path, runs_dir: Path) -> dict:
    """bundles: shipped bundle name -> (its folder, its run's fewshot.json); runs_dir: the runs' folders (their
    evaluated bundles). The report for the README table."""
    pixels = read(pixels_path)
    (pixels_run, pixels_entry), = pixels["models"].items()  # the run whose inputs were pooled
    pixels_transform = measured_eval_transform(runs_dir, pixels_run, pixels_entry["encoder_sha256"], pixels_path)
    sources, out = [], None
    for name, (bundle, result_path) in bundles.items():
        result = read(result_path)
        (run, entry), = result["models"].items()  # one run per result (evaluate_scaling_runs.py)
        manifest = json.loads((bundle / "manifest.json").read_text())
        shipped = manifest["graphs"]["encoder"]["sha256"]
        if entry["encoder_sha256"] != shipped:
            raise Refused(f"{name}'s encoder {shipped[:16]} is not the graph {result_path} measured "
                          f"({entry['encoder_sha256'][:16]})")
        # The same graph on other inputs gives other numbers: the shipped manifest's transform is what a fresh
        # benchmark would use, for the model's rows and (first model) for the pixel rows.
        for measured, what in ((measured_eval_transform(runs_dir, run, shipped, result_path), result_path),
                               (pixels_transform, pixels_path)):
            if manifest["eval_transform"] != measured:
                raise Refused(f"{name} preprocesses with {manifest['eval_transform']}, {what} was measured with "
                              f"{measured}")
        for other in (pixels, out) if out is not None else (pixels,):
            for key in SETTINGS:
                if result.get(key) != other.get(key):
                    raise Refused(f"{result_path} differs in {key!r}: {result.get(key)!r} vs {other.get(key)!r}")
        if out is None:
            out = copy.deepcopy(result)
            out["models"], out["datasets"] = {}, [
                {**{k: d[k] for k in d if k != "results"}, "results": {}} for d in result["datasets"]]
        out["models"][name] = entry
        if [[d.get(k) for k in DATASET_FIELDS] for d in result["datasets"]] != \
                [[d.get(k) for k in DATASET_FIELDS] for d in out["datasets"]]:
            raise Refused(f"{result_path} measured other data sets or splits than the first result")
        for target, measured in zip(out["datasets"], result["datasets"]):
            target["results"][name] = measured["results"][run]
        sources.append(str(result_path.relative_to(ROOT) if result_path.is_relative_to(ROOT) else result_path))
    if [[d.get(k) for k in DATASET_FIELDS] for d in pixels["datasets"]] != \
            [[d.get(k) for k in DATASET_FIELDS] for d in out["datasets"]]:
        raise Refused(f"{pixels_path} measured other data sets or splits than the runs")
    for target, measured in zip(out["datasets"], pixels["datasets"]):
        target["results"][PIXELS_FEATURE] = measured["results"][PIXELS_FEATURE]
    out["pixel_baseline"] = pixels.get("pixel_baseline", out.get("pixel_baseline"))
    out["generated_at"] = max(r["generated_at"] for r in [pixels, *(read(p) for _, p in bundles.values())])
    # No backticks: the benchmark's Markdown quotes this string in them.
    out["command"] = ("training/tools/shipped_fewshot_report.py: the published runs' results, measured by "
                      f"evaluate_scaling_runs.py on these encoders, renamed to the bundles: {', '.join(sources)}; "
                      f"pixel rows from {PIXELS_RUN}")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", action="append", required=True, metavar="BUNDLE=RUN",
                   help="a shipped bundle and the scaling run it was exported from (repeat)")
    p.add_argument("--models-dir", type=Path, default=ROOT / "models")
    p.add_argument("--results-dir", type=Path, default=ROOT / "models" / "runs")
    p.add_argument("--runs-dir", type=Path, default=ROOT / "runs" / "scaling",
                   help="the runs' folders, holding the bundles their results measured")
    p.add_argument("--out", type=Path, default=ROOT / "models" / "fewshot" / "fewshot.json")
    args = p.parse_args(argv)
    bundles = {}
    for pair in args.run:
        name, _, run = pair.partition("=")
        bundles[name] = (args.models_dir / name, args.results_dir / run / "fewshot.json")
    try:
        report = assemble(bundles, args.results_dir / PIXELS_RUN / "fewshot.json", args.runs_dir)
    except Refused as e:
        print(f"[shipped-fewshot] refused: {e}", file=sys.stderr)
        return 3
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_name(f".{args.out.name}.tmp")
    tmp.write_text(json.dumps(report, indent=1) + "\n")
    os.replace(tmp, args.out)
    print(f"[shipped-fewshot] {args.out}: {', '.join(bundles)} from their runs' results")
    return 0


if __name__ == "__main__":
    sys.exit(main())
