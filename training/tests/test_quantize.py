"""quantize: int8 variants of micro bundles (format 1) and of an imported format-2 bundle with external data.

Checked: the output loads in onnxruntime and keeps the graphs' inputs/outputs, the manifest validates with
its own sha256 values and the source's, the fused-op counts are printed and match the architecture, GELU
stays exact (BiasGelu, never FastGelu), a fusion that changes the numbers is refused, and nothing is
written on failure. Fidelity on trained bundles is measured by bench/int8-fidelity.ts, not here.
"""

import hashlib
import json
import sys

import jsonschema
import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from clmae import export, import_checkpoint, quantize
from clmae.configs import get_config
from clmae.mae import build_models

from conftest import MICRO, TRAINING_DIR

sys.path.insert(0, str(TRAINING_DIR / "tools"))
from released_checkpoints import build_checkpoint, save_checkpoint  # noqa: E402

EMBED_COSINE = 0.98  # micro bundle, perturbed init, random images: int8 vs fp32 mean-pooled latent


@pytest.fixture(scope="module")
def micro_bundle(tmp_path_factory):
    """A clmae micro bundle (encoder, decoder, keep_scores) off its init values."""
    out = tmp_path_factory.mktemp("src") / "clmae-micro"
    torch.manual_seed(0)
    mae, masking = build_models(get_config(MICRO), "clmae")
    with torch.no_grad():
        for p in [*mae.parameters(), *masking.parameters()]:
            p.add_(0.05 * torch.randn_like(p))
    export.write_bundle(mae=mae, masking=masking, config=get_config(MICRO), method="clmae", name=out.name, output=out,
                        mask_ratio=0.75, training={"data": "synthetic", "num_images": 0, "epochs": 0, "batch_size": 1,
                                                   "final_losses": {}, "wall_time_seconds": 0.0})
    return out


@pytest.fixture(scope="module")
def quantized(micro_bundle, tmp_path_factory):
    out = tmp_path_factory.mktemp("int8") / "clmae-micro-int8"
    return out, quantize.quantize_bundle(bundle=micro_bundle, output=out)


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_manifest_valid_named_and_hashed(micro_bundle, quantized):
    out, manifest = quantized
    source = json.loads((micro_bundle / "manifest.json").read_text())
    export.validate_manifest(json.loads((out / "manifest.json").read_text()))
    assert manifest["name"] == "clmae-micro-int8"
    assert out.stat().st_mode & 0o777 == (micro_bundle.stat().st_mode & 0o777)  # readable like its source
    for key, spec in manifest["graphs"].items():
        assert sha256(out / spec["file"]) == spec["sha256"] and (out / spec["file"]).stat().st_size == spec["bytes"]
        assert spec["sha256"] != source["graphs"][key]["sha256"]
        assert spec["inputs"] == source["graphs"][key]["inputs"] and spec["outputs"] == source["graphs"][key]["outputs"]
    q = manifest["quantization"]
    assert (q["method"], q["weight_type"], q["per_channel"], q["reduce_range"]) == ("dynamic", "int8", True, True)
    assert q["source"] == {"name": "clmae-micro", "manifest_sha256": sha256(micro_bundle / "manifest.json"),
                           "sha256": {k: s["sha256"] for k, s in source["graphs"].items()}}
    assert q["tools"]["onnxruntime"] == ort.__version__


@pytest.mark.parametrize("edit", [
    lambda q: q["source"]["sha256"].pop("encoder"),  # the service reports it as source_encoder_sha256
    lambda q: q["source"]["sha256"].update({"__proto__": "0" * 64}),
    lambda q: q["graphs"].update({"__proto__": {}}),
    lambda q: q["graphs"].pop("encoder"),
])
def test_schema_refuses_a_quantization_without_the_encoder_or_with_other_graph_names(quantized, edit):
    manifest = json.loads((quantized[0] / "manifest.json").read_text())
    edit(manifest["quantization"])
    with pytest.raises(jsonschema.ValidationError):
        export.validate_manifest(manifest)


def test_fused_ops_match_the_architecture_and_gelu_stays_exact(quantized):
    out, manifest = quantized
    config = get_config(MICRO)
    graphs = manifest["quantization"]["graphs"]
    depths = {"encoder": config.depth, "decoder": config.decoder_depth, "keep_scores": config.masking_depth}
    for key, depth in depths.items():
        fused = graphs[key]["fused_ops"]
        assert fused["Attention"] == depth and fused["BiasGelu"] == depth and "FastGelu" not in fused, (key, fused)
        assert fused["SkipLayerNormalization"] >= 2 * depth - 1, (key, fused)
        ops = {n.op_type for n in onnx.load(str(out / manifest["graphs"][key]["file"])).graph.node}
        assert {"QAttention", "MatMulInteger", "BiasGelu"} <= ops and "FastGelu" not in ops and "Attention" not in ops


