"""Checkpoints in the released layouts, with random weights: what clmae.import_checkpoint is proven on.

No weights can be downloaded here, so the importer's tests, the service test and the full-size
script write files with the keys and shapes that the released code writes (facebookresearch/mae and
ristea/cl-mae models_mae.py, timm vision_transformer.py; see clmae/checkpoint_layout.py), every tensor
random: LayerNorm weights, pos_embed's class-token row and masking_net.pos_embed included, so that
a key mapped to the wrong place or a dropped row shows up in the outputs.

    .venv/bin/python training/tools/released_checkpoints.py --layout mae-full --width 768 --depth 2 --out ckpt.pth

Layouts:
  mae-encoder       {'model': encoder}                      (mae_pretrain_vit_*.pth)
  mae-full          {'model': encoder + decoder}            (mae_pretrain_vit_*_full.pth, mae_visualize_vit_*.pth)
  mae-training      mae-full + optimizer, epoch, scaler, args (an argparse.Namespace, norm_pix_loss True)
  timm              encoder state dict, no container         (.pth, or .safetensors when --out ends so)
  clmae             {'model': encoder + decoder + masking_net.*}
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

LAYOUTS = ("mae-encoder", "mae-full", "mae-training", "timm", "clmae")
PATCH = {768: 16, 1024: 16, 1280: 14}


def _block(prefix: str, width: int, hidden: int, gen: torch.Generator) -> dict[str, torch.Tensor]:
    def rand(*shape: int, scale: float) -> torch.Tensor:
        return torch.randn(*shape, generator=gen) * scale

    return {
        f"{prefix}.norm1.weight": 1 + rand(width, scale=0.2), f"{prefix}.norm1.bias": rand(width, scale=0.1),
        f"{prefix}.attn.qkv.weight": rand(3 * width, width, scale=width ** -0.5),
        f"{prefix}.attn.qkv.bias": rand(3 * width, scale=0.05),
        f"{prefix}.attn.proj.weight": rand(width, width, scale=width ** -0.5),
        f"{prefix}.attn.proj.bias": rand(width, scale=0.05),
        f"{prefix}.norm2.weight": 1 + rand(width, scale=0.2), f"{prefix}.norm2.bias": rand(width, scale=0.1),
        f"{prefix}.mlp.fc1.weight": rand(hidden, width, scale=width ** -0.5),
        f"{prefix}.mlp.fc1.bias": rand(hidden, scale=0.05),
        f"{prefix}.mlp.fc2.weight": rand(width, hidden, scale=hidden ** -0.5),
        f"{prefix}.mlp.fc2.bias": rand(width, scale=0.05),
    }


def encoder_state(*, width: int, depth: int, patch: int, image_size: int, gen: torch.Generator) -> dict:
    """cls_token, pos_embed (row 0 random too), patch_embed.proj, blocks.i.*, norm: MAE's and timm's encoder keys."""
    num_patches = (image_size // patch) ** 2
    state = {"cls_token": torch.randn(1, 1, width, generator=gen) * 0.5,
             "pos_embed": torch.randn(1, 1 + num_patches, width, generator=gen) * 0.5,
             "patch_embed.proj.weight": torch.randn(width, 3, patch, patch, generator=gen) * (3 * patch ** 2) ** -0.5,
             "patch_embed.proj.bias": torch.randn(width, generator=gen) * 0.05}
    for i in range(depth):
        state.update(_block(f"blocks.{i}", width, 4 * width, gen))
    state["norm.weight"] = 1 + torch.randn(width, generator=gen) * 0.2
    state["norm.bias"] = torch.randn(width, generator=gen) * 0.1
    return state


def decoder_state(*, width: int, decoder_width: int, depth: int, patch: int, num_patches: int,
                  gen: torch.Generator) -> dict:
    """mask_token, decoder_pos_embed, decoder_embed, decoder_blocks.i.*, decoder_norm, decoder_pred (dec512d8b keys)."""
    out = patch * patch * 3
    state = {"mask_token": torch.randn(1, 1, decoder_width, generator=gen) * 0.5,
             "decoder_pos_embed": torch.randn(1, 1 + num_patches, decoder_width, generator=gen) * 0.5,
             "decoder_embed.weight": torch.randn(decoder_width, width, generator=gen) * width ** -0.5,
             "decoder_embed.bias": torch.randn(decoder_width, generator=gen) * 0.05}
    for i in range(depth):
        state.update(_block(f"decoder_blocks.{i}", decoder_width, 4 * decoder_width, gen))
    state.update({"decoder_norm.weight": 1 + torch.randn(decoder_width, generator=gen) * 0.2,
                  "decoder_norm.bias": torch.randn(decoder_width, generator=gen) * 0.1,
                  "decoder_pred.weight": torch.randn(out, decoder_width, generator=gen) * decoder_width ** -0.5,
                  "decoder_pred.bias": torch.randn(out, generator=gen) * 0.05})
    return state


def masking_state(*, width: int, depth: int, num_patches: int, gen: torch.Generator) -> dict:
    """masking_net.{cls_token, pos_embed (1, 1, D), blocks.i.*, mlp_head.0 (LayerNorm), mlp_head.1 (Linear D -> L)}."""
    state = {"masking_net.cls_token": torch.randn(1, 1, width, generator=gen) * 0.5,
             "masking_net.pos_embed": torch.randn(1, 1, width, generator=gen) * 0.5}
    for i in range(depth):
        state.update(_block(f"masking_net.blocks.{i}", width, 4 * width, gen))
    state.update({"masking_net.mlp_head.0.weight": 1 + torch.randn(width, generator=gen) * 0.2,
                  "masking_net.mlp_head.0.bias": torch.randn(width, generator=gen) * 0.1,
                  "masking_net.mlp_head.1.weight": torch.randn(num_patches, width, generator=gen) * width ** -0.5,
                  "masking_net.mlp_head.1.bias": torch.randn(num_patches, generator=gen) * 0.05})
    return state


def training_extras(state: dict, width: int) -> dict:
    """optimizer (AdamW state of two tensors), epoch, scaler and args, as main_pretrain.py's save_model writes them."""
    names = list(state)[:2]
    optimizer = {"state": {i: {"step": torch.tensor(120.0), "exp_avg": torch.zeros_like(state[n]),
                               "exp_avg_sq": torch.zeros_like(state[n])} for i, n in enumerate(names)},
                 "param_groups": [{"lr": 1.2e-3, "betas": (0.9, 0.95), "eps": 1e-8, "weight_decay": 0.05,
                                   "amsgrad": False, "params": list(range(len(names)))}]}
    names = {768: "mae_vit_base_patch16", 1024: "mae_vit_large_patch16", 1280: "mae_vit_huge_patch14"}
    model = names.get(width, "custom")
    args = argparse.Namespace(batch_size=64, epochs=800, accum_iter=1, model=model, input_size=224, mask_ratio=0.75,
                              norm_pix_loss=True, weight_decay=0.05, lr=None, blr=1.5e-4, min_lr=0.0,
                              warmup_epochs=40, data_path="/datasets01/imagenet_full_size/061417/",
                              output_dir="./output_dir", log_dir="./output_dir", device="cuda", seed=0, resume="",
                              start_epoch=0, num_workers=10, pin_mem=True, world_size=64, local_rank=-1,
                              dist_on_itp=False, dist_url="env://", distributed=True)
    scaler = {"scale": 65536.0, "growth_factor": 2.0, "backoff_factor": 0.5, "growth_interval": 2000,
              "_growth_tracker": 17}
    return {"optimizer": optimizer, "epoch": 799, "scaler": scaler, "args": args}


