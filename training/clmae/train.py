"""Train CL-MAE or its MAE baseline.

    cd training && ../.venv/bin/python -m clmae.train --config vit_mini_p8_64 --method clmae \
        --data /work/shared/data/imagenette/train --eval-data /work/shared/data/imagenette/val \
        --output-dir ../runs/clmae-mini --epochs 100 --batch-size 64

Phases: resolve arguments (printed, saved to config.json and into every checkpoint) -> build data,
models, optimizers and schedule tables -> resume from <output-dir>/checkpoint.pt if present ->
epoch loop (iterations, logging, mid-epoch checkpoints, per-epoch monitoring) -> final checkpoint.
Multi-process: torchrun --nproc_per_node N -m clmae.train ... (--batch-size is per process).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from pathlib import Path

import torch
from torch.nn.parallel import DistributedDataParallel as DDP

from clmae import checkpoint as ckpt
from clmae.configs import CONFIGS, get_config
from clmae.data import CROP_SCALE, AugmentedImages, build_train_loader, build_train_transform, eval_transform_spec, \
    list_images, load_eval_batch, subset
from clmae.distributed import DistInfo, barrier, init_distributed, mean_across_ranks, parameter_digests, shutdown
from clmae.engine import StepSettings, build_optimizers, compile_blocks, train_one_epoch, unwrap
from clmae.mae import build_models
from clmae.memory_pipeline import InMemoryImages, build_memory_loader, load_images
from clmae.monitor import evaluate_masks
from clmae.run_log import Progress, RunLog
from clmae.schedules import CURRICULA, curriculum_table, lr_table

CHECKPOINT_NAME = "checkpoint.pt"
# Settings that define the run (the model it trains, the data it sees, the losses and the optimisation):
# resuming with a different value is an error naming the setting. Threads, workers, --compile, logging and
# checkpoint cadence may change between invocations.
RUN_DEFINING = ("config", "method", "epochs", "batch_size", "world_size", "seed", "limit_images",
                "blr", "min_lr", "warmup_epochs", "weight_decay", "faithful_ghost_updates",
                "mask_ratio", "norm_pix", "curriculum", "lambda_kl", "kl_reference_batch", "lambda_div", "lambda_gauss",
                "data_pipeline", "load_size", "crop_scale",
                "model_config")  # the named config's definition: a same-named config edited between versions
# The training images are compared apart (check_same_images): their number, and a digest of their file list.
# What checkpoints written before a setting existed ran with (resume compares against these).
RUN_DEFINING_BEFORE_THE_SETTING = {"data_pipeline": "files", "load_size": None, "crop_scale": list(CROP_SCALE)}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m clmae.train", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="vit_mini_p8_64", help=f"named model config: {', '.join(CONFIGS)}")
    p.add_argument("--method", choices=("clmae", "mae"), default="clmae",
                   help="clmae: learned curriculum masking; mae: random masks, all else the same")
    p.add_argument("--data", required=True, help="training images (ImageFolder layout or flat; labels unused)")
    p.add_argument("--eval-data", default=None,
                   help="held-out images for the per-epoch monitoring (16 fixed, seeded images); "
                        "default: the training folder (then not held-out, logged as such)")
    p.add_argument("--output-dir", required=True, help="run directory: checkpoint.pt, log.jsonl, config.json, keep_scores/")
    p.add_argument("--epochs", type=int, required=True, help="total epochs E, fixed at start (resume must match)")
    p.add_argument("--batch-size", type=int, default=64, help="images per process; effective batch = this x world size")
    p.add_argument("--blr", type=float, default=1.5e-4, help="base lr; lr = blr x effective batch / 256")
    p.add_argument("--min-lr", type=float, default=0.0, help="floor of the cosine schedule")
    p.add_argument("--warmup-epochs", type=float, default=None,
                   help="linear warm-up epochs; default 40 if E >= 200 else 10%% of E (spec A1)")
    p.add_argument("--weight-decay", type=float, default=0.05, help="AdamW weight decay (0 for 1-D params and biases)")
    p.add_argument("--mask-ratio", type=float, default=0.75, help="r; K = floor(L x (1 - r)) kept; KL target keep = 1 - r")
    p.add_argument("--norm-pix", action=argparse.BooleanOptionalAction, default=True,
                   help="per-patch normalised pixel target (MAE recipe); --no-norm-pix for raw pixels")
    p.add_argument("--lambda-kl", type=float, default=0.1,
                   help="KL ratio weight; the term is mean over the batch x --kl-reference-batch (spec A3)")
    p.add_argument("--kl-reference-batch", type=int, default=256,
                   help="the official code sums the KL over a per-GPU batch of 256; we use mean x this")
    p.add_argument("--lambda-div", type=float, default=2.0, help="diversity loss weight")
    p.add_argument("--lambda-gauss", type=float, default=1.0, help="Gaussian binarisation loss weight")
    p.add_argument("--curriculum", choices=CURRICULA, default="linear",
                   help="linear: +1 (partner) -> -1 (adversary) per epoch; partner/adversary: constant +1/-1; off: 0")
    p.add_argument("--faithful-ghost-updates", action="store_true",
                   help="ablation: one AdamW for both parts and zero_grad(set_to_none=False), reproducing the "
                        "official code's extra momentum-only updates of the frozen part under PyTorch 1.x (spec 4.2)")
    p.add_argument("--seed", type=int, default=0, help="seeds init, data order, augmentation and MAE mask noise")
    p.add_argument("--data-pipeline", choices=("files", "memory"), default="files",
                   help="files: decode and augment every JPEG per step in DataLoader workers; memory: decode the "
                        "training set once into a uint8 tensor and augment batches of it (same crop boxes and flips)")
    p.add_argument("--load-size", type=int, default=None,
                   help="memory pipeline: side S of the stored images (shorter side resized to S, centre crop); "
                        "default 1.5 x the config's image size (96 for the 64-pixel configs, Imagenette's own size)")
    p.add_argument("--crop-scale", type=float, nargs=2, default=list(CROP_SCALE), metavar=("MIN", "MAX"),
                   help="RandomResizedCrop's area range, both pipelines (MAE: 0.2 1.0)")
    p.add_argument("--data-cache", default=None,
                   help="memory pipeline: folder for the decoded images (.npy, keyed by the file list); "
                        "default: decode at every start")
    p.add_argument("--compile", action="store_true",
                   help="torch.compile every transformer block (first iterations pay the compile time)")
    p.add_argument("--num-workers", type=int, default=2, help="DataLoader worker processes (files pipeline)")
    p.add_argument("--limit-images", type=int, default=None, help="use a seeded subset of N training images")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="auto: CUDA when available")
    p.add_argument("--checkpoint-every-min", type=float, default=10.0,
                   help="also checkpoint mid-epoch every this many minutes (exact position)")
    p.add_argument("--log-every", type=int, default=10, help="write an 'iter' record to log.jsonl every N iterations")
    p.add_argument("--eval-count", type=int, default=16, help="monitoring images per epoch")
    p.add_argument("--stop-after-iters", type=int, default=None,
                   help="checkpoint and exit after this many iterations in this invocation (tests, time-boxed runs)")
    return p


def resolve_args(args: argparse.Namespace, dist_info: DistInfo) -> dict:
    """The run's resolved settings (derived values filled in)."""
    config = get_config(args.config)
    if not 0.0 < args.mask_ratio < 1.0:
        raise ValueError(f"--mask-ratio must be in (0, 1), got {args.mask_ratio}")
    if args.epochs < 0:
        raise ValueError(f"--epochs must be >= 0, got {args.epochs}")
    if not 0.0 < args.crop_scale[0] <= args.crop_scale[1] <= 1.0:
        raise ValueError(f"--crop-scale must satisfy 0 < MIN <= MAX <= 1, got {args.crop_scale}")
    load_size = None
    if args.data_pipeline == "memory":
        load_size = args.load_size or round(1.5 * config.image_size)
        if load_size < config.image_size:
            raise ValueError(f"--load-size {load_size} is smaller than the model's input {config.image_size}")
    warmup = args.warmup_epochs
    if warmup is None:
        warmup = 40.0 if args.epochs >= 200 else 0.1 * args.epochs
    resolved = {k.replace("-", "_"): v for k, v in vars(args).items()}
    effective = args.batch_size * dist_info.world_size
    resolved.update(warmup_epochs=float(warmup), world_size=dist_info.world_size, effective_batch_size=effective,
                    load_size=load_size, crop_scale=[float(v) for v in args.crop_scale],
                    lr=args.blr * effective / 256.0, model_config=config.to_dict(), device=str(dist_info.device),
                    torch_version=torch.__version__)
    return resolved


