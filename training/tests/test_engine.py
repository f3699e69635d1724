"""The two-step iteration: which parameters get gradients, the curriculum sign, and the MAE baseline path."""

import pytest
import torch
from torch import nn

from clmae.configs import get_config
from clmae.engine import StepSettings, build_optimizers, mae_step, masking_step
from clmae.mae import build_models

CONFIG = get_config("vit_micro_p4_16")


class RecordingOptimizer:
    """Stands in for an optimizer: records which parameters hold gradients at step() time."""

    def __init__(self, modules):
        self.modules = modules
        self.grads = None

    def step(self):
        self.grads = {f"{m}.{n}": (p.grad.clone() if p.grad is not None else None)
                      for m, module in self.modules.items() for n, p in module.named_parameters()}

    def zero_grad(self, set_to_none=True):
        for module in self.modules.values():
            module.zero_grad(set_to_none=True)


def _setup(seed=0):
    torch.manual_seed(seed)
    mae, masking = build_models(CONFIG, "clmae")
    images = torch.randn(4, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    return mae, masking, images


def test_masking_step_grads_only_on_masking_module():
    mae, masking, images = _setup()
    opt = RecordingOptimizer({"mae": mae, "masking": masking})
    masking_step(masking, mae, images, opt, StepSettings(), factor=1.0)
    for name, grad in opt.grads.items():
        if name.startswith("mae."):
            assert grad is None, name
        else:
            assert grad is not None and grad.abs().sum() > 0, name
    assert all(p.requires_grad for p in mae.parameters())  # unfrozen again afterwards


def test_mae_step_grads_only_on_mae():
    mae, masking, images = _setup()
    opt = RecordingOptimizer({"mae": mae, "masking": masking})
    mae_step(mae, masking, images, opt, StepSettings(), step=0)
    for name, grad in opt.grads.items():
        if name.startswith("masking."):
            assert grad is None, name
        elif "pos_embed" not in name:
            assert grad is not None, name


def test_curriculum_sign_flips_reconstruction_gradient():
    no_regularisers = StepSettings(lambda_kl=0.0, lambda_div=0.0, lambda_gauss=0.0)
    grads = {}
    for factor in (1.0, -1.0, 0.0):
        mae, masking, images = _setup()
        opt = RecordingOptimizer({"masking": masking})
        masking_step(masking, mae, images, opt, no_regularisers, factor=factor)
        grads[factor] = opt.grads
    for name, g in grads[1.0].items():
        assert torch.allclose(grads[-1.0][name], -g, atol=1e-7), name
        assert torch.count_nonzero(grads[0.0][name]) == 0, name  # lambda 0 and no regularisers: nothing moves


def test_regularisers_alone_move_scores_when_factor_zero():
    mae, masking, images = _setup()
    opt = RecordingOptimizer({"masking": masking})
    masking_step(masking, mae, images, opt, StepSettings(), factor=0.0)
    assert opt.grads["masking.head.weight"].abs().sum() > 0


class FixedScores(nn.Module):
    """A 'masking module' returning given scores, to compare the CL-MAE path with MAE's random masks."""

    def __init__(self, scores):
        super().__init__()
        self.scores = scores

    def forward(self, tokens):
        return self.scores


def test_clmae_path_with_one_minus_noise_reproduces_mae_step():
    """Spec 6.4 item 1 at the engine level: same masks, same loss, same update."""
    from clmae.engine import mask_noise

    settings = StepSettings(seed=3)
    noise = mask_noise(4, CONFIG.num_patches, seed=3, step=7, rank=0)
    results = []
    for masking in (None, FixedScores(1.0 - noise)):
        torch.manual_seed(0)
        mae, _ = build_models(CONFIG, "mae")
        opt, _ = build_optimizers(mae, None, lr=1e-3)
        images = torch.randn(4, 3, 16, 16, generator=torch.Generator().manual_seed(1))
        out = mae_step(mae, masking, images, opt, settings, step=7)
        results.append((out["loss_mae"], [p.detach().clone() for p in mae.parameters()]))
    assert results[0][0] == pytest.approx(results[1][0], abs=1e-7)
    for a, b in zip(results[0][1], results[1][1]):
        assert torch.allclose(a, b, atol=1e-7)


def test_weight_decay_groups():
    mae, masking, _ = _setup()
    opt_mae, opt_masking = build_optimizers(mae, masking, lr=1e-3)
    decay, no_decay = opt_mae.param_groups
    assert decay["weight_decay"] == 0.05 and no_decay["weight_decay"] == 0.0
    assert any(p is mae.encoder.cls_token for p in decay["params"])  # 3-D tokens do get weight decay
    assert all(p.ndim > 1 for p in decay["params"])
    assert not any(p is mae.stem.pos_embed for g in opt_mae.param_groups for p in g["params"])
    n_masking = sum(p.numel() for g in opt_masking.param_groups for p in g["params"])
    assert n_masking == sum(p.numel() for p in masking.parameters())


@pytest.mark.parametrize("faithful", [False, True])
def test_ghost_updates_only_with_the_faithful_flag(faithful):
    """Spec 4.2: one optimizer + zero_grad(set_to_none=False) also moves the frozen part (momentum only)."""
    mae, masking, images = _setup()
    opt_mae, opt_masking = build_optimizers(mae, masking, lr=1e-3, single=faithful)
    assert (opt_mae is opt_masking) == faithful
    settings = StepSettings(set_to_none=not faithful)
    mae_step(mae, masking, images, opt_mae, settings, step=0)
    masking_step(masking, mae, images, opt_masking, settings, factor=1.0)
    before = [p.detach().clone() for p in masking.parameters()]
    mae_step(mae, masking, images, opt_mae, settings, step=1)  # the masking module is frozen in this step
    moved = any(not torch.equal(a, p) for a, p in zip(before, masking.parameters()))
    assert moved == faithful
