"""The state-dict layout of released MAE-family checkpoints, checked key by key, and mapped onto this project's modules.

Key names and shapes, read from facebookresearch/mae and ristea/cl-mae models_mae.py and timm
vision_transformer.py (D encoder width, Dd decoder width, L patches, p patch size, H MLP width):
  encoder  cls_token (1, 1, D), pos_embed (1, 1+L, D), patch_embed.proj.weight (D, 3, p, p) and .bias (D),
           blocks.i.*, norm.weight / .bias (D)
  decoder  mask_token (1, 1, Dd), decoder_pos_embed (1, 1+L, Dd), decoder_embed (Dd, D), decoder_blocks.i.*,
           decoder_norm (Dd), decoder_pred (p*p*3, Dd)
  masking  masking_net.cls_token (1, 1, D), masking_net.pos_embed (1, 1, D), masking_net.blocks.i.*,
           masking_net.mlp_head.0 (LayerNorm D), masking_net.mlp_head.1 (Linear D -> L); .2 is the Sigmoid
  block i  norm1, attn.qkv (3D, D) with bias, attn.proj (D, D), norm2, mlp.fc1 (H, D), mlp.fc2 (D, H)
The released forwards add pos_embed[:, 0] to the class token (MAE: cls_token + pos_embed[:, :1]; timm:
concatenate, then add the whole table; MaskingNet: cls_token + its (1, 1, D) pos_embed). This project's
encoder and masking module add no position to their class token, so that row is folded into it.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import torch
from torch import nn

from clmae.masking import MaskingModule
from clmae.vit import Decoder, Encoder, PatchStem

FORMATS = ("mae", "timm", "clmae")
# the parts each format may hold, and the ones it must hold
ALLOWED_PARTS = {"mae": ("encoder", "decoder"), "timm": ("encoder",), "clmae": ("encoder", "decoder", "masking")}
REQUIRED_PARTS = {"mae": ("encoder",), "timm": ("encoder",), "clmae": ("encoder", "masking")}
PART_PREFIXES = {"decoder": ("mask_token", "decoder_"), "masking": ("masking_net.",)}


class CheckpointKeyError(ValueError):
    """A key is missing, unexpected or of the wrong shape; the message names every such key."""


@dataclass(frozen=True)
class Stack:
    """One transformer stack as the state dict describes it."""

    width: int
    depth: int
    mlp_hidden: int

    @property
    def mlp_ratio(self) -> float:
        return self.mlp_hidden / self.width


@dataclass(frozen=True)
class Layout:
    """What the keys and shapes of a state dict say; `origin` says where each value was read."""

    image_size: int
    patch_size: int
    encoder: Stack
    decoder: Stack | None
    masking: Stack | None
    origin: dict[str, str] = field(default_factory=dict)

    @property
    def grid_size(self) -> int:
        return self.image_size // self.patch_size

    @property
    def num_patches(self) -> int:
        return self.grid_size ** 2


def _shape(state: dict, key: str) -> tuple[int, ...]:
    if key not in state:
        raise CheckpointKeyError(f"missing key {key}")
    return tuple(state[key].shape)


def _depth(state: dict, prefix: str) -> int:
    """1 + the largest i of the keys `{prefix}.i.*` (holes show up later as missing keys)."""
    pattern = re.compile(rf"^{re.escape(prefix)}\.(\d+)\.")
    indices = [int(m.group(1)) for key in state if (m := pattern.match(key))]
    if not indices:
        raise CheckpointKeyError(f"missing key {prefix}.0.norm1.weight (no {prefix}.* keys)")
    return max(indices) + 1


def _stack(state: dict, prefix: str, width: int, origin: dict, name: str) -> Stack:
    depth = _depth(state, prefix)
    fc1 = f"{prefix}.0.mlp.fc1.weight"
    hidden = _shape(state, fc1)[0]
    origin[f"{name}depth"] = f"checkpoint: {prefix}.0 to {prefix}.{depth - 1}"
    origin[f"{name}mlp_ratio"] = f"checkpoint: {fc1} {tuple(state[fc1].shape)}"
    return Stack(width=width, depth=depth, mlp_hidden=hidden)


def refuse_fc_norm(state: dict) -> None:
    """Checkpoints fine-tuned with global average pooling replace norm with fc_norm: not this encoder."""
    keys = sorted(k for k in state if k.startswith("fc_norm."))
    if keys:
        raise CheckpointKeyError(
            f"the checkpoint has {', '.join(keys)}: fc_norm belongs to a ViT fine-tuned with global average pooling "
            "(norm moved after the pooling), not to a pre-trained MAE encoder; only checkpoints whose encoder ends in "
            "norm.* (class token after the final LayerNorm) can be imported")


def read_layout(state: dict, fmt: str) -> Layout:
    """Widths, depths, patch and image size from the keys and shapes of `state` (format `fmt`)."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; valid: {', '.join(FORMATS)}")
    refuse_fc_norm(state)
    origin: dict[str, str] = {}
    width = _shape(state, "cls_token")[-1]
    origin["embed_dim"] = f"checkpoint: cls_token {_shape(state, 'cls_token')}"
    proj = _shape(state, "patch_embed.proj.weight")
    if len(proj) != 4 or proj[1] != 3 or proj[2] != proj[3]:
        raise CheckpointKeyError(f"wrong shape: patch_embed.proj.weight {proj} (expected (D, 3, p, p))")
    patch = proj[2]
    origin["patch_size"] = f"checkpoint: patch_embed.proj.weight {proj}"
    pos = _shape(state, "pos_embed")
    grid = math.isqrt(max(pos[1] - 1, 0)) if len(pos) == 3 else 0
    if len(pos) != 3 or grid < 1 or grid * grid != pos[1] - 1:
        raise CheckpointKeyError(
            f"wrong shape: pos_embed {pos} (expected (1, 1 + g*g, D): one class-token row, then a square grid; "
            "timm models with no_embed_class or register tokens are not supported)")
    origin["image_size"] = f"checkpoint: pos_embed {pos} -> {grid} x {grid} patches of {patch} px"
    encoder = _stack(state, "blocks", width, origin, "")
    present = {"encoder"} | {part for part, prefixes in PART_PREFIXES.items()
                             if any(k.startswith(prefixes) for k in state)}
    allowed, required = ALLOWED_PARTS[fmt], REQUIRED_PARTS[fmt]
    decoder = masking = None
    if "decoder" in present and "decoder" in allowed:
        dd = _shape(state, "decoder_embed.weight")[0]
        origin["decoder_embed_dim"] = f"checkpoint: decoder_embed.weight {_shape(state, 'decoder_embed.weight')}"
        decoder = _stack(state, "decoder_blocks", dd, origin, "decoder_")
    if "masking" in required or ("masking" in present and "masking" in allowed):
        _shape(state, "masking_net.cls_token")
        masking = _stack(state, "masking_net.blocks", width, origin, "masking_")
    return Layout(image_size=grid * patch, patch_size=patch, encoder=encoder, decoder=decoder, masking=masking,
                  origin=origin)


