"""Export: ONNX parity with PyTorch, manifest per schema, sha256s; the committed bundles and example."""

import hashlib
import json

import jsonschema
import numpy as np
import onnxruntime as ort
import pytest
import torch

from clmae import export
from clmae.configs import get_config
from clmae.mae import build_models
from clmae.selection import select_random

from conftest import MICRO, REPO_DIR, TRAINING_DIR

SCHEMA = json.loads((TRAINING_DIR / "bundle-format" / "manifest.schema.json").read_text())


@pytest.fixture(scope="module", params=["clmae", "mae"])
def bundle(request, tmp_path_factory):
    """A micro bundle of each method, exported from a seeded initialisation."""
    out = tmp_path_factory.mktemp("bundles") / f"{request.param}-micro"
    torch.manual_seed(0)
    mae, masking = build_models(get_config(MICRO), request.param)
    with torch.no_grad():  # move the weights off their init values so that the check is not trivial
        for p in mae.parameters():
            p.add_(0.05 * torch.randn_like(p))
    manifest = export.write_bundle(mae=mae, masking=masking, config=get_config(MICRO), method=request.param,
                                   name=out.name, output=out, mask_ratio=0.75,
                                   training={"data": "synthetic", "num_images": 0, "epochs": 0, "batch_size": 1,
                                             "final_losses": {}, "wall_time_seconds": 0.0})
    return out, manifest, mae, masking


def test_manifest_valid_and_sha256s_match(bundle):
    out, manifest, _, _ = bundle
    on_disk = json.loads((out / "manifest.json").read_text())
    assert on_disk == manifest
    jsonschema.validate(on_disk, SCHEMA)
    expected = {"encoder", "decoder"} | ({"keep_scores"} if manifest["method"] == "clmae" else set())
    assert set(manifest["graphs"]) == expected
    for graph in manifest["graphs"].values():
        data = (out / graph["file"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == graph["sha256"] and len(data) == graph["bytes"]
    assert sorted(p.name for p in out.iterdir()) == sorted([g["file"] for g in manifest["graphs"].values()]
                                                           + ["manifest.json"])


@pytest.mark.parametrize("k", [1, 5, 16])
def test_graphs_match_pytorch_at_any_k(bundle, k):
    out, manifest, mae, masking = bundle
    gen = torch.Generator().manual_seed(k)
    images = torch.randn(2, 3, 16, 16, generator=gen)
    ids_keep, ids_restore, _ = select_random(torch.rand(2, 16, generator=gen), k)
    enc = ort.InferenceSession(str(out / "encoder.onnx"))
    dec = ort.InferenceSession(str(out / "decoder.onnx"))
    latent = enc.run(None, {"images": images.numpy(), "ids_keep": ids_keep.numpy()})[0]
    pred = dec.run(None, {"latent": latent, "ids_restore": ids_restore.numpy()})[0]
    with torch.no_grad():
        ref_latent = mae.forward_encoder(mae.forward_tokens(images), ids_keep)
        ref_pred = mae.forward_decoder(ref_latent, ids_restore)
    assert latent.shape == (2, 1 + k, 32)
    assert np.abs(latent - ref_latent.numpy()).max() < export.TOLERANCE
    assert np.abs(pred - ref_pred.numpy()).max() < export.TOLERANCE
    if masking is not None:
        scores = ort.InferenceSession(str(out / "keep-scores.onnx")).run(None, {"images": images.numpy()})[0]
        with torch.no_grad():
            ref_scores = masking(mae.forward_tokens(images))
        assert np.abs(scores - ref_scores.numpy()).max() < export.KEEP_SCORES_TOLERANCE


def test_graph_io_names_and_dynamic_axes(bundle):
    out, manifest, _, _ = bundle
    for graph in manifest["graphs"].values():
        session = ort.InferenceSession(str(out / graph["file"]))
        for declared, actual in ((graph["inputs"], session.get_inputs()), (graph["outputs"], session.get_outputs())):
            assert [t["name"] for t in declared] == [a.name for a in actual]
            assert [t["shape"] for t in declared] == [a.shape for a in actual]


def test_parity_failure_raises_and_leaves_output_untouched(tmp_path, monkeypatch):
    torch.manual_seed(0)
    mae, _ = build_models(get_config(MICRO), "mae")
    monkeypatch.setattr(export, "TOLERANCE", 0.0)
    with pytest.raises(export.ParityError):
        export.write_bundle(mae=mae, masking=None, config=get_config(MICRO), method="mae", name="x",
                            output=tmp_path / "x", mask_ratio=0.75,
                            training={"data": "d", "num_images": 0, "epochs": 0, "batch_size": 1, "final_losses": {},
                                      "wall_time_seconds": 0.0})
    assert not (tmp_path / "x").exists() and list(tmp_path.iterdir()) == []


def test_invalid_manifest_is_refused():
    with pytest.raises(jsonschema.ValidationError):
        export.validate_manifest({"format_version": 1, "name": "Bad Name"})


def test_committed_example_and_bundles_validate():
    jsonschema.validate(json.loads((TRAINING_DIR / "bundle-format" / "manifest.example.json").read_text()), SCHEMA)
    bundles = sorted((REPO_DIR / "models").glob("*/manifest.json"))
    for path in bundles:
        manifest = json.loads(path.read_text())
        jsonschema.validate(manifest, SCHEMA)
        for graph in manifest["graphs"].values():
            data = (path.parent / graph["file"]).read_bytes()
            assert hashlib.sha256(data).hexdigest() == graph["sha256"], f"{path.parent.name}/{graph['file']}"