def build_checkpoint(layout: str, *, width: int, depth: int, decoder_depth: int = 2, masking_depth: int = 2,
                     image_size: int = 224, decoder_width: int = 512, seed: int = 0) -> dict:
    """The object the released code would torch.save for `layout` (a bare state dict for timm)."""
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; valid: {', '.join(LAYOUTS)}")
    gen = torch.Generator().manual_seed(seed)
    patch = PATCH.get(width, 16)
    num_patches = (image_size // patch) ** 2
    state = encoder_state(width=width, depth=depth, patch=patch, image_size=image_size, gen=gen)
    if layout == "timm":
        return state
    if layout != "mae-encoder":
        state.update(decoder_state(width=width, decoder_width=decoder_width, depth=decoder_depth, patch=patch,
                                   num_patches=num_patches, gen=gen))
    if layout == "clmae":
        state.update(masking_state(width=width, depth=masking_depth, num_patches=num_patches, gen=gen))
    checkpoint = {"model": state}
    if layout == "mae-training":
        checkpoint.update(training_extras(state, width))
    return checkpoint


def save_checkpoint(checkpoint: dict, path: Path) -> None:
    """torch.save, or safetensors for a bare state dict written to *.safetensors."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in checkpoint.items()}, str(path))
    else:
        torch.save(checkpoint, path)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--layout", required=True, choices=LAYOUTS)
    p.add_argument("--width", type=int, default=768,
                   help="encoder width D: 768 (ViT-B/16), 1024 (ViT-L/16), 1280 (ViT-H/14)")
    p.add_argument("--depth", type=int, default=2, help="encoder blocks (ViT-B 12, ViT-L 24, ViT-H 32)")
    p.add_argument("--decoder-depth", type=int, default=2, help="decoder blocks (released: 8)")
    p.add_argument("--masking-depth", type=int, default=2, help="masking module blocks (CL-MAE: 5)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="file to write (.pth, or .safetensors with --layout timm)")
    a = p.parse_args(argv)
    checkpoint = build_checkpoint(a.layout, width=a.width, depth=a.depth, decoder_depth=a.decoder_depth,
                                  masking_depth=a.masking_depth, seed=a.seed)
    save_checkpoint(checkpoint, Path(a.out))
    print(f"wrote {a.out} ({a.layout}, width {a.width}, depth {a.depth})")


if __name__ == "__main__":
    main()
