"""Write an int8 variant of a model bundle (format 1 or 2) with onnxruntime's own tools.

    cd training && ../.venv/bin/python -m clmae.quantize --bundle ../models/clmae-vit-mini-p8-64 \
        --output ../models/clmae-vit-mini-p8-64-int8
    ../.venv/bin/python -m clmae.quantize --bundle B --output B-int8 --method static \
        --calibration-data ../../shared/data/imagenette/train              # calibrated on training images

Per graph (encoder, decoder, keep_scores; --graphs picks):
1. onnxruntime.transformers' optimizer (model_type 'vit') fuses LayerNorm, residual + LayerNorm
   (SkipLayerNormalization) and the exact erf GELU with its bias (BiasGelu; FastGelu, the tanh
   approximation, is refused); attention_fusion.py fuses our packed-qkv attention into Attention.
   The fused fp32 graph must match the source within FUSION_TOLERANCE before anything is quantised.
2. onnxruntime.quantization: quantize_dynamic (weights int8 per output channel, activations uint8
   quantised per call) or quantize_static (QDQ, activations calibrated on --calibration-data images
   through the bundle's eval transform). MatMul and Attention are quantised; the patch Conv stays fp32.
The output is a bundle of its own: name `<source>-int8`, its own sha256 values, and `quantization` in the
manifest (method, types, per_channel, tool versions, fused-op counts, the source bundle's name and
sha256 values). The fused-op counts are printed. Nothing is written to --output unless every step passed,
and an existing --output is replaced (whole) only if it is an earlier int8 variant of the same source.
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import json
import logging
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnxruntime import quantization as q
from onnxruntime.transformers import optimizer
from onnxruntime.transformers.fusion_options import FusionOptions

from clmae.attention_fusion import FusionPackedQkvAttention
from clmae.export import sha256_file, validate_manifest

GRAPHS = ("encoder", "decoder", "keep_scores")
FUSION_TOLERANCE = 1e-4  # fused fp32 graph vs source, max-abs-diff (reordered float sums only)
QUANTIZED_OPS = ["MatMul", "Attention"]
# ops whose counts the tool prints: what the fusions produced and what quantisation turned them into
REPORTED_OPS = ("Attention", "SkipLayerNormalization", "LayerNormalization", "BiasGelu", "Gelu", "FastGelu",
                "QAttention", "DynamicQuantizeMatMul", "MatMulInteger", "DynamicQuantizeLinear", "QLinearMatMul", "QuantizeLinear",
                "DequantizeLinear", "MatMul", "Softmax")
# the service's onnxruntime-node (1.23) reads what clmae.export writes (IR 10, opset 18); see check_loadable
NAME_SUFFIX = "-int8"


class QuantizeError(RuntimeError):
    """A graph could not be fused or quantised as required."""


def heads_of(manifest: dict, graph: str) -> tuple[int, int]:
    """(num_heads, hidden) of the attention blocks in `graph`, from the manifest's dims."""
    dims = manifest["dims"]
    if graph == "decoder":
        return dims["decoder_num_heads"], dims["decoder_embed_dim"]
    if graph == "keep_scores":
        return dims["masking_num_heads"], dims["embed_dim"]
    return dims["num_heads"], dims["embed_dim"]


def op_counts(model: onnx.ModelProto) -> dict[str, int]:
    counts = collections.Counter(n.op_type for n in model.graph.node)
    return {op: counts[op] for op in REPORTED_OPS if counts[op]}


def fuse_graph(source: Path, target: Path, *, num_heads: int, hidden: int) -> dict[str, int]:
    """Transformer fusions of onnxruntime plus our packed-qkv attention; writes the fused fp32 graph."""
    options = FusionOptions("vit")
    options.enable_gelu_approximation = False  # keep erf GELU (approximation would swap in FastGelu)
    model = optimizer.optimize_model(str(source), model_type="vit", num_heads=num_heads, hidden_size=hidden,
                                     optimization_options=options, opt_level=0, use_gpu=False)
    FusionPackedQkvAttention(model, num_heads).apply()
    model.topological_sort()
    counts = op_counts(model.model)
    if counts.get("FastGelu", 0):
        raise QuantizeError(f"{source.name}: the optimizer produced FastGelu (tanh GELU); exact GELU is required")
    model.save_model_to_file(str(target))
    return counts