def _block_shapes(prefix: str, stack: Stack) -> dict[str, tuple[int, ...]]:
    d, h = stack.width, stack.mlp_hidden
    shapes = {}
    for i in range(stack.depth):
        b = f"{prefix}.{i}."
        shapes.update({
            b + "norm1.weight": (d,), b + "norm1.bias": (d,),
            b + "attn.qkv.weight": (3 * d, d), b + "attn.qkv.bias": (3 * d,),
            b + "attn.proj.weight": (d, d), b + "attn.proj.bias": (d,),
            b + "norm2.weight": (d,), b + "norm2.bias": (d,),
            b + "mlp.fc1.weight": (h, d), b + "mlp.fc1.bias": (h,),
            b + "mlp.fc2.weight": (d, h), b + "mlp.fc2.bias": (d,),
        })
    return shapes


def expected_shapes(layout: Layout) -> dict[str, dict[str, tuple[int, ...]]]:
    """Every key the released code writes for this layout, with its shape, by exported graph.

    'encoder' and 'keep_scores' both hold the patch stem (each graph stands alone).
    """
    d, p, num_patches = layout.encoder.width, layout.patch_size, layout.num_patches
    stem = {"patch_embed.proj.weight": (d, 3, p, p), "patch_embed.proj.bias": (d,),
            "pos_embed": (1, 1 + num_patches, d)}
    graphs = {"encoder": {**stem, "cls_token": (1, 1, d), **_block_shapes("blocks", layout.encoder),
                          "norm.weight": (d,), "norm.bias": (d,)}}
    if layout.decoder is not None:
        dd = layout.decoder.width
        graphs["decoder"] = {"mask_token": (1, 1, dd), "decoder_pos_embed": (1, 1 + num_patches, dd),
                             "decoder_embed.weight": (dd, d), "decoder_embed.bias": (dd,),
                             **_block_shapes("decoder_blocks", layout.decoder),
                             "decoder_norm.weight": (dd,), "decoder_norm.bias": (dd,),
                             "decoder_pred.weight": (p * p * 3, dd), "decoder_pred.bias": (p * p * 3,)}
    if layout.masking is not None:
        graphs["keep_scores"] = {**stem, "masking_net.cls_token": (1, 1, d), "masking_net.pos_embed": (1, 1, d),
                                 **_block_shapes("masking_net.blocks", layout.masking),
                                 "masking_net.mlp_head.0.weight": (d,), "masking_net.mlp_head.0.bias": (d,),
                                 "masking_net.mlp_head.1.weight": (num_patches, d),
                                 "masking_net.mlp_head.1.bias": (num_patches,)}
    return graphs


