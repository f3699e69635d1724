"""The reference-output tool, and the committed references against the committed bundles."""

import json

import numpy as np
import pytest
import torch

from clmae import export
from clmae.configs import get_config
from clmae.mae import build_models
from clmae.tools.write_reference import build_reference, decode_f32, main

from conftest import MICRO, REPO_DIR


def test_reference_matches_pytorch(tmp_path):
    torch.manual_seed(0)
    mae, masking = build_models(get_config(MICRO), "clmae")
    out = tmp_path / "clmae-micro"
    export.write_bundle(mae=mae, masking=masking, config=get_config(MICRO), method="clmae", name=out.name,
                        output=out, mask_ratio=0.75,
                        training={"data": "d", "num_images": 0, "epochs": 0, "batch_size": 1, "final_losses": {},
                                  "wall_time_seconds": 0.0})
    main(["--bundle", str(out), "--out", str(tmp_path / "ref.json")])
    ref = json.loads((tmp_path / "ref.json").read_text())
    manifest = json.loads((out / "manifest.json").read_text())
    assert ref["graph_sha256"] == {k: g["sha256"] for k, g in manifest["graphs"].items()}
    images = torch.from_numpy(decode_f32(ref["input"]).copy())
    assert images.shape == (3, 3, 16, 16)
    with torch.no_grad():
        tokens = mae.forward_tokens(images)
        latent = mae.forward_encoder(tokens, torch.arange(16).expand(3, -1))
        assert np.abs(decode_f32(ref["embeddings"]["latent"]) - latent.numpy()).max() < 1e-4
        assert np.allclose(ref["embeddings"]["mean_patch_tokens"], latent[:, 1:].mean(1).numpy(), atol=1e-4)
        scores = masking(tokens)
        assert np.abs(np.array(ref["keep_scores"]) - scores.numpy()).max() < 1e-5
        for case in ("learned", "given"):
            r = ref["reconstructions"][case]
            pred = mae.forward_decoder(mae.forward_encoder(tokens, torch.tensor(r["ids_keep"])),
                                       torch.tensor(r["ids_restore"]))
            assert np.abs(decode_f32(r["pred"]) - pred.numpy()).max() < 1e-4, case
            assert np.array(r["mask"]).sum() == 3 * (16 - r["num_kept"])
    learned = ref["reconstructions"]["learned"]
    top = np.argsort(-np.array(ref["keep_scores"]), axis=1, kind="stable")[:, :4]
    assert (np.sort(top, 1) == np.sort(np.array(learned["ids_keep"]), 1)).all()


@pytest.mark.parametrize("name", ["clmae-vit-mini-p8-64", "mae-vit-mini-p8-64"])
def test_committed_reference_matches_committed_bundle(name):
    """Fails when a bundle is re-exported without re-running write_reference (see training/README.md)."""
    bundle, fixture = REPO_DIR / "models" / name, REPO_DIR / "test" / "fixtures" / "reference" / f"{name}.json"
    if not bundle.is_dir():
        pytest.skip(f"bundle {name} not present")
    ref = json.loads(fixture.read_text())
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert ref["graph_sha256"] == {k: g["sha256"] for k, g in manifest["graphs"].items()}
    fresh = build_reference(bundle)
    assert np.abs(decode_f32(fresh["embeddings"]["latent"]) - decode_f32(ref["embeddings"]["latent"])).max() < 1e-4
