"""Few-shot results of the finished scaling runs (issue 16): export each bundle, run the benchmark, commit JSON.

    scripts/evaluate-scaling-runs.sh            # the wrapper: copies the logs, runs this under nice, refreshes the card
    .venv/bin/python training/tools/evaluate_scaling_runs.py --dry-run   # what it would do

For every run folder <runs-dir>/scaling-<method>-<config>-<images>/ whose training has finished:
1. export its checkpoint (clmae.export) into <run>/bundle/<run>/ (the bundle is named after the run, so the
   benchmark's rows say which run they are), unless a bundle of the finished checkpoint is already there;
2. run the few-shot benchmark on it with the protocol fixed in issue 16 before any test split was read, the
   flags of scripts/fewshot-table.sh: logreg probe, mean pooling, L2-normalised, 1/2/4/8/16 shots, seeds
   0/1/2, every test image (--max-test-per-class 100000), on imagewoof, sport_balls and cifar10;
3. write the report to <results-dir>/<run>/fewshot.json (models/runs/, committed).
A run is finished when log.jsonl holds the record of its last epoch and checkpoint.pt's position is the end
of that epoch (train.py writes the epoch record, then the monitor record, then that checkpoint). A result is
up to date when its encoder sha256 is the exported bundle's, so re-running does only what is missing and an
interrupted evaluation starts that run again; nothing is written into the run folder but bundle/.
The 16x16x3 pixel baseline depends on the data, the seeds and the eval transform only, not on the weights:
it is computed once, with the first run evaluated, and kept apart in <results-dir>/scaling-pixels-16x16/.
"""

from __future__ import annotations

import argparse
import copy
import fcntl
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "training"))  # this checkout's clmae, not an installed one
sys.path.insert(0, str(Path(__file__).resolve().parent))

from scaling_results import PIXELS_FEATURE, PIXELS_RUN, parse_run_name, read_log  # noqa: E402

DATASETS = ("imagewoof", "sport_balls", "cifar10")
# issue 16's protocol = scripts/fewshot-table.sh's flags, spelled out so that a changed default cannot move it.
PROTOCOL = ["--method", "logreg", "--pooling", "mean", "--shots", "1,2,4,8,16", "--seeds", "0,1,2",
            "--max-test-per-class", "100000"]
PIXELS = 16


def finished_epochs(run_dir: Path) -> int | None:
    """The run's epoch count when its training has finished, else None (reads the checkpoint only then)."""
    config = run_dir / "config.json"
    log = run_dir / "log.jsonl"
    if not (config.is_file() and log.is_file() and (run_dir / "checkpoint.pt").is_file()):
        return None
    epochs = json.loads(config.read_text())["epochs"]
    logged = {r["epoch"] for r in read_log(log).get("epoch", [])}
    if epochs - 1 not in logged:
        return None
    from clmae import checkpoint as ckpt
    position = ckpt.load(run_dir / "checkpoint.pt")["position"]
    return epochs if position == {"epoch": epochs, "iter": 0} else None


def encoder_sha(bundle: Path) -> str | None:
    manifest = bundle / "manifest.json"
    return json.loads(manifest.read_text())["graphs"]["encoder"]["sha256"] if manifest.is_file() else None


def ensure_bundle(run_dir: Path, epochs: int) -> Path:
    """<run>/bundle/<run>/ exported from the finished checkpoint (kept when it already is: same epochs and same
    training wall time, which a run trained again in the same folder does not share with the old bundle)."""
    from clmae import checkpoint as ckpt
    from clmae import export

    bundle = run_dir / "bundle" / run_dir.name
    manifest = bundle / "manifest.json"
    wall = float(ckpt.load(run_dir / "checkpoint.pt")["wall_time_seconds"])
    if manifest.is_file():
        held = json.loads(manifest.read_text())["training"]
        if held["epochs"] == epochs and held["wall_time_seconds"] == wall:
            return bundle
    print(f"[evaluate] {run_dir.name}: exporting {bundle}", flush=True)
    export.main(["--checkpoint", str(run_dir / "checkpoint.pt"), "--output", str(bundle), "--name", run_dir.name])
    return bundle


def rel(path: Path) -> str:
    """A path as the benchmark's recorded command should show it (relative to the repository when inside)."""
    path = path.resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def run_benchmark(bundle: Path, data: Path, with_pixels: bool, out: Path) -> dict:
    cmd = ["node", "--import", "tsx", "src/cli/fewshot-benchmark.ts", "--models-dir", rel(bundle.parent),
           "--model", bundle.name, *[a for d in DATASETS for a in ("--data", rel(data / d))], *PROTOCOL,
           "--pixels", str(PIXELS if with_pixels else 0), "--out-json", rel(out)]
    print("[evaluate] " + " ".join(cmd), flush=True)
    subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    return json.loads(out.read_text())