def _hint(key: str, fmt: str) -> str:
    if key.startswith("masking_net.") and fmt != "clmae":
        return " (the CL-MAE masking module: use --format clmae)"
    if key.startswith(PART_PREFIXES["decoder"]) and fmt == "timm":
        return " (an MAE decoder: timm state dicts are encoder-only; use --format mae)"
    if key.startswith("head."):
        return " (a classification head: this service serves the pre-trained encoder)"
    return ""


def check_keys(state: dict, expected: dict[str, tuple[int, ...]], fmt: str) -> None:
    """Raise CheckpointKeyError naming every missing key, unexpected key and wrong shape."""
    problems = []
    missing = [k for k in expected if k not in state]
    if missing:
        problems.append("missing keys: " + ", ".join(missing))
    unexpected = sorted(k for k in state if k not in expected)
    if unexpected:
        problems.append("unexpected keys: " + ", ".join(k + _hint(k, fmt) for k in unexpected))
    wrong = [f"{k} {tuple(state[k].shape)} (expected {shape})" for k, shape in expected.items()
             if k in state and tuple(state[k].shape) != shape]
    if wrong:
        problems.append("wrong shapes: " + ", ".join(wrong))
    not_float = [k for k in expected
                 if k in state and not (isinstance(state[k], torch.Tensor) and state[k].is_floating_point())]
    if not_float:
        problems.append("not floating-point tensors: " + ", ".join(not_float))
    if problems:
        raise CheckpointKeyError("; ".join(problems))


@dataclass(frozen=True)
class ImportedArchitecture:
    """The architecture of an imported checkpoint: the layout plus the head counts decided for it.

    Has ModelConfig's geometry (image_size, embed_dim, num_patches, patch_dim) for export.tensor_specs.
    """

    layout: Layout
    num_heads: int
    decoder_num_heads: int | None
    masking_num_heads: int | None

    @property
    def image_size(self) -> int:
        return self.layout.image_size

    @property
    def patch_size(self) -> int:
        return self.layout.patch_size

    @property
    def embed_dim(self) -> int:
        return self.layout.encoder.width

    @property
    def grid_size(self) -> int:
        return self.layout.grid_size

    @property
    def num_patches(self) -> int:
        return self.layout.num_patches

    @property
    def patch_dim(self) -> int:
        """p * p * 3."""
        return self.layout.patch_size ** 2 * 3


