"""Does the masking step's sign do what the curriculum claims, with this project's trained MAE?

The model card found that the learned mask's reconstruction error stayed within 1.5% of a random mask's
through the whole run, on the wrong side in both phases. This probe separates the masking module from the
co-training: it freezes the trained CL-MAE's MAE (checkpoint of the main run), starts from its trained
masking module, and trains only the masking module for `--steps` masking steps with λ = +1 (partner) and,
separately, λ = -1 (adversary), every regulariser as in training. Before and after, on `--eval-count`
held-out images, it measures the masked reconstruction error under the learned top-K mask and under
seeded random masks of the same ratio (mean over `--random-draws` draws).

If the method's machinery works, the partner's learned/random ratio falls below the starting one and the
adversary's rises above it. Writes models/runs/curriculum-probe.json, which the model card reads.

    cd training && ../.venv/bin/python tools/curriculum_probe.py    # ~10 min on 2 cores; needs runs/ (checkpoint) and ../shared
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path

import torch

from clmae import checkpoint as ckpt
from clmae.configs import get_config
from clmae.data import AugmentedImages, build_train_loader, build_train_transform, eval_transform_spec, list_images, \
    load_eval_batch, subset
from clmae.engine import StepSettings, build_optimizers, masking_step
from clmae.mae import build_models
from clmae.monitor import evaluate_masks

ROOT = Path(__file__).resolve().parents[2]


def measure(mae, masking, images: torch.Tensor, mask_ratio: float, draws: int) -> dict:
    """Learned-mask error, mean random-mask error over `draws` seeds, their ratio, mean keep score."""
    metrics, _ = evaluate_masks(mae, masking, images, mask_ratio=mask_ratio, seed=0)
    randoms = [metrics["recon_random"]]
    for seed in range(1, draws):  # without the masking module: only the random mask is evaluated
        randoms.append(evaluate_masks(mae, None, images, mask_ratio=mask_ratio, seed=seed)[0]["recon_random"])
    random_mean = sum(randoms) / len(randoms)
    return {"recon_learned": metrics["recon_learned"], "recon_random": random_mean,
            "ratio": metrics["recon_learned"] / random_mean, "keep_score_mean": metrics["keep_score_mean"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, default=ROOT / "runs/clmae-vit-mini-p8-64/checkpoint.pt")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared/data/imagenette",
                        help="folder with train/ (masking steps) and val/ (evaluation)")
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=3.75e-4, help="the main run's peak lr")
    parser.add_argument("--eval-count", type=int, default=256)
    parser.add_argument("--random-draws", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--output", type=Path, default=ROOT / "models/runs/curriculum-probe.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    state = ckpt.load(args.checkpoint)
    run = state["args"]
    config = get_config(state["config"])
    mae, masking0 = build_models(config, "clmae", norm_pix=run["norm_pix"])
    mae.load_state_dict(state["mae"])
    masking0.load_state_dict(state["masking"])
    mae.requires_grad_(False)
    settings = StepSettings(mask_ratio=run["mask_ratio"], lambda_kl=run["lambda_kl"], lambda_div=run["lambda_div"],
                            lambda_gauss=run["lambda_gauss"], kl_reference_batch=run["kl_reference_batch"])
    eval_images, _ = load_eval_batch(args.data / "val", eval_transform_spec(config), count=args.eval_count, seed=1)
    files = subset(list_images(args.data / "train"), run.get("limit_images"), run["seed"])
    dataset = AugmentedImages(files, build_train_transform(config.image_size))

    result = {"checkpoint": str(args.checkpoint.relative_to(ROOT)) if args.checkpoint.is_relative_to(ROOT) else str(args.checkpoint),
              "steps": args.steps, "batch_size": args.batch_size, "lr": args.lr, "eval_images": len(eval_images),
              "random_draws": args.random_draws, "start": measure(mae, masking0, eval_images, settings.mask_ratio, args.random_draws)}
    print("start", json.dumps(result["start"]), flush=True)
    for name, factor in (("partner", 1.0), ("adversary", -1.0)):
        masking = copy.deepcopy(masking0)
        _, opt = build_optimizers(mae, masking, lr=args.lr)
        t0, done, epoch = time.perf_counter(), 0, 0
        while done < args.steps:  # same batches for both signs: the loader is seeded by epoch
            for images in build_train_loader(dataset, batch_size=args.batch_size, seed=0, epoch=epoch, rank=0,
                                             world_size=1, start_iter=0, num_workers=1):
                if done == args.steps:
                    break
                masking_step(masking, mae, images, opt, settings, factor=factor)
                done += 1
            epoch += 1
        result[name] = measure(mae, masking, eval_images, settings.mask_ratio, args.random_draws)
        result[name]["seconds"] = round(time.perf_counter() - t0, 1)
        print(name, json.dumps(result[name]), flush=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
