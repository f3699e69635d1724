"""Where one training iteration's time goes: data, optimizer, model; and the top operators by self CPU time.

    cd training && ../.venv/bin/python benchmarks/profile_step.py --config vit_mini_p8_64 --batch-size 64 \\
        --data ../../shared/data/imagenette/train --threads 2

For each method, with AdamW's default (for-loop) implementation and with the fused kernel: one batch
made by each pipeline (files: decode + augment `batch` JPEGs in this process, as one DataLoader worker
does; memory: cut from the decoded tensor), then --warmup-iters iterations and one profiled iteration
(torch.profiler). The optimizer's share is the CPU time inside torch's `Optimizer.step` records; the
model's is the rest of the iteration. Figures are wall-clock: on a shared machine compare the shares.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import torch
from torch.profiler import ProfilerActivity, profile

from clmae.configs import CONFIGS, get_config
from clmae.data import CROP_SCALE, AugmentedImages, build_train_transform, list_images, subset
from clmae.engine import StepSettings, build_optimizers, mae_step, masking_step
from clmae.mae import build_models
from clmae.memory_pipeline import InMemoryImages, load_images


def data_seconds(args: argparse.Namespace) -> dict[str, float]:
    """Seconds to make one batch with each pipeline (median of 3)."""
    config = get_config(args.config)
    files = subset(list_images(args.data), args.batch_size, 0)
    seeds = list(range(args.batch_size))
    on_files = AugmentedImages(files, build_train_transform(config.image_size, CROP_SCALE))
    in_memory = InMemoryImages(load_images(files, round(1.5 * config.image_size), log=lambda _: None),
                               config.image_size, CROP_SCALE)
    out = {}
    for name, make in (("files", lambda: torch.stack([on_files[(i, s)] for i, s in enumerate(seeds)])),
                       ("memory", lambda: in_memory.batch(list(range(len(seeds))), seeds))):
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            make()
            times.append(time.perf_counter() - t0)
        out[name] = sorted(times)[1]
    return out


def profile_iteration(method: str, fused: bool, args: argparse.Namespace) -> tuple[float, float, str]:
    """(iteration seconds, optimizer seconds, top-operators table) of one profiled iteration."""
    config = get_config(args.config)
    torch.manual_seed(0)
    mae, masking = build_models(config, method)
    opt_mae, opt_masking = build_optimizers(mae, masking, lr=1e-4, fused=fused)
    images = torch.randn(args.batch_size, 3, config.image_size, config.image_size)
    settings = StepSettings()

    def iteration(step: int) -> None:
        mae_step(mae, masking, images, opt_mae, settings, step=step)
        if masking is not None:
            masking_step(masking, mae, images, opt_masking, settings, factor=1.0)

    for step in range(args.warmup_iters):
        iteration(step)
    t0 = time.perf_counter()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        iteration(args.warmup_iters)
    total = time.perf_counter() - t0
    events = prof.key_averages()
    optimizer = sum(e.cpu_time_total for e in events if e.key.startswith("Optimizer.step#")) / 1e6
    table = events.table(sort_by="self_cpu_time_total", row_limit=args.top)
    return total, optimizer, table


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="vit_mini_p8_64", help=f"one of: {', '.join(CONFIGS)}")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--data", default=None, help="training image folder (for the data rows)")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--warmup-iters", type=int, default=2)
    p.add_argument("--top", type=int, default=12, help="operators listed per profile")
    p.add_argument("--tables", action="store_true", help="print the operator tables too")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"{torch.get_num_threads()} threads, load {os.getloadavg()[0]:.2f}")
    if args.data:
        for name, seconds in data_seconds(args).items():
            print(f"data   {name:7s} one batch of {args.batch_size}: {1000 * seconds:8.1f} ms")
    for method in ("mae", "clmae"):
        for fused in (False, True):
            total, optimizer, table = profile_iteration(method, fused, args)
            label = "fused AdamW" if fused else "for-loop AdamW"
            print(f"{method:6s} {label:15s} iteration {1000 * total:8.1f} ms: optimizer {1000 * optimizer:7.1f} ms "
                  f"({100 * optimizer / total:4.1f}%), model {1000 * (total - optimizer):8.1f} ms "
                  f"(load {os.getloadavg()[0]:.2f})", flush=True)
            if args.tables:
                print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
