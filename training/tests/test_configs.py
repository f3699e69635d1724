"""Every named config builds and runs forward + backward (style rule 3).

Small configs run on real tensors and are checked for NaNs; the 224-pixel ones run on the meta
device (shapes and autograd wiring only; no memory or compute).
"""

import pytest
import torch

from clmae.configs import CONFIGS, get_config
from clmae.losses import masked_mse
from clmae.mae import build_models
from clmae.selection import gate_tokens, identity_restore, num_kept, select_random, select_topk

REAL = {"vit_micro_p4_16", "vit_mini_p8_64", "vit_tiny_p8_64"}


def test_unknown_config_lists_valid_names():
    with pytest.raises(ValueError, match="vit_base_p16_224"):
        get_config("vit_gigantic")


def test_paper_settings():
    base = get_config("vit_base_p16_224")
    assert (base.embed_dim, base.depth, base.num_heads, base.num_patches) == (768, 12, 12, 196)
    assert (base.decoder_embed_dim, base.decoder_depth, base.masking_depth, base.masking_num_heads) == (512, 8, 5, 4)
    mini = get_config("vit_mini_p8_64")
    assert (mini.num_patches, mini.embed_dim, mini.depth, mini.decoder_embed_dim, mini.decoder_depth,
            mini.masking_depth) == (64, 192, 6, 128, 4, 2)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_forward_backward(name):
    config = get_config(name)
    device = torch.device("cpu") if name in REAL else torch.device("meta")
    torch.manual_seed(0)
    with device:
        mae, masking = build_models(config, "clmae")
        images = torch.randn(2, 3, config.image_size, config.image_size)
    k = num_kept(config.num_patches, 0.75)
    tokens = mae.forward_tokens(images)
    keep_scores = masking(tokens)
    assert keep_scores.shape == (2, config.num_patches)
    ids_keep, ids_restore, mask = (select_topk(keep_scores, k) if device.type == "cpu"
                                   else select_random(torch.rand(2, config.num_patches, device=device), k))
    pred = mae(images, ids_keep, ids_restore)
    assert pred.shape == (2, config.num_patches, config.patch_dim)
    loss = masked_mse(pred, mae.forward_target(images), mask)
    soft = mae.forward_decoder(mae.encoder.forward_sequence(gate_tokens(tokens, keep_scores)),
                               identity_restore(2, config.num_patches, device))
    (loss + soft.float().pow(2).mean()).backward()
    if device.type == "cpu":
        assert torch.isfinite(loss)
        for module in (mae, masking):
            for pname, p in module.named_parameters():
                assert p.grad is not None and torch.isfinite(p.grad).all(), pname