def split_pixels(report: dict, run: str) -> tuple[dict, dict]:
    """One benchmark report -> (the run's rows only, the pixel baseline's rows only)."""
    model_part, pixel_part = copy.deepcopy(report), copy.deepcopy(report)
    for d in model_part["datasets"]:
        d["results"].pop(PIXELS_FEATURE, None)
    model_part["pixel_baseline"] = f"computed once for the curve: models/runs/{PIXELS_RUN}/fewshot.json"
    for d in pixel_part["datasets"]:
        d["results"] = {PIXELS_FEATURE: d["results"][PIXELS_FEATURE]}
    pixel_part["pixels_computed_with"] = (f"{run}'s eval transform (the pixel rows of the benchmark run that "
                                          "evaluated it; the baseline does not depend on the weights)")
    return model_part, pixel_part


def write_json(path: Path, body: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(body, indent=1) + "\n")
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs-dir", type=Path, default=ROOT / "runs" / "scaling", help="the training runs' folders")
    p.add_argument("--results-dir", type=Path, default=ROOT / "models" / "runs",
                   help="where <run>/fewshot.json goes (committed)")
    p.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data",
                   help=f"folder holding {', '.join(DATASETS)}")
    p.add_argument("--dry-run", action="store_true", help="say what would be exported and evaluated, do nothing")
    p.add_argument("--jobs", type=int, default=1, help="benchmarks run side by side (each fits its probes on one thread)")
    args = p.parse_args(argv)
    if args.jobs < 1:
        p.error("--jobs must be at least 1")

    # One evaluation at a time (two would both compute the pixel baseline): a lock on this file.
    lock = open(__file__)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        print("[evaluate] another evaluate_scaling_runs.py is running; nothing done", file=sys.stderr)
        return 1

    runs = sorted((d for d in args.runs_dir.glob("scaling-*") if d.is_dir() and parse_run_name(d.name)),
                  key=lambda d: (parse_run_name(d.name)[2], d.name))
    pixels_path = args.results_dir / PIXELS_RUN / "fewshot.json"
    todo = []  # (run folder, exported bundle, its encoder sha256), in budget order
    for run_dir in runs:
        epochs = finished_epochs(run_dir)
        if epochs is None:
            print(f"[evaluate] {run_dir.name}: training not finished, skipped", flush=True)
            continue
        result_path = args.results_dir / run_dir.name / "fewshot.json"
        if args.dry_run:
            print(f"[evaluate] {run_dir.name}: finished ({epochs} epochs); result "
                  f"{'present (checked against the bundle when run)' if result_path.is_file() else 'to compute'}")
            continue
        bundle = ensure_bundle(run_dir, epochs)
        sha = encoder_sha(bundle)
        if result_path.is_file():
            held = json.loads(result_path.read_text())["models"].get(run_dir.name, {}).get("encoder_sha256")
            if held == sha:
                print(f"[evaluate] {run_dir.name}: up to date ({result_path})", flush=True)
                continue
        todo.append((run_dir, bundle, sha))

    # The baseline (kept, or computed below with the first run) must have every run's eval transform: one config.
    if todo:
        held = ({m["config"] for m in json.loads(pixels_path.read_text())["models"].values()} if pixels_path.is_file()
                else {json.loads((todo[0][1] / "manifest.json").read_text())["config"]})
        for _, bundle, _ in todo:
            config = json.loads((bundle / "manifest.json").read_text())["config"]
            if held != {config}:
                raise ValueError(f"{pixels_path} was computed for {held}, not {config}: move it aside to recompute")
    with_pixels = {run_dir.name: i == 0 and not pixels_path.is_file() for i, (run_dir, _, _) in enumerate(todo)}

    def evaluate(run_dir: Path, bundle: Path, sha: str) -> str:
        result_path = args.results_dir / run_dir.name / "fewshot.json"
        tmp = args.results_dir / run_dir.name / ".fewshot.benchmark.json"
        tmp.parent.mkdir(parents=True, exist_ok=True)
        report = run_benchmark(bundle, args.data, with_pixels[run_dir.name], tmp)
        if report["models"][run_dir.name]["encoder_sha256"] != sha:
            raise AssertionError(f"the benchmark evaluated other weights than {bundle}. This is a bug.")
        if with_pixels[run_dir.name]:
            report, pixels = split_pixels(report, run_dir.name)
            write_json(pixels_path, pixels)
            print(f"[evaluate] pixel baseline -> {pixels_path}", flush=True)
        write_json(result_path, report)
        tmp.unlink()
        print(f"[evaluate] {run_dir.name} -> {result_path}", flush=True)
        return run_dir.name

    # The benchmark fits its probes on one thread, so --jobs 2 keeps both cores of a 2-core machine busy.
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        done = [f.result() for f in [pool.submit(evaluate, *item) for item in todo]]
    print(f"[evaluate] evaluated this time: {', '.join(done) or 'none'}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