def random_feeds(session: ort.InferenceSession, manifest: dict, n: int, seed: int) -> dict[str, np.ndarray]:
    """Seeded inputs for a graph of the bundle: normal images/latents, a random permutation for indices."""
    rng = np.random.default_rng(seed)
    L = manifest["num_patches"]
    K = int(L * (1 - manifest["mask_ratio"]))
    feeds = {}
    for spec in session.get_inputs():
        dims = [n if d == "N" else K if d == "K" else 1 + K if d == "1+K" else d for d in spec.shape]
        if spec.type == "tensor(int64)":
            order = np.stack([rng.permutation(L) for _ in range(n)])  # (N, L)
            feeds[spec.name] = order[:, :dims[1]] if spec.name == "ids_keep" else np.argsort(order, axis=1)
        else:
            feeds[spec.name] = rng.standard_normal(dims).astype(np.float32)
    return feeds


def max_abs_diff(a: Path, b: Path, manifest: dict) -> float:
    """Largest |a - b| over every output at batch 1 and 3; inf when shapes differ or a value is not finite
    (a NaN difference would otherwise compare as no difference at all)."""
    sa = ort.InferenceSession(str(a), providers=["CPUExecutionProvider"])
    sb = ort.InferenceSession(str(b), providers=["CPUExecutionProvider"])
    worst = 0.0
    for n, seed in ((1, 0), (3, 1)):
        feeds = random_feeds(sa, manifest, n, seed)
        for x, y in zip(sa.run(None, feeds), sb.run(None, feeds), strict=True):
            diff = np.abs(x - y) if x.shape == y.shape else np.array(np.inf)
            worst = max(worst, float(diff.max()) if np.isfinite(diff).all() else float("inf"))
    return worst


class ImageCalibrationReader(q.CalibrationDataReader):
    """Feeds of one graph computed from real images: what quantize_static calibrates activations on.

    Images go through the bundle's eval transform (clmae.data); the encoder sees every patch (the
    embedding call), the decoder the fp32 encoder's latent at the bundle's mask ratio.
    """

    def __init__(self, *, graph: str, images: np.ndarray, manifest: dict, fp32_paths: dict[str, Path], batch: int = 8) -> None:
        L = manifest["num_patches"]
        K = int(L * (1 - manifest["mask_ratio"]))
        rng = np.random.default_rng(0)
        self.feeds = []
        encoder = ort.InferenceSession(str(fp32_paths["encoder"]), providers=["CPUExecutionProvider"]) if graph == "decoder" else None
        for start in range(0, len(images), batch):
            x = images[start:start + batch]  # (N, 3, H, W)
            n = len(x)
            if graph == "encoder":
                self.feeds.append({"images": x, "ids_keep": np.tile(np.arange(L, dtype=np.int64), (n, 1))})
            elif graph == "keep_scores":
                self.feeds.append({"images": x})
            else:
                order = np.stack([rng.permutation(L) for _ in range(n)])  # (N, L)
                latent = encoder.run(None, {"images": x, "ids_keep": order[:, :K]})[0]  # (N, 1+K, D)
                self.feeds.append({"latent": latent, "ids_restore": np.argsort(order, axis=1)})
        self._iter = iter(self.feeds)

    def get_next(self):
        return next(self._iter, None)

    def rewind(self) -> None:
        self._iter = iter(self.feeds)


def load_calibration_images(root: Path, manifest: dict, count: int) -> np.ndarray:
    from clmae.data import load_eval_batch

    images, _ = load_eval_batch(root, manifest["eval_transform"], count=count, seed=0)
    return images.numpy()  # (count, 3, H, W)


def quantize_graph(fused: Path, target: Path, *, method: str, reduce_range: bool,
                   reader: q.CalibrationDataReader | None) -> None:
    if method == "dynamic":
        q.quantize_dynamic(str(fused), str(target), weight_type=q.QuantType.QInt8, per_channel=True,
                           reduce_range=reduce_range, op_types_to_quantize=QUANTIZED_OPS)
    else:
        q.quantize_static(str(fused), str(target), reader, quant_format=q.QuantFormat.QDQ,
                          activation_type=q.QuantType.QUInt8, weight_type=q.QuantType.QInt8, per_channel=True,
                          reduce_range=reduce_range, op_types_to_quantize=QUANTIZED_OPS,
                          calibrate_method=q.CalibrationMethod.MinMax)


