"""What released MAE-family checkpoints do not store, read from the code that made them.

A state dict gives every width, depth and patch size, but not the number of attention heads, the
loss target or the evaluation transform. These come from the released code:
- facebookresearch/mae models_mae.py: mae_vit_{base_patch16, large_patch16, huge_patch14}, each with the
  decoder dec512d8b (512 wide, 8 blocks, 16 heads); LayerNorm eps 1e-6; norm-pix epsilon 1e-6 in
  forward_loss; main_pretrain.py --mask_ratio 0.75; util/datasets.py's eval transform.
- ristea/cl-mae models_mae.py: the same encoder and decoder factories, plus MaskingNet(num_heads=4) built
  without a heads argument at every width.
- timm vision_transformer.py: vit_{base,large}_patch16_224.mae point at the MAE files; _cfg crop_pct 0.9,
  bicubic, ImageNet mean/std.
"""

from __future__ import annotations

import math

IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]

# encoder width D -> (heads, the released architectures of that width)
ENCODER_HEADS = {
    768: (12, "ViT-B: mae_vit_base_patch16, timm vit_base_patch16_224"),
    1024: (16, "ViT-L: mae_vit_large_patch16, timm vit_large_patch16_224"),
    1280: (16, "ViT-H: mae_vit_huge_patch14, timm vit_huge_patch14_224"),
}
# decoder width -> (heads, architecture): every released MAE and CL-MAE decoder is dec512d8b
DECODER_HEADS = {512: (16, "MAE decoder dec512d8b (models_mae.py)")}
MASKING_HEADS = (4, "CL-MAE MaskingNet default num_heads=4 (ristea/cl-mae models_mae.py)")

NORM_PIX_EPS = (1e-6, "models_mae.py forward_loss: (var + 1.e-6) ** .5")
MASK_RATIO = (0.75, "main_pretrain.py --mask_ratio default")


def default_eval_transform(fmt: str, image_size: int) -> tuple[dict, str]:
    """The per-format evaluation transform (manifest eval_transform) and where it comes from."""
    if fmt == "timm":
        resize = math.floor(image_size / 0.9)
        origin = (f"timm default: crop_pct 0.9 -> resize floor({image_size} / 0.9) = {resize}, centre crop "
                  f"{image_size}, bicubic, ImageNet mean/std (vit_*_224.mae configs)")
    else:
        crop_pct = 224 / 256 if image_size <= 224 else 1.0
        resize = int(image_size / crop_pct)
        origin = (f"MAE util/datasets.py eval transform: crop_pct {crop_pct:g} -> resize {resize}, centre crop "
                  f"{image_size}, bicubic, ImageNet mean/std")
    spec = {"color_mode": "RGB", "resize_shorter_side": resize, "center_crop": image_size, "interpolation": "bicubic",
            "antialias": True, "mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD)}
    return spec, origin
