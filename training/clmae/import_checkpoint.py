"""Turn a released MAE-family checkpoint into a model bundle (manifest format 2) that the service serves.

    .venv/bin/python -m clmae.import_checkpoint --format mae --checkpoint mae_pretrain_vit_base.pth \\
        --output models/mae-vit-base-p16-224
    .venv/bin/python -m clmae.import_checkpoint --format mae --checkpoint mae_visualize_vit_large.pth \\
        --norm-pix-loss false --output models/mae-visualize-vit-large-p16-224
    .venv/bin/python -m clmae.import_checkpoint --format timm --checkpoint model.safetensors \\
        --output models/vit-base-mae
    .venv/bin/python -m clmae.import_checkpoint --format clmae --checkpoint checkpoint-199.pth \\
        --output models/clmae-vit-base

Formats (the file layouts of the released code):
  mae    facebookresearch/mae {'model': state dict}: mae_pretrain_vit_*.pth (encoder only), *_full.pth and
         mae_visualize_vit_*.pth (encoder and decoder), or a training checkpoint that also holds optimizer,
         epoch, scaler and args (an argparse.Namespace).
  timm   a bare timm ViT state dict, .safetensors or .pth (e.g. vit_base_patch16_224.mae): encoder only.
  clmae  the official CL-MAE code's checkpoints: the mae layout plus masking_net.* (the keep_scores graph).

The file is read with torch.load(weights_only=True), allowing argparse.Namespace and nothing else.
Every key is checked against the layout the released code writes: each missing key, unexpected key
and wrong shape is an error that names the key (checkpoint_layout.py). What the weights cannot tell
is decided here and recorded, with where it came from, in the manifest's `architecture` block: heads
from the released architectures (768/12, 1024/16, 1280/16; decoder 512/16; masking module 4) or
--num-heads / --decoder-num-heads / --masking-num-heads; norm_pix from the checkpoint's
args.norm_pix_loss or --norm-pix-loss, required for any checkpoint with a decoder; the eval transform
from the format (mae, clmae: resize 256 -> crop 224; timm: crop_pct 0.9) unless --eval-* says otherwise.
The graphs are exported and checked against PyTorch like clmae.export's (export.export_bundle).
One ONNX file is one protobuf, limited to 2 GB: a graph whose weights pass that (ViT-H/14's encoder: 631 M
parameters, 2.52 GB of float32) keeps them in `<graph>.onnx.data` beside it, listed with its own sha256 under
the graph's external_data in the manifest (--external-data does this for every graph).
"""

from __future__ import annotations

import argparse
import json
import math
import pickle
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

from clmae import export, released
from clmae.checkpoint_layout import (FORMATS, CheckpointKeyError, ImportedArchitecture, ImportedModel, Layout,
                                     build_model, check_keys, expected_shapes, read_layout)
from clmae.export_graphs import build_graphs

FORMAT_VERSION = 2
TRAINING_CHECKPOINT_KEYS = ("optimizer", "epoch", "scaler", "args")
PROTOBUF_LIMIT_BYTES = 2 ** 31  # one ONNX file is one protobuf message
GRAPH_STRUCTURE_MARGIN_BYTES = 64 * 2 ** 20  # room for the nodes and names next to the weights
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")  # the manifest schema's bundle name


def load_file(path: Path) -> object:
    """The checkpoint object: safetensors for .safetensors, else torch.load(weights_only=True) + argparse.Namespace."""
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file as load_safetensors

        return load_safetensors(str(path))
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise ValueError(f"{path}: torch.load(weights_only=True) refused it; only tensors, plain containers and "
                         f"argparse.Namespace are allowed ({str(error).splitlines()[0]})") from error