def check_resume_compatible(saved: dict, current: dict) -> None:
    """Refuse to resume when any RUN_DEFINING setting differs from the checkpoint's, naming the setting."""
    for key in RUN_DEFINING:
        before = saved.get(key, RUN_DEFINING_BEFORE_THE_SETTING.get(key))
        if before != current.get(key):
            raise ValueError(f"cannot resume: --{key.replace('_', '-')} was {before!r} in the checkpoint, "
                             f"now {current.get(key)!r} (start a new --output-dir to change it)")


def file_list_sha256(files: list[Path], root: Path) -> str:
    """sha256 of every file's path relative to the --data folder and its size: the same images moved elsewhere
    digest the same; an added, removed, renamed or re-encoded image does not."""
    digest = hashlib.sha256()
    for path in files:
        digest.update(f"{path.relative_to(root).as_posix()}\t{path.stat().st_size}\n".encode())
    return digest.hexdigest()


def check_same_images(state: dict, current: dict) -> None:
    """Refuse to resume on other training images than the checkpoint's (their count sets the lr schedule's
    iterations per epoch). Checkpoints written before the digest existed are compared by count only."""
    saved_sha = state["args"].get("data_files_sha256")
    if state["num_images"] != current["num_images"] or saved_sha not in (None, current["data_files_sha256"]):
        raise ValueError(f"cannot resume: the checkpoint trained on {state['num_images']} images (file list sha256 "
                         f"{str(saved_sha)[:16]}), --data {current['data']} now gives {current['num_images']} "
                         f"({current['data_files_sha256'][:16]}) (start a new --output-dir to change it)")


