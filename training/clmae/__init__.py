"""CL-MAE (Madan et al., WACV 2024) and its MAE baseline (He et al., CVPR 2022) in PyTorch 2.x.

Layers (see ../README.md): model math (vit, masking, selection, mae, losses), the algorithm step
(engine), and the run's wiring (data, checkpoint, run_log, train, export).
"""

from clmae.configs import CONFIGS, ModelConfig, get_config

__all__ = ["CONFIGS", "ModelConfig", "get_config"]
