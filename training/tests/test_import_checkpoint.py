"""import_checkpoint: released layouts (written here with random weights) -> format-2 bundles, against independent code.

The encoder is compared with timm's VisionTransformer (vit_base_patch16_224 / vit_large_patch16_224 at depth 2,
load_state_dict(strict=True)), the decoder and the masking module with a functional forward written below
straight from models_mae.py over the raw checkpoint keys. Widths and heads are the released ones (768/12,
1024/16; decoder 512/16; masking module 4 heads), depths 2. Tolerance: 1e-4 max-abs-diff (export.TOLERANCE).
Two checkpoints go through the whole CLI (ONNX export); the other layouts are checked on the mapped PyTorch
modules, which the export then checks against ONNX the same way.
"""

import argparse
import hashlib
import json
import pathlib
import re
import sys

import jsonschema
import numpy as np
import onnxruntime as ort
import pytest
import torch
import torch.nn.functional as F

from clmae import export, import_checkpoint
from clmae.checkpoint_layout import CheckpointKeyError, Layout, Stack, expected_shapes
from clmae.export_graphs import EncoderGraph
from clmae.selection import select_random

from conftest import TRAINING_DIR

sys.path.insert(0, str(TRAINING_DIR / "tools"))
from released_checkpoints import build_checkpoint, save_checkpoint  # noqa: E402

timm = pytest.importorskip("timm")

TOL = export.TOLERANCE
SCHEMA = json.loads((TRAINING_DIR / "bundle-format" / "manifest.schema.json").read_text())
TIMM_NAMES = {768: "vit_base_patch16_224", 1024: "vit_large_patch16_224"}
ENCODER_KEYS = ("cls_token", "pos_embed", "patch_embed.", "blocks.", "norm.")


def options(fmt: str, checkpoint: pathlib.Path, output: pathlib.Path, *extra: str) -> argparse.Namespace:
    return import_checkpoint.build_parser().parse_args(
        ["--format", fmt, "--checkpoint", str(checkpoint), "--output", str(output), *extra])


def images(n: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, 3, 224, 224, generator=torch.Generator().manual_seed(seed))


def state_of(checkpoint: dict) -> dict:
    return checkpoint.get("model", checkpoint)


@torch.no_grad()
def timm_features(state: dict, width: int, pixels: torch.Tensor) -> torch.Tensor:
    """timm's forward_features (N, 1+L, D) with the checkpoint's encoder keys loaded strictly."""
    model = timm.create_model(TIMM_NAMES[width], pretrained=False, num_classes=0, depth=2).eval()
    model.load_state_dict({k: v for k, v in state.items() if k.startswith(ENCODER_KEYS)}, strict=True)
    return model.forward_features(pixels)


@torch.no_grad()
def timm_features_kept(state: dict, width: int, pixels: torch.Tensor, ids_keep: torch.Tensor) -> torch.Tensor:
    """MAE's forward_encoder on the kept patches, with timm's modules: (N, 1+K, D)."""
    model = timm.create_model(TIMM_NAMES[width], pretrained=False, num_classes=0, depth=2).eval()
    model.load_state_dict({k: v for k, v in state.items() if k.startswith(ENCODER_KEYS)}, strict=True)
    x = model.patch_embed(pixels) + state["pos_embed"][:, 1:, :]
    x = torch.gather(x, 1, ids_keep.unsqueeze(-1).expand(-1, -1, x.shape[-1]))
    cls = (state["cls_token"] + state["pos_embed"][:, :1, :]).expand(x.shape[0], -1, -1)
    return model.norm(model.blocks(torch.cat([cls, x], dim=1)))


def _ln(x, sd, prefix, eps):
    return F.layer_norm(x, (x.shape[-1],), sd[f"{prefix}.weight"], sd[f"{prefix}.bias"], eps)