def write_keep_scores(out_dir: Path, epoch: int, keep_scores: torch.Tensor, paths: list[str], grid: int) -> None:
    """<output-dir>/keep_scores/epoch_XXX.json: the monitoring images' keep scores (N, L) at this epoch."""
    target = out_dir / "keep_scores" / f"epoch_{epoch:03d}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    body = {"epoch": epoch, "grid": [grid, grid], "image_paths": paths,
            "keep_scores": [[round(v, 6) for v in row] for row in keep_scores.cpu().tolist()]}
    tmp = target.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(body))
    os.replace(tmp, target)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    dist_info = init_distributed(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    run = resolve_args(args, dist_info)
    out_dir = Path(args.output_dir)
    log = RunLog(out_dir / "log.jsonl", enabled=dist_info.is_main)
    device = dist_info.device

    # --- resume or start -------------------------------------------------------------------------
    files = subset(list_images(args.data), args.limit_images, args.seed)
    run.update(num_images=len(files), data_files_sha256=file_list_sha256(files, Path(args.data)))
    ckpt_path = out_dir / CHECKPOINT_NAME
    state = ckpt.load(ckpt_path) if ckpt_path.is_file() else None
    if state is not None:
        check_resume_compatible(state["args"], run)
        check_same_images(state, run)
    if dist_info.is_main:
        print(json.dumps(run, indent=2), flush=True)
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "config.json").write_text(json.dumps(run, indent=2) + "\n")

    # --- data ------------------------------------------------------------------------------------
    config = get_config(args.config)
    if args.data_pipeline == "memory":
        images = load_images(files, run["load_size"], args.data_cache,
                             log=lambda msg: print(msg, flush=True) if dist_info.is_main else None)
        dataset = InMemoryImages(images, config.image_size, args.crop_scale)
    else:
        dataset = AugmentedImages(files, build_train_transform(config.image_size, args.crop_scale))
    iters_per_epoch = len(dataset) // (args.batch_size * dist_info.world_size)
    if iters_per_epoch < 1 and args.epochs > 0:
        raise ValueError(f"{len(dataset)} images under {args.data} is fewer than one effective batch "
                         f"({args.batch_size} x {dist_info.world_size})")
    eval_spec = eval_transform_spec(config)
    eval_images, eval_paths = load_eval_batch(args.eval_data or args.data, eval_spec, count=args.eval_count, seed=0)
    eval_images = eval_images.to(device)

    # --- models, optimizers, schedules -------------------------------------------------------------
    torch.manual_seed(args.seed)
    mae, masking = build_models(config, args.method, norm_pix=args.norm_pix)
    mae.to(device)
    if masking is not None:
        masking.to(device)
    opt_mae, opt_masking = build_optimizers(mae, masking, lr=run["lr"], weight_decay=args.weight_decay,
                                            single=args.faithful_ghost_updates)
    if args.compile:
        compile_blocks(mae, masking)
    lrs = lr_table(iters_per_epoch=max(iters_per_epoch, 1), epochs=args.epochs, warmup_epochs=run["warmup_epochs"],
                   lr=run["lr"], min_lr=args.min_lr)
    factors = curriculum_table(args.epochs, args.curriculum)
    settings = StepSettings(mask_ratio=args.mask_ratio, lambda_kl=args.lambda_kl, lambda_div=args.lambda_div,
                            lambda_gauss=args.lambda_gauss, kl_reference_batch=args.kl_reference_batch, seed=args.seed,
                            set_to_none=not args.faithful_ghost_updates)

    start_epoch, start_iter, wall_before, epoch_sums, final_losses = 0, 0, 0.0, {}, {}
    if state is not None:
        mae.load_state_dict(state["mae"])
        opt_mae.load_state_dict(state["opt_mae"])
        if masking is not None:
            masking.load_state_dict(state["masking"])
            opt_masking.load_state_dict(state["opt_masking"])
        start_epoch, start_iter = state["position"]["epoch"], state["position"]["iter"]
        wall_before, epoch_sums = state["wall_time_seconds"], state.get("epoch_sums", {})
        final_losses = state.get("final_losses", {})
        ckpt.restore_rng_states(state["rng"])
        if dist_info.is_main:
            print(f"resumed from {ckpt_path} at epoch {start_epoch}, iteration {start_iter}", flush=True)
    # A9: MAE and masking module are separate DDP instances, so each step all-reduces only its own gradients.
    ddp_ids = [dist_info.local_rank] if device.type == "cuda" else None
    mae_run = DDP(mae, device_ids=ddp_ids) if dist_info.world_size > 1 else mae
    masking_run = None
    if masking is not None:
        masking_run = DDP(masking, device_ids=ddp_ids) if dist_info.world_size > 1 else masking

    t_start = time.perf_counter()

    def save(position: dict) -> None:
        if not dist_info.is_main:
            return
        ckpt.save_atomic({
            "args": run, "method": args.method, "config": config.name, "position": position,
            "mae": unwrap(mae_run).state_dict(), "opt_mae": opt_mae.state_dict(),
            "masking": unwrap(masking_run).state_dict() if masking_run is not None else None,
            "opt_masking": opt_masking.state_dict() if opt_masking is not None else None,
            "rng": ckpt.rng_states(), "wall_time_seconds": wall_before + time.perf_counter() - t_start,
            "epoch_sums": epoch_sums, "final_losses": final_losses, "num_images": len(dataset),
            "eval_paths": eval_paths,
        }, ckpt_path)

    def monitor(epoch: int) -> None:
        if not dist_info.is_main:
            return
        metrics, keep_scores = evaluate_masks(unwrap(mae_run), unwrap(masking_run) if masking_run else None,
                                              eval_images, mask_ratio=args.mask_ratio, seed=0)
        log.write({"type": "monitor", "epoch": epoch, **metrics})
        if keep_scores is not None:
            write_keep_scores(out_dir, epoch, keep_scores, eval_paths, config.grid_size)

    if state is None:
        log.write({"type": "run", "args": run, "num_images": len(dataset), "iters_per_epoch": iters_per_epoch,
                   "eval_images": eval_paths, "eval_held_out": args.eval_data is not None})
        monitor(0)  # epoch_000: at init, before training
        save({"epoch": 0, "iter": 0})

    # --- epoch loop --------------------------------------------------------------------------------
    iters_this_run = 0
    last_save = time.monotonic()
    stop = False
    for epoch in range(start_epoch, args.epochs):
        if args.data_pipeline == "memory":
            loader = build_memory_loader(dataset, batch_size=args.batch_size, seed=args.seed, epoch=epoch,
                                         rank=dist_info.rank, world_size=dist_info.world_size, start_iter=start_iter)
        else:
            loader = build_train_loader(dataset, batch_size=args.batch_size, seed=args.seed, epoch=epoch,
                                        rank=dist_info.rank, world_size=dist_info.world_size, start_iter=start_iter,
                                        num_workers=args.num_workers)
        progress = Progress(epoch=epoch, epochs=args.epochs, total=iters_per_epoch, initial=start_iter,
                            enabled=dist_info.is_main)
        epoch_t0 = time.perf_counter()
        if start_iter == 0:
            epoch_sums = {}

        def on_iteration(iter_done: int, metrics: dict) -> None:
            nonlocal iters_this_run, last_save, stop
            iters_this_run += 1
            for key, value in metrics.items():
                epoch_sums[key] = epoch_sums.get(key, 0.0) + float(value)
            epoch_sums["_count"] = epoch_sums.get("_count", 0.0) + 1
            ips = metrics["batch"] * dist_info.world_size / max(metrics["step_seconds"], 1e-9)
            progress.update(metrics, ips)
            step = epoch * iters_per_epoch + iter_done - 1
            if iter_done % args.log_every == 0 or iter_done == iters_per_epoch:
                log.write({"type": "iter", "epoch": epoch, "iter": iter_done, "step": step,
                           "images_per_second": ips, **metrics})
            mid_epoch = iter_done < iters_per_epoch
            hit_limit = args.stop_after_iters is not None and iters_this_run >= args.stop_after_iters
            if mid_epoch and (hit_limit or time.monotonic() - last_save >= args.checkpoint_every_min * 60):
                save({"epoch": epoch, "iter": iter_done})
                last_save = time.monotonic()
            stop = hit_limit

        train_one_epoch(mae_run=mae_run, masking_run=masking_run, batches=_until(loader, lambda: stop),
                        opt_mae=opt_mae, opt_masking=opt_masking, settings=settings, lr_table=lrs,
                        factor=factors[epoch], epoch=epoch, iters_per_epoch=iters_per_epoch, start_iter=start_iter,
                        device=device, rank=dist_info.rank, on_iteration=on_iteration)
        progress.close()
        done = int(epoch_sums.get("_count", 0))
        if stop and done < iters_per_epoch:
            break
        count = max(epoch_sums.get("_count", 1.0), 1.0)
        means = mean_across_ranks({k: v / count for k, v in epoch_sums.items()
                                   if not k.startswith("_") and k not in ("batch",)})
        final_losses = {k: v for k, v in means.items() if k.startswith("loss_") or k == "keep_score_mean"}
        log.write({"type": "epoch", "epoch": epoch, "wall_seconds": time.perf_counter() - epoch_t0,
                   "iters": iters_per_epoch, "images": iters_per_epoch * args.batch_size * dist_info.world_size,
                   **{f"mean_{k}": v for k, v in means.items()}})
        monitor(epoch + 1)
        start_iter = 0
        save({"epoch": epoch + 1, "iter": 0})
        last_save = time.monotonic()
        if stop:
            break
    if dist_info.world_size > 1:  # DDP invariant: every rank ends with the same parameters
        digests = parameter_digests(unwrap(mae_run), unwrap(masking_run) if masking_run is not None else None)
        log.write({"type": "ddp_check", "world_size": dist_info.world_size, "parameter_sha256": digests,
                   "identical": len(set(digests)) == 1})
        if len(set(digests)) != 1:
            raise AssertionError(f"ranks hold different parameters: {digests}. This is a bug.")
    barrier()
    if dist_info.is_main:
        print(f"done: {out_dir / CHECKPOINT_NAME}", flush=True)
    shutdown()
    return 0


def _until(iterable, should_stop):
    """Yield from iterable until should_stop() is true (checked before each item)."""
    for item in iterable:
        if should_stop():
            return
        yield item


if __name__ == "__main__":
    sys.exit(main())