def check_loadable(path: Path, source: Path) -> None:
    """The int8 graph keeps the source's IR version and default-domain opset, so the service's
    onnxruntime-node reads it as it reads the fp32 graph (the quantiser may not raise either)."""
    src, out = onnx.load(str(source), load_external_data=False), onnx.load(str(path), load_external_data=False)
    src_opset = {o.domain or "ai.onnx": o.version for o in src.opset_import}["ai.onnx"]
    out_opset = {o.domain or "ai.onnx": o.version for o in out.opset_import}["ai.onnx"]
    if out.ir_version > src.ir_version or out_opset > src_opset:
        raise QuantizeError(f"{path.name}: IR {out.ir_version} / opset {out_opset} newer than the source's "
                            f"IR {src.ir_version} / opset {src_opset}; the service's onnxruntime may not read it")


def check_output(bundle: Path, output: Path, source_name: str) -> None:
    """Refuse an --output that would destroy something other than an earlier int8 variant of this source:
    the source itself (or a folder inside or around it), or any other bundle or non-empty folder."""
    src, out = bundle.resolve(), output.resolve()
    if out == src or src in out.parents or out in src.parents:
        raise QuantizeError(f"--output {output} is the source bundle {bundle} or inside / around it")
    if not out.exists() or (out.is_dir() and not any(out.iterdir())):
        return
    try:
        existing_source = json.loads((out / "manifest.json").read_text())["quantization"]["source"]["name"]
    except (OSError, ValueError, KeyError, TypeError):
        existing_source = None
    if existing_source != source_name:
        raise QuantizeError(f"--output {output} exists and is not an int8 variant of {source_name}: "
                            "remove it yourself or pick another --output")