def _json_value(value: object) -> object:
    """A JSON-safe copy of one argparse value (non-finite floats and other objects become strings)."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, (list, tuple)):
        return [_json_value(v) for v in value]
    return str(value)


def split_checkpoint(obj: object, fmt: str, path: Path) -> tuple[dict, argparse.Namespace | None, dict]:
    """(state dict, the training args or None, the manifest's source fields that describe the file)."""
    if fmt == "timm":
        if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
            keys = sorted(obj) if isinstance(obj, dict) else type(obj).__name__
            raise ValueError(f"{path}: --format timm expects a bare state dict (name -> tensor); found {keys} "
                             "(a {'model': ...} checkpoint is --format mae or clmae)")
        return obj, None, {"layout": f"bare state dict ({len(obj)} tensors)"}
    if not isinstance(obj, dict) or "model" not in obj or not isinstance(obj["model"], dict):
        keys = sorted(map(str, obj)) if isinstance(obj, dict) else type(obj).__name__
        raise ValueError(f"{path}: --format {fmt} expects {{'model': state dict, ...}} as facebookresearch/mae writes "
                         f"it; found {keys}")
    extra = sorted(str(k) for k in obj if k not in ("model", *TRAINING_CHECKPOINT_KEYS))
    if extra:
        raise CheckpointKeyError(f"unexpected top-level keys: {', '.join(extra)} (a released checkpoint holds model; "
                                 f"a training checkpoint also {', '.join(TRAINING_CHECKPOINT_KEYS)})")
    args = obj.get("args")
    if args is not None and not isinstance(args, argparse.Namespace):
        raise ValueError(f"{path}: args is a {type(args).__name__}, expected an argparse.Namespace")
    source: dict = {"layout": "{" + ", ".join(repr(k) for k in obj) + "}"}
    if isinstance(obj.get("epoch"), int):
        source["epoch"] = obj["epoch"]
    if args is not None:
        source["args"] = {k: _json_value(v) for k, v in sorted(vars(args).items())}
    return obj["model"], args, source


def _decided(value: object, origin: str) -> dict:
    return {"value": value, "from": origin}


def decide_heads(width: int, flag: int | None, flag_name: str, table: dict, what: str) -> tuple[int, str]:
    """Heads from the flag, else from the released architectures of this width; width must divide."""
    if flag is not None:
        heads, origin = flag, f"{flag_name} {flag}"
    elif width in table:
        heads, arch = table[width]
        origin = f"released architectures: {what} width {width} -> {heads} heads ({arch})"
    else:
        known = ", ".join(f"{w}/{h}" for w, (h, _) in table.items())
        raise ValueError(f"no released architecture has {what} width {width} (width/heads: {known}); "
                         f"give {flag_name}")
    if heads < 1 or width % heads != 0:
        raise ValueError(f"{what} width {width} is not divisible by {heads} heads ({origin})")
    return heads, origin


def decide_norm_pix(has_decoder: bool, args: argparse.Namespace | None, flag: bool | None) -> tuple[bool | None, str]:
    """The decoder's target: args.norm_pix_loss or --norm-pix-loss; required with a decoder."""
    if not has_decoder:
        if flag is not None:
            raise ValueError("--norm-pix-loss: the checkpoint has no decoder, so it has no reconstruction target")
        return None, "no decoder"
    stored = getattr(args, "norm_pix_loss", None) if args is not None else None
    if flag is None and stored is None:
        raise ValueError("the checkpoint has a decoder but does not say what it predicts: give --norm-pix-loss true "
                         "(normalised pixels, e.g. mae_pretrain_vit_*_full.pth) or false (raw pixels, e.g. "
                         "mae_visualize_vit_*.pth)")
    if flag is not None and stored is not None and flag != bool(stored):
        raise ValueError(f"--norm-pix-loss {str(flag).lower()} contradicts the checkpoint's "
                         f"args.norm_pix_loss = {stored}")
    if stored is not None:
        return bool(stored), f"checkpoint args.norm_pix_loss = {stored}"
    return flag, f"--norm-pix-loss {str(flag).lower()}"


def decide_mask_ratio(args: argparse.Namespace | None, flag: float | None) -> tuple[float, str]:
    stored = getattr(args, "mask_ratio", None) if args is not None else None
    if flag is not None:
        note = f" (checkpoint args.mask_ratio = {stored})" if stored is not None else ""
        return flag, f"--mask-ratio {flag}{note}"
    if stored is not None:
        return float(stored), f"checkpoint args.mask_ratio = {stored}"
    value, origin = released.MASK_RATIO
    return value, origin


def decide_eval_transform(fmt: str, image_size: int, opts: argparse.Namespace) -> tuple[dict, str]:
    spec, origin = released.default_eval_transform(fmt, image_size)
    overrides = []
    for key in ("resize_shorter_side", "interpolation", "mean", "std"):
        value = getattr(opts, f"eval_{key}")
        if value is not None:
            spec[key] = value
            overrides.append(f"--eval-{key.replace('_', '-')} {value}")
    if spec["resize_shorter_side"] < image_size:
        raise ValueError(f"--eval-resize-shorter-side {spec['resize_shorter_side']} is below the crop {image_size}")
    return spec, origin + ("; overridden: " + ", ".join(overrides) if overrides else "")


def graphs_past_protobuf_limit(expected: dict[str, dict[str, tuple[int, ...]]]) -> dict[str, str]:
    """The graphs whose float32 weights alone pass protobuf's 2 GB limit for one ONNX file (ViT-H), and why."""
    past = {}
    for graph, shapes in expected.items():
        params = sum(math.prod(shape) for shape in shapes.values())
        if 4 * params > PROTOBUF_LIMIT_BYTES - GRAPH_STRUCTURE_MARGIN_BYTES:
            past[graph] = (f"{params / 1e6:.0f} M parameters = {4 * params / 1e9:.2f} GB of float32 weights, past "
                           "protobuf's 2 GB limit for one ONNX file")
    return past


def manifest_fields(*, name: str, fmt: str, path: Path, source: dict, arch: ImportedArchitecture,
                    decided: dict) -> dict:
    """Every format-2 manifest field except opset, graphs and created_at (export.export_bundle adds those)."""
    layout: Layout = arch.layout
    dec, mask = layout.decoder, layout.masking
    return {
        "format_version": FORMAT_VERSION, "name": name, "method": "clmae" if mask is not None else "mae",
        "source": {"format": fmt, "file": path.name, "sha256": export.sha256_file(path), "bytes": path.stat().st_size,
                   **source},
        "architecture": decided,
        "image_size": layout.image_size, "patch_size": layout.patch_size,
        "grid": [layout.grid_size, layout.grid_size], "num_patches": layout.num_patches,
        "dims": {"embed_dim": layout.encoder.width, "depth": layout.encoder.depth, "num_heads": arch.num_heads,
                 "decoder_embed_dim": dec.width if dec else None, "decoder_depth": dec.depth if dec else None,
                 "decoder_num_heads": arch.decoder_num_heads, "patch_dim": arch.patch_dim,
                 "masking_depth": mask.depth if mask else None, "masking_num_heads": arch.masking_num_heads},
        "mask_ratio": decided["mask_ratio"]["value"], "norm_pix_loss": decided["norm_pix_loss"]["value"],
        "norm_pix_eps": decided["norm_pix_eps"]["value"], "eval_transform": decided["eval_transform"]["value"],
    }


@dataclass
class PreparedImport:
    """A checked checkpoint as modules, with its manifest fields: everything but the export."""

    arch: ImportedArchitecture
    model: ImportedModel
    fields: dict
    mask_ratio: float
    external_data: frozenset[str]


def prepare_import(opts: argparse.Namespace) -> PreparedImport:
    """Read, check and decide; build the modules. Raises ValueError (or CheckpointKeyError) naming the problem."""
    path, output = Path(opts.checkpoint), Path(opts.output)
    name = opts.name or output.name
    if not NAME_PATTERN.match(name):
        raise ValueError(f"bundle name {name!r} must match {NAME_PATTERN.pattern} (give --name)")
    state, args, source = split_checkpoint(load_file(path), opts.format, path)

    # 1. the layout, every key checked (before any decision or allocation)
    layout = read_layout(state, opts.format)
    expected = expected_shapes(layout)
    check_keys(state, {k: v for shapes in expected.values() for k, v in shapes.items()}, opts.format)

    # 2. what the weights cannot tell
    heads, heads_from = decide_heads(layout.encoder.width, opts.num_heads, "--num-heads", released.ENCODER_HEADS,
                                     "encoder")
    dec_heads = dec_heads_from = None
    if layout.decoder is not None:
        dec_heads, dec_heads_from = decide_heads(layout.decoder.width, opts.decoder_num_heads, "--decoder-num-heads",
                                                 released.DECODER_HEADS, "decoder")
    mask_heads = mask_heads_from = None
    if layout.masking is not None:
        table = {layout.encoder.width: released.MASKING_HEADS}
        mask_heads, mask_heads_from = decide_heads(layout.encoder.width, opts.masking_num_heads,
                                                   "--masking-num-heads", table, "masking module")
    norm_pix, norm_pix_from = decide_norm_pix(layout.decoder is not None, args, opts.norm_pix_loss)
    mask_ratio, mask_ratio_from = decide_mask_ratio(args, opts.mask_ratio)
    eval_spec, eval_from = decide_eval_transform(opts.format, layout.image_size, opts)
    arch = ImportedArchitecture(layout=layout, num_heads=heads, decoder_num_heads=dec_heads,
                                masking_num_heads=mask_heads)
    o, dec, mask = layout.origin, layout.decoder, layout.masking
    absent = "no decoder in the checkpoint"
    no_masking = "no masking_net.* in the checkpoint"
    decided = {
        "image_size": _decided(layout.image_size, o["image_size"]),
        "patch_size": _decided(layout.patch_size, o["patch_size"]),
        "embed_dim": _decided(layout.encoder.width, o["embed_dim"]),
        "depth": _decided(layout.encoder.depth, o["depth"]),
        "num_heads": _decided(heads, heads_from),
        "mlp_ratio": _decided(layout.encoder.mlp_ratio, o["mlp_ratio"]),
        "decoder_embed_dim": _decided(dec.width, o["decoder_embed_dim"]) if dec else _decided(None, absent),
        "decoder_depth": _decided(dec.depth, o["decoder_depth"]) if dec else _decided(None, absent),
        "decoder_num_heads": _decided(dec_heads, dec_heads_from) if dec else _decided(None, absent),
        "decoder_mlp_ratio": _decided(dec.mlp_ratio, o["decoder_mlp_ratio"]) if dec else _decided(None, absent),
        "masking_depth": _decided(mask.depth, o["masking_depth"]) if mask else _decided(None, no_masking),
        "masking_num_heads": _decided(mask_heads, mask_heads_from) if mask else _decided(None, no_masking),
        "masking_mlp_ratio": _decided(mask.mlp_ratio, o["masking_mlp_ratio"]) if mask else _decided(None, no_masking),
        "mask_ratio": _decided(mask_ratio, mask_ratio_from),
        "norm_pix_loss": _decided(norm_pix, norm_pix_from),
        "norm_pix_eps": _decided(*released.NORM_PIX_EPS),
        "eval_transform": _decided(eval_spec, eval_from),
    }
    for key, entry in decided.items():
        print(f"{key} = {json.dumps(entry['value'])}  ({entry['from']})", flush=True)

    # 3. the modules (holding the checkpoint's tensors) and the manifest fields
    fields = manifest_fields(name=name, fmt=opts.format, path=path, source=source, arch=arch, decided=decided)
    past = graphs_past_protobuf_limit(expected)
    for graph, why in past.items():
        print(f"{graph}: {why}: its weights go to external data", flush=True)
    external = frozenset(expected) if opts.external_data else frozenset(past)
    return PreparedImport(arch=arch, model=build_model(arch, state), fields=fields, mask_ratio=mask_ratio,
                          external_data=external)


def import_checkpoint(opts: argparse.Namespace) -> dict:
    """The whole import for parsed CLI options: prepare, export, check parity, write. Returns the manifest."""
    prepared = prepare_import(opts)
    model = prepared.model
    graphs = build_graphs(stem=model.stem, encoder=model.encoder, decoder=model.decoder, masking=model.masking)
    return export.export_bundle(graphs=graphs, config=prepared.arch, fields=prepared.fields, output=Path(opts.output),
                                mask_ratio=prepared.mask_ratio, opset=opts.opset, external_data=prepared.external_data)


def _bool(text: str) -> bool:
    if text.lower() in ("true", "1", "yes"):
        return True
    if text.lower() in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m clmae.import_checkpoint", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--format", required=True, choices=FORMATS, help="the checkpoint's layout (see above)")
    p.add_argument("--checkpoint", required=True, help=".pth / .pt (torch.load) or .safetensors (timm)")
    p.add_argument("--output", required=True, help="bundle directory, e.g. models/mae-vit-base-p16-224")
    p.add_argument("--name", default=None,
                   help="bundle name, the service's model id (default: the output directory's name)")
    p.add_argument("--num-heads", type=int, default=None,
                   help="encoder heads (default: the released architecture of the width: 768/12, 1024/16, 1280/16)")
    p.add_argument("--decoder-num-heads", type=int, default=None, help="decoder heads (default: 16 for width 512)")
    p.add_argument("--masking-num-heads", type=int, default=None,
                   help="masking module heads (default: 4, the official CL-MAE MaskingNet)")
    p.add_argument("--norm-pix-loss", type=_bool, default=None, metavar="{true,false}",
                   help="whether the decoder predicts per-patch normalised pixels; required for a checkpoint with a "
                        "decoder and no args.norm_pix_loss (MAE *_full.pth: true; mae_visualize_*.pth: false)")
    p.add_argument("--mask-ratio", type=float, default=None,
                   help="the bundle's default mask ratio (default: args.mask_ratio, else 0.75)")
    p.add_argument("--eval-resize-shorter-side", type=int, default=None,
                   help="eval transform resize (default: mae/clmae 256 for 224 inputs; timm floor(224 / 0.9) = 248)")
    p.add_argument("--eval-interpolation", choices=("bicubic", "bilinear"), default=None, help="default bicubic")
    p.add_argument("--eval-mean", type=float, nargs=3, default=None, metavar=("R", "G", "B"),
                   help="default ImageNet 0.485 0.456 0.406")
    p.add_argument("--eval-std", type=float, nargs=3, default=None, metavar=("R", "G", "B"),
                   help="default ImageNet 0.229 0.224 0.225")
    p.add_argument("--external-data", action="store_true",
                   help="store every graph's weights in <graph>.onnx.data (default: only graphs past 2 GB, e.g. ViT-H)")
    p.add_argument("--opset", type=int, default=export.DEFAULT_OPSET, help="ONNX opset (>= 17)")
    return p


def main(argv: list[str] | None = None) -> int:
    opts = build_parser().parse_args(argv)
    try:
        import_checkpoint(opts)
    except (ValueError, FileNotFoundError) as error:  # bad input: say what, no traceback
        print(f"import_checkpoint: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
