"""Training throughput (images/s) of MAE and CL-MAE on the same config, in one run, and their ratio.

    cd training && ../.venv/bin/python benchmarks/train_throughput.py --config vit_mini_p8_64 --batch-size 64
    # add --data /work/shared/data/imagenette/train to include JPEG decoding + augmentation

Without --data the batches are synthetic tensors (compute only). Each method runs --warmup-iters
untimed iterations, then --iters timed full iterations (MAE step; for CL-MAE also the masking step).
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time

import torch

from clmae.configs import CONFIGS, get_config
from clmae.data import AugmentedImages, build_train_loader, build_train_transform, list_images, subset
from clmae.engine import StepSettings, build_optimizers, train_one_epoch
from clmae.mae import build_models


def measure(method: str, args: argparse.Namespace, device: torch.device) -> float:
    """Images per second of `method` over args.iters timed iterations."""
    config = get_config(args.config)
    torch.manual_seed(0)
    mae, masking = build_models(config, method)
    mae.to(device)
    if masking is not None:
        masking.to(device)
    opt_mae, opt_masking = build_optimizers(mae, masking, lr=1e-4)
    total = args.warmup_iters + args.iters
    if args.data:
        files = subset(list_images(args.data), total * args.batch_size, 0)
        dataset = AugmentedImages(files, build_train_transform(config.image_size))
        batches = build_train_loader(dataset, batch_size=args.batch_size, seed=0, epoch=0, rank=0, world_size=1,
                                     start_iter=0, num_workers=args.num_workers)
    else:
        fixed = torch.randn(args.batch_size, 3, config.image_size, config.image_size)
        batches = itertools.repeat(fixed, total)
    times: list[float] = []

    def on_iteration(_: int, metrics: dict) -> None:
        times.append(time.perf_counter())

    start = time.perf_counter()
    train_one_epoch(mae_run=mae, masking_run=masking, batches=batches, opt_mae=opt_mae, opt_masking=opt_masking,
                    settings=StepSettings(), lr_table=[1e-4] * total, factor=1.0, epoch=0, iters_per_epoch=total,
                    start_iter=0, device=device, on_iteration=on_iteration)
    t0 = times[args.warmup_iters - 1] if args.warmup_iters > 0 else start
    if device.type == "cuda":
        torch.cuda.synchronize()
    return args.iters * args.batch_size / (times[-1] - t0)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="vit_mini_p8_64", help=f"one of: {', '.join(CONFIGS)}")
    p.add_argument("--batch-size", type=int, default=64, help="images per iteration")
    p.add_argument("--iters", type=int, default=10, help="timed iterations per method")
    p.add_argument("--warmup-iters", type=int, default=2, help="untimed iterations per method first")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--data", default=None, help="image folder: include data loading (default: synthetic batches)")
    p.add_argument("--num-workers", type=int, default=2, help="DataLoader workers with --data")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="auto: CUDA when available")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    use_cuda = torch.cuda.is_available() if args.device == "auto" else args.device == "cuda"
    device = torch.device("cuda" if use_cuda else "cpu")
    result = {"config": args.config, "batch_size": args.batch_size, "iters": args.iters, "device": str(device),
              "threads": torch.get_num_threads(), "data": args.data or "synthetic"}
    for method in ("mae", "clmae"):
        result[f"{method}_images_per_second"] = round(measure(method, args, device), 2)
        print(f"{method:6s} {result[f'{method}_images_per_second']:10.2f} images/s", flush=True)
    result["clmae_over_mae"] = round(result["clmae_images_per_second"] / result["mae_images_per_second"], 3)
    print(f"ratio  CL-MAE / MAE = {result['clmae_over_mae']:.3f}")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
