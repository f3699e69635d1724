"""Named model configurations; each name spells out the architecture (vit_<size>_p<patch>_<image>).

The masking module's width is always the encoder width D (it has no input projection, spec 2.2).
The GPU configs use the paper's masking module (5 blocks x 4 heads); the 64-pixel CPU configs use
2 blocks x 3 heads, a stated deviation (training/README.md) that keeps CPU training affordable.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class ModelConfig:
    """Architecture and evaluation preprocessing of one named config.

    Args:
        name: the config's name, recorded in the bundle manifest.
        image_size: square input side H = W.
        patch_size: p; the grid is (image_size / p) x (image_size / p), L = grid rows * cols.
        embed_dim, depth, num_heads: encoder width D, blocks and heads.
        decoder_embed_dim, decoder_depth, decoder_num_heads: the MAE decoder.
        masking_depth, masking_num_heads: the CL-MAE masking module (width D).
        mlp_ratio: MLP hidden width / width, everywhere.
        eval_resize_shorter_side, eval_center_crop: the evaluation transform (bicubic, antialias).
    """

    name: str
    image_size: int
    patch_size: int
    embed_dim: int
    depth: int
    num_heads: int
    decoder_embed_dim: int
    decoder_depth: int
    decoder_num_heads: int
    masking_depth: int
    masking_num_heads: int
    mlp_ratio: float = 4.0
    eval_resize_shorter_side: int = 256
    eval_center_crop: int = 224

    def __post_init__(self) -> None:
        if self.image_size % self.patch_size != 0:
            raise ValueError(f"config {self.name}: image_size {self.image_size} not divisible by patch {self.patch_size}")
        for width, heads, what in ((self.embed_dim, self.num_heads, "encoder"),
                                   (self.decoder_embed_dim, self.decoder_num_heads, "decoder"),
                                   (self.embed_dim, self.masking_num_heads, "masking module")):
            if width % heads != 0:
                raise ValueError(f"config {self.name}: {what} width {width} not divisible by {heads} heads")
        if self.embed_dim % 4 != 0 or self.decoder_embed_dim % 4 != 0:
            raise ValueError(f"config {self.name}: 2-D sin-cos embeddings need widths divisible by 4")

    @property
    def grid_size(self) -> int:
        """Patches per side (rows = cols)."""
        return self.image_size // self.patch_size

    @property
    def num_patches(self) -> int:
        """L."""
        return self.grid_size ** 2

    @property
    def patch_dim(self) -> int:
        """p * p * 3, the length of one predicted patch."""
        return self.patch_size * self.patch_size * 3

    def to_dict(self) -> dict:
        return asdict(self)


_CPU_64 = dict(image_size=64, patch_size=8, embed_dim=192, num_heads=3,
               decoder_embed_dim=128, decoder_depth=4, decoder_num_heads=4,
               masking_depth=2, masking_num_heads=3,
               eval_resize_shorter_side=73, eval_center_crop=64)
# The paper's setting for 224-pixel inputs: MAE decoder 512 x 8 blocks x 16 heads, masking module
# 5 blocks x 4 heads at width D (spec 1.9, 2.2). Eval transform: resize 256, centre crop 224.
_GPU_224 = dict(image_size=224, decoder_embed_dim=512, decoder_depth=8, decoder_num_heads=16,
                masking_depth=5, masking_num_heads=4, eval_resize_shorter_side=256, eval_center_crop=224)

CONFIGS: dict[str, ModelConfig] = {
    c.name: c
    for c in (
        # Test-sized: seconds per run on a CPU; used by the test suite and smoke runs, not for serving.
        ModelConfig(name="vit_micro_p4_16", image_size=16, patch_size=4, embed_dim=32, depth=2, num_heads=2,
                    decoder_embed_dim=32, decoder_depth=1, decoder_num_heads=2, masking_depth=1,
                    masking_num_heads=2, eval_resize_shorter_side=18, eval_center_crop=16),
        ModelConfig(name="vit_mini_p8_64", depth=6, **_CPU_64),
        ModelConfig(name="vit_tiny_p8_64", depth=12, **_CPU_64),
        ModelConfig(name="vit_small_p16_224", patch_size=16, embed_dim=384, depth=12, num_heads=6, **_GPU_224),
        ModelConfig(name="vit_base_p16_224", patch_size=16, embed_dim=768, depth=12, num_heads=12, **_GPU_224),
        ModelConfig(name="vit_large_p16_224", patch_size=16, embed_dim=1024, depth=24, num_heads=16, **_GPU_224),
        ModelConfig(name="vit_huge_p14_224", patch_size=14, embed_dim=1280, depth=32, num_heads=16, **_GPU_224),
    )
}


def get_config(name: str) -> ModelConfig:
    """The named config; unknown names fail with the list of valid ones."""
    if name not in CONFIGS:
        raise ValueError(f"unknown config {name!r}; valid: {', '.join(CONFIGS)}")
    return CONFIGS[name]