def _block(x, sd, prefix, heads, eps):
    """timm / vit_local Block over raw keys: x + proj(attn(norm1 x)), x + fc2(gelu(fc1(norm2 x)))."""
    n, t, c = x.shape
    qkv = F.linear(_ln(x, sd, f"{prefix}.norm1", eps), sd[f"{prefix}.attn.qkv.weight"], sd[f"{prefix}.attn.qkv.bias"])
    q, k, v = qkv.reshape(n, t, 3, heads, c // heads).permute(2, 0, 3, 1, 4)
    attn = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(n, t, c)
    x = x + F.linear(attn, sd[f"{prefix}.attn.proj.weight"], sd[f"{prefix}.attn.proj.bias"])
    normed = _ln(x, sd, f"{prefix}.norm2", eps)
    hidden = F.gelu(F.linear(normed, sd[f"{prefix}.mlp.fc1.weight"], sd[f"{prefix}.mlp.fc1.bias"]))
    return x + F.linear(hidden, sd[f"{prefix}.mlp.fc2.weight"], sd[f"{prefix}.mlp.fc2.bias"])


@torch.no_grad()
def released_decoder(sd: dict, latent: torch.Tensor, ids_restore: torch.Tensor, heads: int = 16) -> torch.Tensor:
    """models_mae.py forward_decoder over the raw keys: latent (N, 1+K, D) -> pred (N, L, p*p*3)."""
    x = F.linear(latent, sd["decoder_embed.weight"], sd["decoder_embed.bias"])
    mask_tokens = sd["mask_token"].repeat(x.shape[0], ids_restore.shape[1] + 1 - x.shape[1], 1)
    x_ = torch.cat([x[:, 1:, :], mask_tokens], dim=1)
    x_ = torch.gather(x_, 1, ids_restore.unsqueeze(-1).repeat(1, 1, x.shape[2]))
    x = torch.cat([x[:, :1, :], x_], dim=1) + sd["decoder_pos_embed"]
    depth = 1 + max(int(k.split(".")[1]) for k in sd if k.startswith("decoder_blocks."))
    for i in range(depth):
        x = _block(x, sd, f"decoder_blocks.{i}", heads, 1e-6)
    return F.linear(_ln(x, sd, "decoder_norm", 1e-6), sd["decoder_pred.weight"], sd["decoder_pred.bias"])[:, 1:, :]


@torch.no_grad()
def released_keep_scores(sd: dict, pixels: torch.Tensor, heads: int = 4) -> torch.Tensor:
    """CL-MAE MaskingNet on patch_embed(x) + pos_embed[:, 1:] (curriculum_masking's input): (N, L)."""
    w = sd["patch_embed.proj.weight"]
    tokens = F.conv2d(pixels, w, sd["patch_embed.proj.bias"], stride=w.shape[-1]).flatten(2).transpose(1, 2)
    tokens = tokens + sd["pos_embed"][:, 1:, :]
    cls = (sd["masking_net.cls_token"] + sd["masking_net.pos_embed"]).expand(tokens.shape[0], -1, -1)
    x = torch.cat([cls, tokens], dim=1)
    depth = 1 + max(int(k.split(".")[2]) for k in sd if k.startswith("masking_net.blocks."))
    for i in range(depth):
        x = _block(x, sd, f"masking_net.blocks.{i}", heads, 1e-5)  # MaskingNet: nn.LayerNorm default eps
    head = _ln(x[:, 0], sd, "masking_net.mlp_head.0", 1e-5)
    return torch.sigmoid(F.linear(head, sd["masking_net.mlp_head.1.weight"], sd["masking_net.mlp_head.1.bias"]))


def max_diff(a, b) -> float:
    a = a.numpy() if isinstance(a, torch.Tensor) else a
    return float(np.abs(a - b.numpy()).max())


# ---- two checkpoints through the CLI: official CL-MAE ViT-B (all three graphs), timm ViT-L .safetensors

@pytest.fixture(scope="module")
def clmae_vit_b(tmp_path_factory):
    root = tmp_path_factory.mktemp("clmae-b")
    checkpoint = build_checkpoint("clmae", width=768, depth=2, seed=1)
    path = root / "checkpoint-199.pth"
    save_checkpoint(checkpoint, path)
    out = root / "clmae-vit-b"
    assert import_checkpoint.main(["--format", "clmae", "--checkpoint", str(path), "--output", str(out),
                                   "--norm-pix-loss", "true"]) == 0
    return path, state_of(checkpoint), out, json.loads((out / "manifest.json").read_text())


@pytest.fixture(scope="module")
def timm_vit_l(tmp_path_factory):
    root = tmp_path_factory.mktemp("timm-l")
    state = build_checkpoint("timm", width=1024, depth=2, seed=2)
    path = root / "model.safetensors"
    save_checkpoint(state, path)
    out = root / "vit-l-mae"  # weights in encoder.onnx.data, as a ViT-H's must be (their own sha256 in the manifest)
    assert import_checkpoint.main(["--format", "timm", "--checkpoint", str(path), "--output", str(out),
                                   "--external-data"]) == 0
    return path, state, out, json.loads((out / "manifest.json").read_text())


def run_graph(out: pathlib.Path, file: str, feeds: dict) -> np.ndarray:
    session = ort.InferenceSession(str(out / file), providers=["CPUExecutionProvider"])
    return session.run(None, {k: v.numpy() for k, v in feeds.items()})[0]


@pytest.mark.parametrize("bundle", ["clmae_vit_b", "timm_vit_l"])
def test_bundle_encoder_equals_timm_forward_features(bundle, request):
    _, state, out, manifest = request.getfixturevalue(bundle)
    width = manifest["dims"]["embed_dim"]
    pixels = images(2)
    everything = torch.arange(196).expand(2, -1)
    latent = run_graph(out, "encoder.onnx", {"images": pixels, "ids_keep": everything})
    reference = timm_features(state, width, pixels)
    assert latent.shape == (2, 197, width) == tuple(reference.shape)
    assert max_diff(latent, reference) < TOL
    ids_keep, _, _ = select_random(torch.rand(2, 196, generator=torch.Generator().manual_seed(3)), 49)
    kept = run_graph(out, "encoder.onnx", {"images": pixels, "ids_keep": ids_keep})
    assert max_diff(kept, timm_features_kept(state, width, pixels, ids_keep)) < TOL


def test_clmae_bundle_decoder_and_keep_scores_equal_the_released_forward(clmae_vit_b):
    _, state, out, _ = clmae_vit_b
    pixels = images(2, seed=4)
    ids_keep, ids_restore, _ = select_random(torch.rand(2, 196, generator=torch.Generator().manual_seed(5)), 49)
    latent = torch.from_numpy(run_graph(out, "encoder.onnx", {"images": pixels, "ids_keep": ids_keep}))
    pred = run_graph(out, "decoder.onnx", {"latent": latent, "ids_restore": ids_restore})
    assert pred.shape == (2, 196, 768)
    assert max_diff(pred, released_decoder(state, latent, ids_restore)) < TOL
    scores = run_graph(out, "keep-scores.onnx", {"images": pixels})
    assert scores.shape == (2, 196)
    assert max_diff(scores, released_keep_scores(state, pixels)) < TOL


def test_clmae_manifest_records_source_and_every_decision(clmae_vit_b):
    path, _, out, manifest = clmae_vit_b
    jsonschema.validate(manifest, SCHEMA)
    assert manifest["format_version"] == 2 and manifest["method"] == "clmae" and "training" not in manifest
    assert manifest["source"]["format"] == "clmae" and manifest["source"]["file"] == "checkpoint-199.pth"
    assert manifest["source"]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert set(manifest["graphs"]) == {"encoder", "decoder", "keep_scores"}
    for graph in manifest["graphs"].values():
        assert hashlib.sha256((out / graph["file"]).read_bytes()).hexdigest() == graph["sha256"]
    arch = manifest["architecture"]
    heads = [arch[key]["value"] for key in ("num_heads", "decoder_num_heads", "masking_num_heads")]
    assert heads == [12, 16, 4]
    assert "released architectures" in arch["num_heads"]["from"] and "MaskingNet" in arch["masking_num_heads"]["from"]
    assert arch["image_size"]["value"] == 224 and "pos_embed (1, 197, 768)" in arch["image_size"]["from"]
    assert arch["norm_pix_loss"] == {"value": True, "from": "--norm-pix-loss true"}
    assert manifest["dims"] == {"embed_dim": 768, "depth": 2, "num_heads": 12, "decoder_embed_dim": 512,
                                "decoder_depth": 2, "decoder_num_heads": 16, "patch_dim": 768,
                                "masking_depth": 2, "masking_num_heads": 4}
    assert manifest["eval_transform"]["resize_shorter_side"] == 256 and manifest["eval_transform"]["center_crop"] == 224


def test_timm_bundle_is_encoder_only_with_timm_eval_transform_and_external_data(timm_vit_l):
    _, _, out, manifest = timm_vit_l
    jsonschema.validate(manifest, SCHEMA)
    assert set(manifest["graphs"]) == {"encoder"}
    assert sorted(p.name for p in out.iterdir()) == ["encoder.onnx", "encoder.onnx.data", "manifest.json"]
    [data] = manifest["graphs"]["encoder"]["external_data"]
    weights = (out / "encoder.onnx.data").read_bytes()
    assert data == {"file": "encoder.onnx.data", "sha256": hashlib.sha256(weights).hexdigest(), "bytes": len(weights)}
    assert len(weights) > 4 * 24_000_000 > (out / "encoder.onnx").stat().st_size  # the weights are outside
    assert manifest["method"] == "mae" and manifest["norm_pix_loss"] is None
    assert manifest["dims"]["num_heads"] == 16 and manifest["dims"]["decoder_embed_dim"] is None
    assert manifest["eval_transform"]["resize_shorter_side"] == 248  # floor(224 / 0.9)
    assert manifest["architecture"]["eval_transform"]["from"].startswith("timm default")


# ---- every layout, on the mapped PyTorch modules (no export)

LAYOUTS = [  # (layout, width, file name, extra flags)
    ("mae-encoder", 768, "mae_pretrain_vit_base.pth", ()),
    ("mae-full", 768, "mae_visualize_vit_base.pth", ("--norm-pix-loss", "false")),
    ("mae-training", 1024, "checkpoint-799.pth", ()),
    ("timm", 768, "pytorch_model.pth", ()),
    ("clmae", 1024, "clmae_vit_large.pth", ("--norm-pix-loss", "true")),
]


@pytest.mark.parametrize("layout,width,file,extra", LAYOUTS, ids=[f"{case[0]}-{case[1]}" for case in LAYOUTS])
def test_every_layout_maps_onto_modules_equal_to_the_released_forwards(layout, width, file, extra, tmp_path):
    checkpoint = build_checkpoint(layout, width=width, depth=2, seed=width)
    save_checkpoint(checkpoint, tmp_path / file)
    fmt = {"mae-encoder": "mae", "mae-full": "mae", "mae-training": "mae"}.get(layout, layout)
    prepared = import_checkpoint.prepare_import(options(fmt, tmp_path / file, tmp_path / "out", *extra))
    state, model = state_of(checkpoint), prepared.model
    pixels = images(1, seed=7)
    with torch.no_grad():
        latent = EncoderGraph(model.stem, model.encoder)(pixels, torch.arange(196)[None])
    assert max_diff(latent, timm_features(state, width, pixels)) < TOL
    assert (model.decoder is not None) == (layout not in ("mae-encoder", "timm"))
    if model.decoder is not None:
        ids_keep, ids_restore, _ = select_random(torch.rand(1, 196, generator=torch.Generator().manual_seed(8)), 49)
        with torch.no_grad():
            kept = model.encoder(model.stem(pixels), ids_keep)
            pred = model.decoder(kept, ids_restore)
        assert max_diff(pred, released_decoder(state, kept, ids_restore)) < TOL
    assert (model.masking is not None) == (layout == "clmae")
    if model.masking is not None:
        with torch.no_grad():
            assert max_diff(model.masking(model.stem(pixels)), released_keep_scores(state, pixels)) < TOL


def test_training_checkpoint_args_decide_norm_pix_and_are_recorded(tmp_path):
    save_checkpoint(build_checkpoint("mae-training", width=768, depth=2), tmp_path / "checkpoint-799.pth")
    prepared = import_checkpoint.prepare_import(options("mae", tmp_path / "checkpoint-799.pth", tmp_path / "out"))
    fields = prepared.fields
    assert fields["norm_pix_loss"] is True
    assert fields["architecture"]["norm_pix_loss"]["from"] == "checkpoint args.norm_pix_loss = True"
    assert fields["architecture"]["mask_ratio"] == {"value": 0.75, "from": "checkpoint args.mask_ratio = 0.75"}
    assert fields["source"]["epoch"] == 799 and fields["source"]["args"]["model"] == "mae_vit_base_patch16"
    assert fields["source"]["layout"] == "{'model', 'optimizer', 'epoch', 'scaler', 'args'}"
    with pytest.raises(ValueError, match="contradicts the checkpoint's args.norm_pix_loss"):
        import_checkpoint.prepare_import(options("mae", tmp_path / "checkpoint-799.pth", tmp_path / "o",
                                                 "--norm-pix-loss", "false"))


def test_a_decoder_without_a_stated_target_needs_the_flag(tmp_path, capsys):
    save_checkpoint(build_checkpoint("mae-full", width=768, depth=2), tmp_path / "full.pth")
    code = import_checkpoint.main(["--format", "mae", "--checkpoint", str(tmp_path / "full.pth"),
                                   "--output", str(tmp_path / "out")])
    assert code == 2 and "--norm-pix-loss" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


# ---- refusals, each naming what is wrong

@pytest.fixture(scope="module")
def encoder_checkpoint() -> dict:
    return build_checkpoint("mae-encoder", width=768, depth=2)


@pytest.mark.parametrize("change,named", [
    (lambda sd: sd.pop("blocks.1.attn.qkv.bias"), "missing keys: blocks.1.attn.qkv.bias"),
    (lambda sd: sd.pop("norm.weight"), "missing keys: norm.weight"),
    (lambda sd: sd.update({"head.weight": torch.zeros(1000, 768)}), "unexpected keys: head.weight"),
    (lambda sd: sd.update({"decoder_pred.weight": torch.zeros(768, 512)}), "missing key decoder_embed.weight"),
    (lambda sd: sd.update({"blocks.0.mlp.fc2.weight": torch.zeros(768, 3000)}),
     "wrong shapes: blocks.0.mlp.fc2.weight (768, 3000) (expected (768, 3072))"),
    (lambda sd: sd.update({"fc_norm.weight": torch.ones(768), "fc_norm.bias": torch.zeros(768)}), "fc_norm"),
    (lambda sd: sd.update({"masking_net.cls_token": torch.zeros(1, 1, 768)}), "use --format clmae"),
], ids=["missing-block-key", "missing-norm", "extra-head", "partial-decoder", "wrong-shape", "fc_norm",
        "masking-under-mae"])
def test_each_bad_key_is_refused_by_name(change, named, encoder_checkpoint, tmp_path):
    state = dict(encoder_checkpoint["model"])
    change(state)
    save_checkpoint({"model": state}, tmp_path / "bad.pth")
    with pytest.raises(CheckpointKeyError) as raised:
        import_checkpoint.prepare_import(options("mae", tmp_path / "bad.pth", tmp_path / "out"))
    assert named in str(raised.value)


def test_containers_that_are_not_the_released_ones_are_refused(encoder_checkpoint, tmp_path):
    torch.save({**encoder_checkpoint, "model_ema": {}}, tmp_path / "ema.pth")
    with pytest.raises(CheckpointKeyError, match="unexpected top-level keys: model_ema"):
        import_checkpoint.prepare_import(options("mae", tmp_path / "ema.pth", tmp_path / "o"))
    with pytest.raises(ValueError, match="bare state dict"):
        import_checkpoint.prepare_import(options("timm", tmp_path / "ema.pth", tmp_path / "o"))
    save_checkpoint(build_checkpoint("mae-encoder", width=768, depth=2), tmp_path / "enc.pth")
    with pytest.raises(CheckpointKeyError, match="missing key masking_net.cls_token"):
        import_checkpoint.prepare_import(options("clmae", tmp_path / "enc.pth", tmp_path / "o"))


def test_weights_only_loading_allows_argparse_namespace_and_nothing_else(encoder_checkpoint, tmp_path):
    torch.save({**encoder_checkpoint, "args": argparse.Namespace(output_dir=pathlib.PurePosixPath("/runs"))},
               tmp_path / "path-in-args.pth")
    with pytest.raises(ValueError, match="weights_only=True"):
        import_checkpoint.prepare_import(options("mae", tmp_path / "path-in-args.pth", tmp_path / "o"))


def test_heads_of_an_unreleased_width_must_be_given(tmp_path):
    save_checkpoint(build_checkpoint("timm", width=384, depth=2), tmp_path / "vit-s.pth")
    with pytest.raises(ValueError, match="give --num-heads"):
        import_checkpoint.prepare_import(options("timm", tmp_path / "vit-s.pth", tmp_path / "o"))
    prepared = import_checkpoint.prepare_import(
        options("timm", tmp_path / "vit-s.pth", tmp_path / "o", "--num-heads", "6"))
    assert prepared.fields["architecture"]["num_heads"] == {"value": 6, "from": "--num-heads 6"}
    with pytest.raises(ValueError, match="not divisible by 5 heads"):
        import_checkpoint.prepare_import(options("timm", tmp_path / "vit-s.pth", tmp_path / "o", "--num-heads", "5"))


def test_vit_h_encoder_goes_past_protobufs_2_gb_limit_and_vit_l_does_not():
    def layout(width, depth, patch):
        return Layout(image_size=224, patch_size=patch, encoder=Stack(width=width, depth=depth, mlp_hidden=4 * width),
                      decoder=Stack(width=512, depth=8, mlp_hidden=2048), masking=None)

    past = import_checkpoint.graphs_past_protobuf_limit(expected_shapes(layout(1280, 32, 14)))
    assert list(past) == ["encoder"]
    assert re.match(r"63\d M parameters = 2\.5\d GB .* 2 GB limit", past["encoder"])
    assert import_checkpoint.graphs_past_protobuf_limit(expected_shapes(layout(1024, 24, 16))) == {}


def test_eval_transform_flags_override_the_format_default(encoder_checkpoint, tmp_path):
    save_checkpoint(encoder_checkpoint, tmp_path / "enc.pth")
    prepared = import_checkpoint.prepare_import(options(
        "mae", tmp_path / "enc.pth", tmp_path / "o", "--eval-resize-shorter-side", "232", "--eval-mean", "0.5", "0.5",
        "0.5", "--eval-std", "0.5", "0.5", "0.5", "--eval-interpolation", "bilinear"))
    spec = prepared.fields["eval_transform"]
    assert (spec["resize_shorter_side"], spec["interpolation"], spec["mean"], spec["std"]) == (
        232, "bilinear", [0.5, 0.5, 0.5], [0.5, 0.5, 0.5])
    assert "overridden: --eval-resize-shorter-side 232" in prepared.fields["architecture"]["eval_transform"]["from"]


def test_format2_example_validates_and_the_schema_ties_fields_to_the_graphs_present():
    example = json.loads((TRAINING_DIR / "bundle-format" / "manifest.example.format2.json").read_text())
    jsonschema.validate(example, SCHEMA)  # a real import: the full-size ViT-L of tools/import_full_size.sh
    encoder_only = json.loads(json.dumps(example))
    del encoder_only["graphs"]["decoder"]
    with pytest.raises(jsonschema.ValidationError):  # norm_pix_loss and decoder dims say there is a decoder
        jsonschema.validate(encoder_only, SCHEMA)
    encoder_only["norm_pix_loss"] = None
    encoder_only["dims"].update(decoder_embed_dim=None, decoder_depth=None, decoder_num_heads=None)
    jsonschema.validate(encoder_only, SCHEMA)
    encoder_only["graphs"]["keep_scores"] = example["graphs"]["encoder"]
    with pytest.raises(jsonschema.ValidationError):  # keep_scores only with method clmae
        jsonschema.validate(encoder_only, SCHEMA)
    with pytest.raises(jsonschema.ValidationError):  # format 2 has no config, format 1 no source
        jsonschema.validate({**example, "config": "vit_large_p16_224"}, SCHEMA)
