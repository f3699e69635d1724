"""One CL-MAE iteration and one epoch (spec 4.1 with the recommendations A2, A8, A9, A10).

Iteration: (1) set the lr of both optimizers from the table; (2) MAE step on hard masks (top-K of
the masking module's keep scores, computed under no_grad; random masks for --method mae);
(3) masking step on the same batch with the MAE frozen (requires_grad off, so no MAE gradient is
computed or all-reduced) and the soft gating path. No argparse and no file I/O here.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from typing import Callable, Iterable

import torch
from torch import nn

from clmae import losses
from clmae.selection import gate_tokens, identity_restore, num_kept, select_random, select_topk
from clmae.vit import Block


@dataclass(frozen=True)
class StepSettings:
    """Settings of both steps.

    Args:
        mask_ratio: r; K = floor(L * (1 - r)) patches kept; the KL target keep ratio is 1 - r.
        lambda_kl, lambda_div, lambda_gauss: regulariser weights of the masking step.
        kl_reference_batch: the KL term is mean x this (256 = the official per-GPU batch; spec A3).
        seed: base seed of the MAE's random masks (noise drawn per global step and rank).
        set_to_none: zero_grad(set_to_none=...); False with a single optimizer reproduces the official
            code's PyTorch-1.x "ghost" updates of the frozen part (spec 4.2, A2).
    """

    mask_ratio: float = 0.75
    lambda_kl: float = 0.1
    lambda_div: float = 2.0
    lambda_gauss: float = 1.0
    kl_reference_batch: int = 256
    seed: int = 0
    set_to_none: bool = True


def build_optimizers(mae: nn.Module, masking: nn.Module | None, *, lr: float, weight_decay: float = 0.05,
                     betas: tuple[float, float] = (0.9, 0.95), single: bool = False,
                     fused: bool | None = None) -> tuple[torch.optim.AdamW, torch.optim.AdamW | None]:
    """Two AdamW optimizers (spec A2) with MAE's weight-decay rule: no decay for 1-D params and biases.

    single=True returns one AdamW over both parts, twice (the official code's setup, for the
    faithful_ghost_updates ablation). fused (default: on where the parameters live on CPU or CUDA)
    selects PyTorch's fused AdamW kernel: one call per step instead of about ten small ops per
    parameter tensor, which on a busy 2-core CPU cost more than the fused kernel (training/README.md).
    """
    if fused is None:
        fused = all(p.device.type in ("cpu", "cuda") for p in mae.parameters())
    fused = fused or None  # AdamW's own default when off (for-each on CUDA, a for-loop on CPU)

    def groups(module: nn.Module) -> list[dict]:
        decay, no_decay = [], []
        for name, param in module.named_parameters():
            if not param.requires_grad:
                continue
            (no_decay if param.ndim <= 1 or name.endswith(".bias") else decay).append(param)
        return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]

    if single and masking is not None:
        both = [{"params": a["params"] + b["params"], "weight_decay": a["weight_decay"]}
                for a, b in zip(groups(mae), groups(masking))]
        opt = torch.optim.AdamW(both, lr=lr, betas=betas, fused=fused)
        return opt, opt
    opt_mae = torch.optim.AdamW(groups(mae), lr=lr, betas=betas, fused=fused)
    opt_masking = torch.optim.AdamW(groups(masking), lr=lr, betas=betas, fused=fused) if masking is not None else None
    return opt_mae, opt_masking


def compile_blocks(*modules: nn.Module | None) -> int:
    """torch.compile every transformer Block of the given modules in place; returns how many.

    Block by block (not the whole step): the blocks are where the time goes, their state_dict keys
    stay unchanged (checkpoints and export are unaffected), and the two steps' different sequence
    lengths and frozen/trainable states only add a few graphs per block.
    """
    blocks = [m for module in modules if module is not None for m in module.modules() if isinstance(m, Block)]
    for block in blocks:
        block.compile()
    return len(blocks)


def autocast_for(device: torch.device) -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA (no GradScaler needed); plain fp32 on CPU."""
    if device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def mask_noise(batch: int, num_patches: int, *, seed: int, step: int, rank: int) -> torch.Tensor:
    """MAE noise (N, L) from a generator seeded by (seed, global step, rank): exact across resume."""
    gen = torch.Generator().manual_seed((seed * 1_000_003 + step) * 1009 + rank)
    return torch.rand(batch, num_patches, generator=gen)


@contextlib.contextmanager
def frozen(module: nn.Module):
    """Turn requires_grad off for every parameter of module, restoring the previous flags after."""
    flags = [(p, p.requires_grad) for p in module.parameters()]
    for p, _ in flags:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)


def unwrap(module: nn.Module) -> nn.Module:
    """The inner module of a DDP wrapper (or the module itself)."""
    return module.module if hasattr(module, "module") else module