def test_int8_graphs_load_and_stay_close(micro_bundle, quantized):
    out, manifest = quantized
    config = get_config(MICRO)
    rng = np.random.default_rng(0)
    images = rng.standard_normal((4, 3, config.image_size, config.image_size)).astype(np.float32)
    ids = np.tile(np.arange(config.num_patches), (4, 1))
    runs = []
    for bundle in (micro_bundle, out):
        session = ort.InferenceSession(str(bundle / "encoder.onnx"), providers=["CPUExecutionProvider"])
        runs.append(session.run(None, {"images": images, "ids_keep": ids})[0][:, 1:].mean(1))  # (N, D)
    a, b = (r / np.linalg.norm(r, axis=1, keepdims=True) for r in runs)
    cosine = (a * b).sum(1)
    assert cosine.min() > EMBED_COSINE, cosine
    for key in ("decoder", "keep_scores"):
        session = ort.InferenceSession(str(out / manifest["graphs"][key]["file"]), providers=["CPUExecutionProvider"])
        got = session.run(None, quantize.random_feeds(session, manifest, 2, 0))[0]
        assert got.shape[-1] == manifest["graphs"][key]["outputs"][0]["shape"][-1] and np.isfinite(got).all()
    model = onnx.load(str(out / "encoder.onnx"))
    source = onnx.load(str(micro_bundle / "encoder.onnx"))
    assert model.ir_version <= source.ir_version  # what the service's onnxruntime-node reads


def test_cli_prints_fused_op_counts(micro_bundle, tmp_path, capsys):
    assert quantize.main(["--bundle", str(micro_bundle), "--output", str(tmp_path / "x"), "--graphs", "encoder"]) == 0
    printed = capsys.readouterr().out
    assert "encoder: fused {'Attention': 2, 'SkipLayerNormalization'" in printed and "'QAttention': 2" in printed
    manifest = json.loads((tmp_path / "x" / "manifest.json").read_text())
    assert manifest["quantization"]["graphs"]["decoder"] == {"quantized": False}
    assert sha256(tmp_path / "x" / "decoder.onnx") == sha256(micro_bundle / "decoder.onnx")  # copied as it was


def test_wrong_fusion_is_refused_and_nothing_written(micro_bundle, tmp_path, monkeypatch):
    monkeypatch.setattr(quantize, "heads_of", lambda manifest, graph: (1, 32))  # the micro encoder has 2 heads
    with pytest.raises(quantize.QuantizeError, match="fused graph differs"):
        quantize.quantize_bundle(bundle=micro_bundle, output=tmp_path / "bad")
    assert not (tmp_path / "bad").exists() and list(tmp_path.iterdir()) == []


def test_fusion_check_fails_on_nan_or_another_shape(tmp_path):
    """max_abs_diff: a NaN or an output of another (broadcastable) shape is a difference, not none."""
    from onnx import TensorProto, helper

    def graph(path, *nodes):
        x = helper.make_tensor_value_info("images", TensorProto.FLOAT, ["N", 4])
        y = helper.make_tensor_value_info("out", TensorProto.FLOAT, None)
        model = helper.make_model(helper.make_graph(list(nodes), "g", [x], [y]), opset_imports=[helper.make_opsetid("", 18)])
        model.ir_version = 10
        onnx.save(model, str(path))
        return path

    manifest = {"num_patches": 4, "mask_ratio": 0.75}
    source = graph(tmp_path / "a.onnx", helper.make_node("Identity", ["images"], ["out"]))
    nan = graph(tmp_path / "nan.onnx", helper.make_node("Sqrt", ["images"], ["out"]))  # NaN where images < 0
    mean = graph(tmp_path / "mean.onnx", helper.make_node("ReduceMean", ["images"], ["out"], keepdims=1))  # (1, 1)
    assert quantize.max_abs_diff(source, source, manifest) == 0.0
    assert quantize.max_abs_diff(source, nan, manifest) == float("inf")
    assert quantize.max_abs_diff(source, mean, manifest) == float("inf")


def test_refuses_altered_source_and_double_quantisation(micro_bundle, quantized, tmp_path):
    with pytest.raises(quantize.QuantizeError, match="already quantised"):
        quantize.quantize_bundle(bundle=quantized[0], output=tmp_path / "twice")
    altered = tmp_path / "altered"
    altered.mkdir()
    for f in micro_bundle.iterdir():
        altered.joinpath(f.name).write_bytes(f.read_bytes())
    with open(altered / "decoder.onnx", "ab") as f:
        f.write(b"\0")
    with pytest.raises(quantize.QuantizeError, match="sha256 differs"):
        quantize.quantize_bundle(bundle=altered, output=tmp_path / "out")


