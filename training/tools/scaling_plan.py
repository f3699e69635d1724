"""The scaling curve's runs and their projected machine-hours (scripts/train-scaling-curve.sh calls this).

For each budget B (images seen) and method, one run of E = ceil(B / images per epoch) epochs over the
whole training folder (images per epoch = floor(N / batch) x batch, drop_last), so each run has its own
lr schedule and curriculum lambda(e) (both are tables of its own E). The projection divides the images
still to see (epochs already done: the position of <runs-dir>/<run>/checkpoint.pt) by img/s measured on this
machine just before, with benchmarks/train_throughput.py on the same config, batch, threads and pipeline.

Prints the plan to stderr and one line per run to do on stdout: `<method> <epochs> <run-dir>`.
Exit status 3 when the runs to do exceed --max-hours (nothing is started; the script says what to cut).

    cd training && ../.venv/bin/python tools/scaling_plan.py --data ../../shared/data/imagenette/train
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
from pathlib import Path

from clmae.data import list_images

TRAINING = Path(__file__).resolve().parents[1]


def run_name(method: str, config: str, images_seen: int) -> str:
    return f"scaling-{method}-{config.replace('_', '-')}-{images_seen}"


def epochs_done(run_dir: Path) -> int:
    """Completed epochs, from the run's checkpoint (0 when it has not started). Not from the log: train.py
    writes an epoch's record before that epoch's checkpoint, so a run stopped in between logs the epoch again
    when it resumes, and a record of the last epoch can stand without the checkpoint that ends the run."""
    path = run_dir / "checkpoint.pt"
    if not path.is_file():
        return 0
    from clmae import checkpoint as ckpt
    return int(ckpt.load(path)["position"]["epoch"])


def measure_throughput(args: argparse.Namespace, methods: list[str]) -> dict[str, float]:
    """img/s per method on this machine, as the runs will train (benchmarks/train_throughput.py)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "throughput.json"
        variant = "compiled" if args.compile else "memory"
        cmd = [sys.executable, str(TRAINING / "benchmarks" / "train_throughput.py"), "--config", args.config,
               "--batch-size", str(args.batch_size), "--data", args.data, "--variants", variant,
               "--methods", ",".join(methods), "--iters", str(args.bench_iters), "--warmup-iters", "2",
               "--json-out", str(out)]
        cmd += ["--threads", str(args.threads)] if args.threads else []
        cmd += ["--data-cache", args.data_cache] if args.data_cache else []
        cmd += ["--compile"] if args.compile else []
        print("measuring:", " ".join(cmd), file=sys.stderr, flush=True)
        subprocess.run(cmd, check=True, stdout=sys.stderr, cwd=TRAINING)
        report = json.loads(out.read_text())
    return {r["method"]: r["images_per_second"] for r in report["results"]}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="the training folder (all of it is used)")
    p.add_argument("--config", default="vit_mini_p8_64")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--budgets", type=int, nargs="+", default=[24_576, 98_304, 245_760],
                   help="images seen per run, at least (rounded up to whole epochs)")
    p.add_argument("--epochs", type=int, nargs="+", default=None,
                   help="explicit epochs per budget instead (smoke tests)")
    p.add_argument("--methods", nargs="+", default=["clmae", "mae"])
    p.add_argument("--runs-dir", default=str(TRAINING.parent / "runs" / "scaling"))
    p.add_argument("--data-cache", default=None)
    p.add_argument("--compile", action="store_true", help="the runs use --compile: measure that variant")
    p.add_argument("--bench-iters", type=int, default=8, help="timed iterations per method for the projection")
    p.add_argument("--max-hours", type=float, default=6.0, help="refuse (exit 3) above this projection")
    args = p.parse_args(argv)

    num_images = len(list_images(args.data))
    per_epoch = (num_images // args.batch_size) * args.batch_size
    if per_epoch == 0:
        raise ValueError(f"{num_images} images under {args.data} is fewer than one batch of {args.batch_size}")
    epochs = args.epochs or [math.ceil(b / per_epoch) for b in args.budgets]
    ips = measure_throughput(args, args.methods)
    print(f"\n{num_images} training images, {per_epoch} seen per epoch (batch {args.batch_size}, drop_last); "
          f"measured img/s: " + ", ".join(f"{m} {v:.1f}" for m, v in ips.items()), file=sys.stderr)
    print(f"{'run':44s} {'epochs':>6s} {'images':>8s} {'done':>5s} {'hours':>6s} {'cumulative':>10s}", file=sys.stderr)
    total, todo = 0.0, []
    for e in epochs:
        for method in args.methods:
            name = run_name(method, args.config, e * per_epoch)
            run_dir = Path(args.runs_dir) / name
            done = min(epochs_done(run_dir), e)
            hours = (e - done) * per_epoch / ips[method] / 3600
            total += hours
            print(f"{name:44s} {e:6d} {e * per_epoch:8d} {done:5d} {hours:6.2f} {total:10.2f}", file=sys.stderr)
            if done < e:
                todo.append((method, e, run_dir, hours))
    print(f"projected machine-hours still to train: {total:.2f} (limit {args.max_hours:g})", file=sys.stderr)
    if total > args.max_hours:
        # Budgets are kept or cut whole (both methods), smallest first: the curve compares methods per budget.
        keep, running = [], 0.0
        for e in epochs:
            hours = sum(h for _, run_e, _, h in todo if run_e == e)
            if running + hours > args.max_hours:
                break
            keep.append(e)
            running += hours
        cut = [e * per_epoch for e in epochs if e not in keep]
        print(f"over {args.max_hours:g} h: the budgets of {[e * per_epoch for e in keep] or 'none'} images fit "
              f"({running:.2f} h); cut {cut} (both methods), lower the largest budget, or raise MAX_HOURS once "
              f"the machine is free for it. Nothing started.", file=sys.stderr)
        return 3
    for method, e, run_dir, _ in todo:
        print(f"{method} {e} {run_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
