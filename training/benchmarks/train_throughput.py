"""Training throughput (images/s) of MAE and CL-MAE, for each data pipeline and step setting, in one run.

    cd training && ../.venv/bin/python benchmarks/train_throughput.py --config vit_mini_p8_64 --batch-size 64 \\
        --data ../../shared/data/imagenette/train --threads 2 --compile

Variants, each run for both methods (--variants picks some):
- before:   files pipeline (JPEG decode + augmentation in DataLoader workers), AdamW's default
            for-loop implementation: the training step as it was before issue 16;
- files:    files pipeline, fused AdamW;
- memory:   the in-memory pipeline (decoded once; batched per-image crops and flips), fused AdamW;
- compiled: memory + torch.compile'd transformer blocks (only with --compile); the compile time
            (the warm-up iterations' wall time less as many steady iterations) is reported apart;
- synthetic: one fixed random batch, fused AdamW: the model step alone, no data work.
Without --data only `synthetic` (and `compiled` on synthetic data) can run.

Each variant runs --warmup-iters untimed iterations, then --iters timed ones; images/s comes from the
median time between consecutive iterations (data waiting included), so a stray stall on a shared
machine does not move it much. CPU ms per image counts the work instead of the wait: this process's
CPU time over the timed iterations plus its DataLoader workers' share (their total CPU time x timed /
all iterations). On a busy machine wall-clock figures swing with the other jobs, and worker processes
even win extra CPU share from them; the load average is printed beside every figure, and the CPU
figure and the ratios within one run are the ones to compare there.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import statistics
import sys
import time
from pathlib import Path

import torch

from clmae.configs import CONFIGS, get_config
from clmae.data import CROP_SCALE, AugmentedImages, build_train_loader, build_train_transform, list_images, subset
from clmae.engine import StepSettings, build_optimizers, compile_blocks, train_one_epoch
from clmae.mae import build_models
from clmae.memory_pipeline import InMemoryImages, build_memory_loader, load_images

VARIANTS = ("before", "files", "memory", "compiled", "synthetic")


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def make_batches(variant: str, args: argparse.Namespace, total: int, timings: dict):
    """The batch iterator of one variant (total batches), built as clmae.train builds it."""
    config = get_config(args.config)
    if variant == "synthetic" or (variant == "compiled" and not args.data):
        fixed = torch.randn(args.batch_size, 3, config.image_size, config.image_size)
        return itertools.repeat(fixed, total)
    files = subset(list_images(args.data), total * args.batch_size, 0)
    if variant in ("before", "files"):
        dataset = AugmentedImages(files, build_train_transform(config.image_size, CROP_SCALE))
        return build_train_loader(dataset, batch_size=args.batch_size, seed=0, epoch=0, rank=0, world_size=1,
                                  start_iter=0, num_workers=args.num_workers)
    t0 = time.perf_counter()
    images = load_images(files, args.load_size or round(1.5 * config.image_size), args.data_cache, log=lambda _: None)
    timings["decode_seconds"] = round(time.perf_counter() - t0, 2)
    dataset = InMemoryImages(images, config.image_size, CROP_SCALE)
    return build_memory_loader(dataset, batch_size=args.batch_size, seed=0, epoch=0, rank=0, world_size=1,
                               start_iter=0)


def measure(method: str, variant: str, args: argparse.Namespace, device: torch.device) -> dict:
    """One method under one variant: images/s over the timed iterations, and the compile time if compiled."""
    config = get_config(args.config)
    torch.manual_seed(0)
    mae, masking = build_models(config, method)
    mae.to(device)
    if masking is not None:
        masking.to(device)
    opt_mae, opt_masking = build_optimizers(mae, masking, lr=1e-4, fused=variant != "before")
    if variant == "compiled":
        compile_blocks(mae, masking)
    total = args.warmup_iters + args.iters
    result: dict = {"method": method, "variant": variant}
    batches = make_batches(variant, args, total, result)
    stamps: list[float] = []
    cpu_stamps: list[float] = []

    def on_iteration(_: int, metrics: dict) -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()
        stamps.append(time.perf_counter())
        cpu_stamps.append(time.process_time())

    children_before = _children_cpu()
    start = time.perf_counter()
    train_one_epoch(mae_run=mae, masking_run=masking, batches=batches, opt_mae=opt_mae, opt_masking=opt_masking,
                    settings=StepSettings(), lr_table=[1e-4] * total, factor=1.0, epoch=0, iters_per_epoch=total,
                    start_iter=0, device=device, on_iteration=on_iteration)
    del batches  # ends the DataLoader's workers, so that their CPU time is counted
    if len(stamps) < total:
        raise ValueError(f"{variant}: only {len(stamps)} batches for {total} iterations (too few images under --data)")
    # Child processes are DataLoader workers only in the JPEG variants; elsewhere they are inductor's compile
    # workers, whose CPU went into compiling during the warm-up, not into the timed steps.
    workers_cpu = (_children_cpu() - children_before) * args.iters / total if variant in ("before", "files") else 0.0
    own_cpu = cpu_stamps[-1] - (cpu_stamps[args.warmup_iters - 1] if args.warmup_iters > 0 else cpu_stamps[0])
    steady = [b - a for a, b in zip(stamps[args.warmup_iters - 1:], stamps[args.warmup_iters:])] \
        if args.warmup_iters > 0 else [stamps[0] - start] + [b - a for a, b in zip(stamps, stamps[1:])]
    median = statistics.median(steady)
    result.update(images_per_second=round(args.batch_size / median, 2),
                  mean_images_per_second=round(args.iters * args.batch_size / sum(steady), 2),
                  median_iteration_seconds=round(median, 4), load_average=round(os.getloadavg()[0], 2),
                  cpu_ms_per_image=round(1000 * (own_cpu + workers_cpu) / (args.iters * args.batch_size), 2))
    if variant == "compiled" and args.warmup_iters > 0:
        result["compile_seconds"] = round(stamps[args.warmup_iters - 1] - start - args.warmup_iters * median, 1)
    return result


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="vit_mini_p8_64", help=f"one of: {', '.join(CONFIGS)}")
    p.add_argument("--batch-size", type=int, default=64, help="images per iteration")
    p.add_argument("--iters", type=int, default=10, help="timed iterations per method and variant")
    p.add_argument("--warmup-iters", type=int, default=2, help="untimed iterations first (compilation happens here)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--data", default=None, help="training image folder (the files and memory variants need it)")
    p.add_argument("--num-workers", type=int, default=2, help="DataLoader workers of the files pipeline")
    p.add_argument("--load-size", type=int, default=None, help="memory pipeline's stored side (default 1.5 x input)")
    p.add_argument("--data-cache", default=None, help="memory pipeline's decode cache folder")
    p.add_argument("--compile", action="store_true", help="add the compiled variant")
    p.add_argument("--variants", default=None,
                   help=f"comma-separated subset of {', '.join(VARIANTS)} (default: all that apply)")
    p.add_argument("--methods", default="mae,clmae", help="comma-separated: mae, clmae")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="auto: CUDA when available")
    p.add_argument("--json-out", default=None, help="also write the results to this file")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    use_cuda = torch.cuda.is_available() if args.device == "auto" else args.device == "cuda"
    device = torch.device("cuda" if use_cuda else "cpu")
    if args.variants:
        variants = args.variants.split(",")
        unknown = set(variants) - set(VARIANTS)
        if unknown:
            p.error(f"unknown variants {sorted(unknown)}; valid: {', '.join(VARIANTS)}")
    else:
        variants = [v for v in VARIANTS if (args.data or v in ("synthetic", "compiled")) and (args.compile or v != "compiled")]
    if not args.data and set(variants) & {"before", "files", "memory"}:
        p.error("the before, files and memory variants need --data")

    report = {"config": args.config, "batch_size": args.batch_size, "iters": args.iters,
              "warmup_iters": args.warmup_iters, "device": str(device), "cpu": cpu_name(),
              "threads": torch.get_num_threads(), "num_workers": args.num_workers, "torch": torch.__version__,
              "data": args.data or "synthetic", "results": []}
    print(f"{report['cpu']}, {report['threads']} threads, torch {torch.__version__}, load {os.getloadavg()[0]:.2f}")
    print(f"{'method':7s} {'variant':10s} {'img/s':>8s} {'mean img/s':>10s} {'CPU ms/img':>10s} {'load':>6s}  notes",
          flush=True)
    for method in args.methods.split(","):
        for variant in variants:
            r = measure(method, variant, args, device)
            report["results"].append(r)
            notes = ", ".join(f"{k} {r[k]}" for k in ("compile_seconds", "decode_seconds") if k in r)
            print(f"{method:7s} {variant:10s} {r['images_per_second']:8.2f} {r['mean_images_per_second']:10.2f} "
                  f"{r['cpu_ms_per_image']:10.2f} {r['load_average']:6.2f}  {notes}", flush=True)
    by = {(r["method"], r["variant"]): r["images_per_second"] for r in report["results"]}
    cpu = {(r["method"], r["variant"]): r["cpu_ms_per_image"] for r in report["results"]}
    ratios = {}
    for method in args.methods.split(","):
        base = by.get((method, "before"))
        for variant in ("files", "memory", "compiled"):
            if base and (method, variant) in by:
                ratios[f"{method}_{variant}_over_before"] = round(by[(method, variant)] / base, 3)
                ratios[f"{method}_{variant}_cpu_over_before"] = round(cpu[(method, variant)] / cpu[(method, "before")], 3)
    for variant in variants:
        if ("mae", variant) in by and ("clmae", variant) in by:
            ratios[f"clmae_over_mae_{variant}"] = round(by[("clmae", variant)] / by[("mae", variant)], 3)
    report["ratios"] = ratios
    for key, value in ratios.items():
        print(f"{key:32s} {value:.3f}")
    print(json.dumps(report))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