def test_output_never_replaces_the_source_or_another_bundle(micro_bundle, quantized, tmp_path):
    """--output may only replace an earlier int8 variant of the same source, as a whole."""
    source = tmp_path / "source"
    source.mkdir()
    for f in micro_bundle.iterdir():
        source.joinpath(f.name).write_bytes(f.read_bytes())
    other = tmp_path / "notes"
    other.mkdir()
    (other / "readme.txt").write_text("not a bundle")
    before = {p: sha256(p) for d in (source, other) for p in d.iterdir()}
    for output in (source, source / "int8", tmp_path, other, micro_bundle):  # itself, inside, around, others
        with pytest.raises(quantize.QuantizeError, match="--output"):
            quantize.quantize_bundle(bundle=source, output=output, graphs=("encoder",))
    assert {p: sha256(p) for d in (source, other) for p in d.iterdir()} == before
    variant = tmp_path / "variant"
    for _ in range(2):  # the second run replaces the first's variant
        quantize.quantize_bundle(bundle=source, output=variant, graphs=("encoder",))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes", "source", "variant"]  # no work folder left
    with pytest.raises(quantize.QuantizeError, match="a name of its own"):
        quantize.quantize_bundle(bundle=source, output=tmp_path / "same-name", name="clmae-micro", graphs=("encoder",))
    assert not (tmp_path / "same-name").exists()
    with pytest.raises(quantize.QuantizeError, match="not an int8 variant of another-source"):
        quantize.check_output(source, quantized[0], "another-source")  # a variant of some other source stays


def test_static_calibrated_on_images(micro_bundle, synthetic_folder, tmp_path):
    with pytest.raises(quantize.QuantizeError, match="calibration-data"):
        quantize.quantize_bundle(bundle=micro_bundle, output=tmp_path / "s", method="static")
    manifest = quantize.quantize_bundle(bundle=micro_bundle, output=tmp_path / "s", method="static", graphs=("encoder",),
                                        calibration_data=synthetic_folder, calibration_count=16)
    assert manifest["quantization"]["calibration"]["images"] == 16
    ops = {n.op_type for n in onnx.load(str(tmp_path / "s" / "encoder.onnx")).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    ort.InferenceSession(str(tmp_path / "s" / "encoder.onnx"), providers=["CPUExecutionProvider"])


@pytest.fixture(scope="module")
def format2_bundle(tmp_path_factory):
    """An imported encoder-only timm ViT-B (depth 1) whose weights sit in encoder.onnx.data."""
    tmp = tmp_path_factory.mktemp("format2")
    path = tmp / "model.safetensors"
    save_checkpoint(build_checkpoint("timm", width=768, depth=1, seed=3), path)
    source = tmp / "vit-b-timm"
    assert import_checkpoint.main(["--format", "timm", "--checkpoint", str(path), "--output", str(source),
                                   "--external-data"]) == 0
    return source


def test_format2_bundle_with_external_data(format2_bundle, tmp_path):
    source = format2_bundle
    manifest = quantize.quantize_bundle(bundle=source, output=tmp_path / "vit-b-timm-int8")
    assert manifest["format_version"] == 2 and set(manifest["graphs"]) == {"encoder"}
    assert "external_data" not in manifest["graphs"]["encoder"]  # int8 weights fit in the graph file
    assert manifest["quantization"]["graphs"]["encoder"]["fused_ops"]["Attention"] == 1
    session = ort.InferenceSession(str(tmp_path / "vit-b-timm-int8" / "encoder.onnx"), providers=["CPUExecutionProvider"])
    latent = session.run(None, quantize.random_feeds(session, manifest, 1, 0))[0]
    assert latent.shape[-1] == 768


def test_refuses_altered_external_weights(format2_bundle, tmp_path):
    """The source's sha256 values in the manifest vouch for its weights, which sit in encoder.onnx.data here."""
    altered = tmp_path / "altered"
    altered.mkdir()
    for f in format2_bundle.iterdir():
        altered.joinpath(f.name).write_bytes(f.read_bytes())
    data = bytearray((altered / "encoder.onnx.data").read_bytes())
    data[len(data) // 2] ^= 0xFF  # one weight changed; encoder.onnx and manifest.json as they were
    (altered / "encoder.onnx.data").write_bytes(bytes(data))
    with pytest.raises(quantize.QuantizeError, match=r"encoder\.onnx\.data: sha256 differs"):
        quantize.quantize_bundle(bundle=altered, output=tmp_path / "out")
    assert not (tmp_path / "out").exists()
