"""Shared fixtures: synthetic image folders (no downloaded data needed) and the test-sized config."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # import clmae without installing

TRAINING_DIR = Path(__file__).resolve().parents[1]
REPO_DIR = TRAINING_DIR.parent
MICRO = "vit_micro_p4_16"


def write_synthetic_images(root: Path, count: int, size: int = 20, seed: int = 0, classes: int = 2) -> Path:
    """count smooth RGB PNGs (random linear colour gradients plus a bright square) in class subfolders."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / (size - 1)
    for i in range(count):
        a, b, c = rng.uniform(-1, 1, size=(3, 3))
        img = 0.5 + 0.25 * (a[:, None, None] * x + b[:, None, None] * y + c[:, None, None] * x * y)
        r0, c0 = rng.integers(0, size - 6, size=2)
        img[:, r0:r0 + 6, c0:c0 + 6] = rng.uniform(0.6, 1.0, size=(3, 1, 1))
        pixels = (np.clip(img, 0, 1).transpose(1, 2, 0) * 255).astype(np.uint8)
        folder = root / f"class_{i % classes}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels, "RGB").save(folder / f"img_{i:04d}.png")
    return root


@pytest.fixture(scope="session")
def synthetic_folder(tmp_path_factory) -> Path:
    """64 synthetic training images."""
    return write_synthetic_images(tmp_path_factory.mktemp("synthetic"), 64)


@pytest.fixture(autouse=True)
def _few_threads():
    """Keep every test on at most 2 threads (the CI machine has 2 cores)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(min(previous, 2))
    yield
    torch.set_num_threads(previous)