def quantize_bundle(*, bundle: Path, output: Path, method: str = "dynamic", graphs: tuple[str, ...] = GRAPHS,
                    reduce_range: bool = True, calibration_data: Path | None = None,
                    calibration_count: int = 64, name: str | None = None) -> dict:
    """Fuse and quantise the bundle's graphs into a new bundle at `output`; returns its manifest."""
    source_manifest_path = bundle / "manifest.json"
    manifest = json.loads(source_manifest_path.read_text())
    validate_manifest(manifest)
    if "quantization" in manifest:
        raise QuantizeError(f"{bundle}: already quantised ({manifest['name']})")
    check_output(bundle, output, manifest["name"])
    if name == manifest["name"]:  # the service would serve whichever loads first under the fp32 model's id
        raise QuantizeError(f"--name {name}: the int8 variant needs a name of its own, not its source's")
    if method == "static" and calibration_data is None:
        raise QuantizeError("--method static needs --calibration-data (an image folder, e.g. the training images)")
    for key, spec in manifest["graphs"].items():
        for entry in [spec, *spec.get("external_data", [])]:  # a graph's weights may sit in its .data files
            if sha256_file(bundle / entry["file"]) != entry["sha256"]:
                raise QuantizeError(f"{bundle / entry['file']}: sha256 differs from {source_manifest_path}")
    selected = [g for g in graphs if g in manifest["graphs"]]
    if "encoder" not in selected:
        raise QuantizeError("the encoder must be among --graphs (the bundle's embeddings come from it)")
    source_paths = {k: bundle / s["file"] for k, s in manifest["graphs"].items()}
    images = load_calibration_images(calibration_data, manifest, calibration_count) if method == "static" else None

    output.parent.mkdir(parents=True, exist_ok=True)
    # the bundle is assembled in work/bundle: no hidden folder beside the output ever holds a manifest.json
    # (the service loads every folder of its models dir that has one)
    work = Path(tempfile.mkdtemp(prefix=f".{output.name}.quantize-", dir=output.parent))
    try:
        staging = work / "bundle"
        staging.mkdir()
        report, new_graphs = {}, {}
        for key, spec in manifest["graphs"].items():
            target = staging / spec["file"]
            if key not in selected:
                shutil.copyfile(source_paths[key], target)  # kept fp32 (and unfused)
                for data in spec.get("external_data", []):
                    shutil.copyfile(bundle / data["file"], staging / data["file"])
                new_graphs[key] = spec
                report[key] = {"quantized": False}
                continue
            num_heads, hidden = heads_of(manifest, key)
            fused = staging / f"{key}.fused.onnx"
            fused_counts = fuse_graph(source_paths[key], fused, num_heads=num_heads, hidden=hidden)
            fusion_diff = max_abs_diff(source_paths[key], fused, manifest)
            if fusion_diff > FUSION_TOLERANCE:
                raise QuantizeError(f"{key}: fused graph differs from the source by {fusion_diff:.3g} > {FUSION_TOLERANCE}")
            reader = (ImageCalibrationReader(graph=key, images=images, manifest=manifest, fp32_paths=source_paths)
                      if method == "static" else None)
            quantize_graph(fused, target, method=method, reduce_range=reduce_range, reader=reader)
            fused.unlink()
            check_loadable(target, source_paths[key])
            quantized_counts = op_counts(onnx.load(str(target)))
            new_graphs[key] = {k: v for k, v in spec.items() if k != "external_data"} | {
                "file": spec["file"], "sha256": sha256_file(target), "bytes": target.stat().st_size}
            report[key] = {"quantized": True, "fused_ops": fused_counts, "quantized_ops": quantized_counts,
                           "fusion_max_abs_diff": fusion_diff}
            print(f"{key}: fused {fused_counts}; after quantisation {quantized_counts}; "
                  f"fused fp32 vs source max-abs-diff {fusion_diff:.2e}", flush=True)

        quantization = {
            "method": method,
            "weight_type": "int8",
            "activation_type": "uint8",
            "per_channel": True,
            "reduce_range": reduce_range,
            "quantized_ops": QUANTIZED_OPS,
            "graphs": {k: {"fused_ops": v["fused_ops"], "quantized_ops": v["quantized_ops"]} if v["quantized"]
                       else {"quantized": False} for k, v in report.items()},
            "tools": {"onnxruntime": ort.__version__, "onnx": onnx.__version__},
            "source": {"name": manifest["name"], "manifest_sha256": sha256_file(source_manifest_path),
                       "sha256": {k: s["sha256"] for k, s in manifest["graphs"].items()}},
        }
        if method == "static":
            quantization["calibration"] = {"data": str(calibration_data), "images": int(len(images)),
                                           "method": "MinMax", "format": "QDQ"}
        new_manifest = {**manifest, "name": name or f"{manifest['name']}{NAME_SUFFIX}", "graphs": new_graphs,
                        "quantization": quantization,
                        "created_at": dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")}
        validate_manifest(new_manifest)
        (staging / "manifest.json").write_text(json.dumps(new_manifest, indent=2) + "\n")
        check_output(bundle, output, manifest["name"])  # again: it may have appeared while we worked
        if output.exists():
            os.replace(output, work / "replaced")  # whole, then removed with `work`: never half deleted
        os.replace(staging, output)
        print(json.dumps({"bundle": str(output), "name": new_manifest["name"],
                          "sha256": {k: v["sha256"] for k, v in new_graphs.items()}}, indent=2), flush=True)
        return new_manifest
    finally:
        shutil.rmtree(work, ignore_errors=True)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m clmae.quantize", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bundle", required=True, help="source bundle directory (format 1 or 2)")
    p.add_argument("--output", required=True, help="output bundle directory, e.g. models/clmae-vit-mini-p8-64-int8 "
                                                   "(replaced only if it is an earlier int8 variant of the same source)")
    p.add_argument("--name", default=None, help="bundle name (default: the source name + '-int8')")
    p.add_argument("--method", choices=("dynamic", "static"), default="dynamic",
                   help="dynamic: activations quantised per call (the default: closer to fp32 here, see README); "
                        "static: QDQ with activation ranges calibrated on --calibration-data")
    p.add_argument("--graphs", default=",".join(GRAPHS), help="graphs to quantise; others are copied as they are")
    p.add_argument("--reduce-range", action=argparse.BooleanOptionalAction, default=True,
                   help="7-bit weights (default): without it, AVX2 CPUs (u8s8 VPMADDUBSW, int16 pair sums) saturate "
                        "and the embeddings drift (README, int8: mean cosine 0.991 vs 0.9999 on the shipped model)")
    p.add_argument("--calibration-data", type=Path, default=None, help="with --method static: an image folder")
    p.add_argument("--calibration-count", type=int, default=64, help="with --method static: images calibrated on")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.getLogger("onnxruntime").setLevel(logging.WARNING)
    graphs = tuple(g.strip() for g in args.graphs.split(",") if g.strip())
    unknown = [g for g in graphs if g not in GRAPHS]
    if unknown:
        raise SystemExit(f"--graphs: unknown {unknown}; valid: {', '.join(GRAPHS)}")
    quantize_bundle(bundle=Path(args.bundle), output=Path(args.output), method=args.method, graphs=graphs,
                    reduce_range=args.reduce_range, calibration_data=args.calibration_data,
                    calibration_count=args.calibration_count, name=args.name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