def mae_step(mae_run: nn.Module, masking_run: nn.Module | None, images: torch.Tensor,
             optimizer: torch.optim.Optimizer, settings: StepSettings, *, step: int, rank: int = 0) -> dict:
    """One MAE update on hard masks. mae_run / masking_run may be DDP-wrapped. images (N, 3, H, W)."""
    mae = unwrap(mae_run)
    n, num_patches = images.shape[0], mae.config.num_patches
    k = num_kept(num_patches, settings.mask_ratio)
    out: dict = {}
    with torch.no_grad():
        if masking_run is not None:
            # A8: the masking module is only evaluated here (its inner module, so DDP sees no call).
            with autocast_for(images.device):
                keep_scores = unwrap(masking_run)(mae.forward_tokens(images))  # (N, L)
            ids_keep, ids_restore, mask = select_topk(keep_scores, k)
            out["keep_score_mean"] = keep_scores.mean().item()
        else:
            noise = mask_noise(n, num_patches, seed=settings.seed, step=step, rank=rank).to(images.device)
            ids_keep, ids_restore, mask = select_random(noise, k)
        target = mae.forward_target(images)  # (N, L, p*p*3) fp32
    with autocast_for(images.device):
        pred = mae_run(images, ids_keep, ids_restore)  # (N, L, p*p*3)
    loss = losses.masked_mse(pred, target, mask)
    if not torch.isfinite(loss):
        raise FloatingPointError(f"MAE loss is {loss.item()} at step {step}")
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=settings.set_to_none)
    out["loss_mae"] = loss.item()
    return out


def masking_step(masking_run: nn.Module, mae: nn.Module, images: torch.Tensor, optimizer: torch.optim.Optimizer,
                 settings: StepSettings, *, factor: float) -> dict:
    """One masking-module update (spec 2.4, 3.7) with the MAE frozen; factor = curriculum lambda(e)."""
    mae = unwrap(mae)
    with frozen(mae):
        with torch.no_grad():
            tokens = mae.forward_tokens(images)  # (N, L, D); stem frozen in this step (spec 2.5)
            target = mae.forward_target(images)  # (N, L, p*p*3)
        with autocast_for(images.device):
            keep_scores = masking_run(tokens)  # (N, L) fp32
            gated = gate_tokens(tokens, keep_scores)  # (N, L, D), all L kept
            latent = mae.encoder.forward_sequence(gated)  # (N, 1+L, D)
            restore = identity_restore(images.shape[0], mae.config.num_patches, images.device)
            pred = mae.forward_decoder(latent, restore)  # (N, L, p*p*3), zero mask tokens used
        rec = losses.weighted_reconstruction(pred, target, keep_scores)
        gauss = losses.gauss_binarisation(keep_scores)
        kl = losses.kl_ratio(keep_scores, 1.0 - settings.mask_ratio, settings.kl_reference_batch)
        div = losses.diversity(keep_scores)
        total = factor * rec + settings.lambda_gauss * gauss + settings.lambda_kl * kl + settings.lambda_div * div
        if not torch.isfinite(total):
            raise FloatingPointError(f"masking loss is {total.item()}")
        total.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=settings.set_to_none)
    return {"loss_masking": total.item(), "loss_rec_weighted": rec.item(), "loss_gauss": gauss.item(),
            "loss_kl": kl.item(), "loss_div": div.item(), "keep_score_mean_soft": keep_scores.mean().item()}


def train_one_epoch(*, mae_run: nn.Module, masking_run: nn.Module | None, batches: Iterable[torch.Tensor],
                    opt_mae: torch.optim.Optimizer, opt_masking: torch.optim.Optimizer | None,
                    settings: StepSettings, lr_table: list[float], factor: float, epoch: int,
                    iters_per_epoch: int, start_iter: int, device: torch.device, rank: int = 0,
                    on_iteration: Callable[[int, dict], None] | None = None) -> None:
    """Run iterations start_iter .. iters_per_epoch - 1 of `epoch`.

    on_iteration(iter_done, metrics) is called after each iteration (iter_done = iterations of this
    epoch completed); the caller logs and checkpoints there.
    """
    mae_run.train()
    if masking_run is not None:
        masking_run.train()
    it = start_iter
    for images in batches:
        if it >= iters_per_epoch:
            break
        t0 = time.perf_counter()
        step = epoch * iters_per_epoch + it
        lr = lr_table[step]
        for opt in {id(o): o for o in (opt_mae, opt_masking) if o is not None}.values():  # may be one object
            for group in opt.param_groups:
                group["lr"] = lr
        images = images.to(device, non_blocking=True)
        metrics = {"lr": lr, "curriculum_factor": factor}
        metrics.update(mae_step(mae_run, masking_run, images, opt_mae, settings, step=step, rank=rank))
        if masking_run is not None:
            metrics.update(masking_step(masking_run, mae_run, images, opt_masking, settings, factor=factor))
        metrics["step_seconds"] = time.perf_counter() - t0
        metrics["batch"] = images.shape[0]
        it += 1
        if on_iteration is not None:
            on_iteration(it, metrics)
