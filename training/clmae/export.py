"""Turn a training checkpoint into a model bundle directory (the contract with the service).

    cd training && ../.venv/bin/python -m clmae.export --checkpoint ../runs/clmae-mini/checkpoint.pt \
        --output ../models/clmae-vit-mini-p8-64
    ../.venv/bin/python -m clmae.export --init-only --config vit_mini_p8_64 --method clmae \
        --name clmae-vit-mini-p8-64 --output ../models/clmae-vit-mini-p8-64      # untrained, seed 0

Writes encoder.onnx, decoder.onnx, keep-scores.onnx (clmae only) and manifest.json (format 1). Every
graph is checked against the PyTorch forward with onnxruntime (max-abs-diff 1e-4; keep scores 1e-5)
and the manifest is validated against training/bundle-format/manifest.schema.json before anything is
written into the output directory; any failure leaves the directory as it was. export_bundle is the
shared step; import_checkpoint.py uses it for format-2 bundles of released checkpoints.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch

from clmae import checkpoint as ckpt
from clmae.configs import CONFIGS, ModelConfig, get_config
from clmae.data import eval_transform_spec
from clmae.export_graphs import build_graphs
from clmae.mae import MaskedAutoencoder, build_models
from clmae.masking import MaskingModule
from clmae.selection import num_kept, select_random

SCHEMA_PATH = Path(__file__).resolve().parents[1] / "bundle-format" / "manifest.schema.json"
FORMAT_VERSION = 1
DEFAULT_OPSET = 18
TOLERANCE = 1e-4  # encoder and decoder, max-abs-diff vs PyTorch
KEEP_SCORES_TOLERANCE = 5e-5  # scores in [0, 1]; the 254,016-image CL-MAE measured 1.44e-5 (float32, random inputs)
GRAPH_FILES = {"encoder": "encoder.onnx", "decoder": "decoder.onnx", "keep_scores": "keep-scores.onnx"}


class ParityError(RuntimeError):
    """An exported graph disagrees with the PyTorch forward beyond the tolerance."""


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def tensor_specs(config: ModelConfig) -> dict:
    """Manifest inputs/outputs of each graph; strings name dynamic axes.

    config: a ModelConfig, or any object with its image_size, embed_dim, num_patches and patch_dim
    (import_checkpoint's ImportedArchitecture).
    """
    s, d, num_patches = config.image_size, config.embed_dim, config.num_patches
    images = {"name": "images", "dtype": "float32", "shape": ["N", 3, s, s]}
    latent = {"name": "latent", "dtype": "float32", "shape": ["N", "1+K", d]}
    return {
        "encoder": {"inputs": [images, {"name": "ids_keep", "dtype": "int64", "shape": ["N", "K"]}],
                    "outputs": [latent]},
        "decoder": {"inputs": [latent, {"name": "ids_restore", "dtype": "int64", "shape": ["N", num_patches]}],
                    "outputs": [{"name": "pred", "dtype": "float32", "shape": ["N", num_patches, config.patch_dim]}]},
        "keep_scores": {"inputs": [images],
                        "outputs": [{"name": "keep_scores", "dtype": "float32", "shape": ["N", num_patches]}]},
    }


def _name_dynamic_axes(path: Path, specs: dict) -> None:
    """Rename the exporter's symbolic dims (e.g. 'K + 1') to the manifest's names ('1+K').

    External weights are left where they are: only the graph proto is read and rewritten.
    """
    model = onnx.load(str(path), load_external_data=False)
    for values, declared in ((model.graph.input, specs["inputs"]), (model.graph.output, specs["outputs"])):
        by_name = {t["name"]: t for t in declared}
        for value in values:
            dims = value.type.tensor_type.shape.dim
            for dim, want in zip(dims, by_name[value.name]["shape"]):
                if isinstance(want, str):
                    dim.dim_param = want
    onnx.save(model, str(path))


def export_graph(module: torch.nn.Module, example: tuple, path: Path, specs: dict, opset: int,
                 external_data: bool = False) -> None:
    """torch.onnx.export (dynamo) with the batch axis, and K where present, dynamic.

    One file, or with external_data the weights in `<file>.data` beside it (for graphs past protobuf's 2 GB).
    """
    batch = torch.export.Dim("N", min=1, max=4096)
    kept = torch.export.Dim("K", min=1, max=100_000)
    input_names = [t["name"] for t in specs["inputs"]]
    dynamic = {}
    for name in input_names:
        if name in ("images", "ids_restore"):
            dynamic[name] = {0: batch}
        elif name == "ids_keep":
            dynamic[name] = {0: batch, 1: kept}
        elif name == "latent":
            dynamic[name] = {0: batch, 1: kept + 1}
    program = torch.onnx.export(module, example, input_names=input_names,
                                output_names=[t["name"] for t in specs["outputs"]], dynamic_shapes=dynamic,
                                opset_version=opset, dynamo=True, external_data=False, verbose=False)
    program.save(str(path), external_data=external_data)
    _name_dynamic_axes(path, specs)


def _max_diff(session: ort.InferenceSession, feeds: dict, reference: torch.Tensor) -> float:
    out = session.run(None, {k: v.numpy() for k, v in feeds.items()})[0]
    if out.shape != tuple(reference.shape):
        raise ParityError(f"shape {out.shape} != PyTorch {tuple(reference.shape)}")
    return float(np.abs(out - reference.numpy()).max())


@torch.no_grad()
def check_parity(graphs: dict, paths: dict, config: ModelConfig, mask_ratio: float, seed: int = 0) -> dict:
    """Run each graph with onnxruntime against PyTorch on seeded inputs at several N and K; raise above tolerance."""
    gen = torch.Generator().manual_seed(seed)
    num_patches = config.num_patches
    sessions = {k: ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]) for k, p in paths.items()}
    report = {}
    for n in (1, 3):
        images = torch.randn(n, 3, config.image_size, config.image_size, generator=gen)
        for k in sorted({1, num_kept(num_patches, mask_ratio), num_patches}):
            ids_keep, ids_restore, _ = select_random(torch.rand(n, num_patches, generator=gen), k)
            latent = graphs["encoder"](images, ids_keep)
            diff = _max_diff(sessions["encoder"], {"images": images, "ids_keep": ids_keep}, latent)
            report[f"encoder_n{n}_k{k}"] = diff
            if diff > TOLERANCE:
                raise ParityError(f"encoder N={n} K={k}: max-abs-diff {diff:.3g} > {TOLERANCE}")
            if "decoder" not in graphs:
                continue
            pred = graphs["decoder"](latent, ids_restore)
            diff = _max_diff(sessions["decoder"], {"latent": latent, "ids_restore": ids_restore}, pred)
            report[f"decoder_n{n}_k{k}"] = diff
            if diff > TOLERANCE:
                raise ParityError(f"decoder N={n} K={k}: max-abs-diff {diff:.3g} > {TOLERANCE}")
        if "keep_scores" in graphs:
            diff = _max_diff(sessions["keep_scores"], {"images": images}, graphs["keep_scores"](images))
            report[f"keep_scores_n{n}"] = diff
            if diff > KEEP_SCORES_TOLERANCE:
                raise ParityError(f"keep_scores N={n}: max-abs-diff {diff:.3g} > {KEEP_SCORES_TOLERANCE}")
    return report


def validate_manifest(manifest: dict) -> None:
    """Raise jsonschema.ValidationError unless the manifest matches the committed schema."""
    import jsonschema

    schema = json.loads(SCHEMA_PATH.read_text())
    jsonschema.Draft202012Validator(schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER).validate(manifest)


def _file_entry(path: Path) -> dict:
    return {"file": path.name, "sha256": sha256_file(path), "bytes": path.stat().st_size}


def export_bundle(*, graphs: dict[str, torch.nn.Module], config: ModelConfig, fields: dict, output: Path,
                  mask_ratio: float, opset: int = DEFAULT_OPSET, external_data: frozenset[str] = frozenset()) -> dict:
    """Export `graphs` (export_graphs.build_graphs), check parity, complete the manifest, validate it, then
    move the graphs and manifest.json into `output`. Returns the manifest.

    fields: every manifest field except opset, graphs and created_at (which this adds).
    config: the geometry of the graphs (see tensor_specs).
    external_data: graphs whose weights go to `<file>.data` (listed with their sha256 under the graph's
    external_data in the manifest; format 2 only).
    """
    specs = tensor_specs(config)
    n, num_patches = 2, config.num_patches
    k = num_kept(num_patches, mask_ratio)
    images = torch.randn(n, 3, config.image_size, config.image_size)
    ids_keep, ids_restore, _ = select_random(torch.rand(n, num_patches), k)
    with torch.no_grad():
        latent = graphs["encoder"](images, ids_keep)
    examples = {"encoder": (images, ids_keep), "decoder": (latent, ids_restore), "keep_scores": (images,)}

    output.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output.name}.export-", dir=output.parent))
    try:
        paths, data_paths = {}, {}
        for key, module in graphs.items():
            paths[key] = staging / GRAPH_FILES[key]
            export_graph(module, examples[key], paths[key], specs[key], opset, external_data=key in external_data)
            data = staging / f"{GRAPH_FILES[key]}.data"
            if data.exists():
                data_paths[key] = data
        parity = check_parity(graphs, paths, config, mask_ratio)
        manifest = {
            **fields, "opset": opset,
            "graphs": {key: {**_file_entry(p), **specs[key],
                             **({"external_data": [_file_entry(data_paths[key])]} if key in data_paths else {})}
                       for key, p in paths.items()},
            "created_at": dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z"),
        }
        validate_manifest(manifest)
        (staging / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        # All checks passed: move into place (graphs first, manifest last; drop files this bundle lacks).
        output.mkdir(parents=True, exist_ok=True)
        written = {p.name for p in [*paths.values(), *data_paths.values()]}
        for file in [*GRAPH_FILES.values(), *(f"{f}.data" for f in GRAPH_FILES.values())]:
            if file not in written and (output / file).exists():
                (output / file).unlink()
        for p in [*data_paths.values(), *paths.values(), staging / "manifest.json"]:
            os.replace(p, output / p.name)
        print(json.dumps({"bundle": str(output), "parity_max_abs_diff": parity}, indent=2), flush=True)
        return manifest
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def write_bundle(*, mae: MaskedAutoencoder, masking: MaskingModule | None, config: ModelConfig, method: str,
                 name: str, output: Path, mask_ratio: float, training: dict, opset: int = DEFAULT_OPSET) -> dict:
    """A format-1 bundle of a model trained here (or initialised): export_bundle with the config's fields."""
    mae.eval()
    if method == "clmae":
        assert masking is not None, "method clmae needs the masking module"
        masking.eval()
    graphs = build_graphs(stem=mae.stem, encoder=mae.encoder, decoder=mae.decoder,
                          masking=masking if method == "clmae" else None)
    fields = {
        "format_version": FORMAT_VERSION, "name": name, "method": method, "config": config.name,
        "image_size": config.image_size, "patch_size": config.patch_size,
        "grid": [config.grid_size, config.grid_size], "num_patches": config.num_patches,
        "dims": {"embed_dim": config.embed_dim, "depth": config.depth, "num_heads": config.num_heads,
                 "decoder_embed_dim": config.decoder_embed_dim, "decoder_depth": config.decoder_depth,
                 "decoder_num_heads": config.decoder_num_heads, "patch_dim": config.patch_dim,
                 "masking_depth": config.masking_depth if method == "clmae" else None,
                 "masking_num_heads": config.masking_num_heads if method == "clmae" else None},
        "mask_ratio": mask_ratio, "norm_pix_loss": bool(mae.norm_pix), "norm_pix_eps": mae.norm_pix_eps,
        "eval_transform": eval_transform_spec(config), "training": training,
    }
    return export_bundle(graphs=graphs, config=config, fields=fields, output=output, mask_ratio=mask_ratio,
                         opset=opset)


def training_summary(state: dict) -> dict:
    """The manifest's training block from a checkpoint."""
    args = state["args"]
    return {"data": str(args["data"]), "num_images": int(state.get("num_images", 0)),
            "epochs": int(state["position"]["epoch"]), "batch_size": int(args["effective_batch_size"]),
            "final_losses": state.get("final_losses", {}), "wall_time_seconds": float(state["wall_time_seconds"]),
            "device": str(args.get("device", "cpu")), "torch_version": str(args.get("torch_version", torch.__version__)),
            "args": args}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m clmae.export", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", help="checkpoint.pt written by clmae.train")
    p.add_argument("--output", required=True, help="bundle directory, e.g. models/clmae-vit-mini-p8-64")
    p.add_argument("--name", default=None, help="bundle name (default: the output directory's name)")
    p.add_argument("--init-only", action="store_true", help="export an untrained model (no --checkpoint)")
    p.add_argument("--config", default="vit_mini_p8_64", help=f"with --init-only: {', '.join(CONFIGS)}")
    p.add_argument("--method", choices=("clmae", "mae"), default="clmae", help="with --init-only")
    p.add_argument("--seed", type=int, default=0, help="with --init-only: initialisation seed")
    p.add_argument("--mask-ratio", type=float, default=0.75, help="with --init-only: the bundle's mask ratio")
    p.add_argument("--norm-pix", action=argparse.BooleanOptionalAction, default=True, help="with --init-only")
    p.add_argument("--opset", type=int, default=DEFAULT_OPSET, help="ONNX opset (>= 17)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    output = Path(args.output)
    name = args.name or output.name
    if args.init_only:
        config = get_config(args.config)
        torch.manual_seed(args.seed)
        mae, masking = build_models(config, args.method, norm_pix=args.norm_pix)
        method, mask_ratio = args.method, args.mask_ratio
        training = {"data": "none (untrained, initialisation only)", "num_images": 0, "epochs": 0, "batch_size": 1,
                    "final_losses": {}, "wall_time_seconds": 0.0, "device": "cpu", "torch_version": torch.__version__,
                    "args": {"init_only": True, "seed": args.seed, "config": config.name, "method": method,
                             "mask_ratio": mask_ratio, "norm_pix": args.norm_pix}}
    else:
        if not args.checkpoint:
            raise SystemExit("give --checkpoint, or --init-only for an untrained bundle")
        state = ckpt.load(args.checkpoint)
        config = get_config(state["config"])
        method, mask_ratio = state["method"], float(state["args"]["mask_ratio"])
        mae, masking = build_models(config, method, norm_pix=bool(state["args"]["norm_pix"]))
        mae.load_state_dict(state["mae"])
        if masking is not None:
            masking.load_state_dict(state["masking"])
        training = training_summary(state)
    write_bundle(mae=mae, masking=masking, config=config, method=method, name=name, output=output,
                 mask_ratio=mask_ratio, training=training, opset=args.opset)
    return 0


if __name__ == "__main__":
    sys.exit(main())