class ImportedModel(nn.Module):
    """The parts of a released checkpoint as this project's modules (decoder and masking may be None)."""

    def __init__(self, arch: ImportedArchitecture) -> None:
        super().__init__()
        layout = arch.layout
        self.stem = PatchStem(image_size=layout.image_size, patch_size=layout.patch_size,
                              embed_dim=layout.encoder.width)
        self.encoder = Encoder(embed_dim=layout.encoder.width, depth=layout.encoder.depth, num_heads=arch.num_heads,
                               mlp_ratio=layout.encoder.mlp_ratio)
        self.decoder = None if layout.decoder is None else Decoder(
            num_patches=layout.num_patches, grid_size=layout.grid_size, embed_dim=layout.encoder.width,
            decoder_embed_dim=layout.decoder.width, depth=layout.decoder.depth, num_heads=arch.decoder_num_heads,
            mlp_ratio=layout.decoder.mlp_ratio, patch_dim=arch.patch_dim)
        self.masking = None if layout.masking is None else MaskingModule(
            num_patches=layout.num_patches, embed_dim=layout.encoder.width, depth=layout.masking.depth,
            num_heads=arch.masking_num_heads, mlp_ratio=layout.masking.mlp_ratio)


# checkpoint key prefix -> ImportedModel key prefix; the class tokens and pos_embed are computed below
RENAMES = (
    ("patch_embed.proj.", "stem.proj."), ("blocks.", "encoder.blocks."), ("norm.", "encoder.norm."),
    ("mask_token", "decoder.mask_token"), ("decoder_pos_embed", "decoder.pos_embed"),
    ("decoder_embed.", "decoder.embed."), ("decoder_blocks.", "decoder.blocks."), ("decoder_norm.", "decoder.norm."),
    ("decoder_pred.", "decoder.pred."), ("masking_net.blocks.", "masking.blocks."),
    ("masking_net.mlp_head.0.", "masking.norm."), ("masking_net.mlp_head.1.", "masking.head."),
)


def map_state_dict(state: dict) -> dict[str, torch.Tensor]:
    """A checked checkpoint state dict -> ImportedModel's state dict (float32), class-token rows folded."""
    out = {}
    for key, value in state.items():
        for src, dst in RENAMES:
            if key.startswith(src):
                out[dst + key[len(src):]] = value.float()
                break
    pos = state["pos_embed"].float()  # (1, 1+L, D)
    out["encoder.cls_token"] = state["cls_token"].float() + pos[:, :1]
    out["stem.pos_embed"] = torch.cat([torch.zeros_like(pos[:, :1]), pos[:, 1:]], dim=1)  # row 0 now lives in cls
    if "masking_net.cls_token" in state:
        out["masking.cls_token"] = state["masking_net.cls_token"].float() + state["masking_net.pos_embed"].float()
    return out


def build_model(arch: ImportedArchitecture, state: dict) -> ImportedModel:
    """ImportedModel holding the checkpoint's tensors (built on the meta device, so no weights are allocated twice)."""
    for stack in filter(None, (arch.layout.encoder, arch.layout.decoder, arch.layout.masking)):
        if int(stack.width * stack.mlp_ratio) != stack.mlp_hidden:
            raise ValueError(f"MLP width {stack.mlp_hidden} is not int(width {stack.width} x ratio); not supported")
    with torch.device("meta"):
        model = ImportedModel(arch)
    model.load_state_dict(map_state_dict(state), strict=True, assign=True)
    return model.eval()
