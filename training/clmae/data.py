"""Image folders, the train and eval transforms, and an exactly resumable epoch order.

Every image is converted to RGB. Labels are unused: files may sit directly in the folder or in
class subfolders (ImageFolder layout). The data order and every augmentation are functions of
(seed, epoch, position), so an interrupted epoch resumes exactly, with any number of workers.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Iterator

import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset, Sampler
from torchvision import transforms
from torchvision.transforms import InterpolationMode

from clmae.configs import ModelConfig

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff", ".ppm")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CROP_SCALE = (0.2, 1.0)  # RandomResizedCrop's area range in MAE pretraining (spec 1.10)
CROP_RATIO = (3.0 / 4.0, 4.0 / 3.0)  # its aspect-ratio range (torchvision's default)


def eval_transform_spec(config: ModelConfig) -> dict:
    """The evaluation transform, defined once; written verbatim into the bundle manifest."""
    return {"color_mode": "RGB", "resize_shorter_side": config.eval_resize_shorter_side,
            "center_crop": config.eval_center_crop, "interpolation": "bicubic", "antialias": True,
            "mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD)}


def build_eval_transform(spec: dict) -> transforms.Compose:
    """PIL RGB image -> (3, crop, crop) normalised float32, per the manifest's eval_transform."""
    interp = {"bicubic": InterpolationMode.BICUBIC, "bilinear": InterpolationMode.BILINEAR}[spec["interpolation"]]
    return transforms.Compose([
        transforms.Resize(spec["resize_shorter_side"], interpolation=interp, antialias=spec["antialias"]),
        transforms.CenterCrop(spec["center_crop"]),
        transforms.ToTensor(),
        transforms.Normalize(spec["mean"], spec["std"]),
    ])


def build_train_transform(image_size: int, crop_scale: tuple[float, float] = CROP_SCALE) -> transforms.Compose:
    """MAE pretraining augmentation: RandomResizedCrop(scale 0.2-1, bicubic) + flip + normalise."""
    return transforms.Compose([
        transforms.RandomResizedCrop(image_size, scale=tuple(crop_scale), ratio=CROP_RATIO,
                                     interpolation=InterpolationMode.BICUBIC, antialias=True),
        transforms.RandomHorizontalFlip(),
        transforms.ToTensor(),
        transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD),
    ])


def list_images(root: str | os.PathLike) -> list[Path]:
    """Sorted image files under root (recursively). Clear errors for a missing or empty folder."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"image folder not found: {root}")
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
    if not files:
        raise ValueError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) found under {root}")
    return files


def load_rgb(path: Path) -> Image.Image:
    """Open an image as RGB; unreadable files fail naming the path."""
    try:
        with Image.open(path) as img:
            return img.convert("RGB")
    except (OSError, ValueError) as err:
        raise OSError(f"cannot read image {path}: {err}") from err


def subset(files: list[Path], limit: int | None, seed: int) -> list[Path]:
    """A seeded random subset of `limit` files (all when limit is None), kept in sorted order."""
    if limit is None or limit >= len(files):
        return files
    if limit < 1:
        raise ValueError(f"--limit-images must be >= 1, got {limit}")
    picked = sorted(random.Random(seed).sample(range(len(files)), limit))
    return [files[i] for i in picked]


class AugmentedImages(Dataset):
    """Items are (index, sample_seed) pairs; the augmentation's randomness comes from sample_seed only."""

    def __init__(self, files: list[Path], transform: transforms.Compose) -> None:
        self.files = files
        self.transform = transform

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, item: tuple[int, int]) -> torch.Tensor:
        index, sample_seed = item
        img = load_rgb(self.files[index])
        with torch.random.fork_rng(devices=[]):  # torchvision draws from the global CPU generator
            torch.manual_seed(sample_seed)
            return self.transform(img)  # (3, H, W)


class EpochSampler(Sampler):
    """This rank's share of a seeded permutation of the epoch, from sample position `start`.

    Yields (index, sample_seed); the permutation is truncated to a multiple of world_size * batch
    (drop_last, as MAE), and rank r takes positions r, r + world, ...
    """

    def __init__(self, num_items: int, *, seed: int, epoch: int, rank: int, world_size: int, batch_size: int,
                 start: int = 0) -> None:
        self.num_items, self.seed, self.epoch = num_items, seed, epoch
        self.rank, self.world_size, self.start = rank, world_size, start
        self.per_rank = (num_items // (world_size * batch_size)) * batch_size

    def __iter__(self) -> Iterator[tuple[int, int]]:
        gen = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        order = torch.randperm(self.num_items, generator=gen)[: self.per_rank * self.world_size]
        mine = order[self.rank:: self.world_size].tolist()
        for pos in range(self.start, self.per_rank):
            global_pos = pos * self.world_size + self.rank
            yield mine[pos], (self.seed * 1_000_003 + self.epoch) * 10_000_019 + global_pos

    def __len__(self) -> int:
        return max(0, self.per_rank - self.start)


def build_train_loader(dataset: AugmentedImages, *, batch_size: int, seed: int, epoch: int, rank: int,
                       world_size: int, start_iter: int, num_workers: int) -> DataLoader:
    """Batches (N, 3, H, W) of one epoch, from iteration start_iter on."""
    sampler = EpochSampler(len(dataset), seed=seed, epoch=epoch, rank=rank, world_size=world_size,
                           batch_size=batch_size, start=start_iter * batch_size)
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=num_workers, drop_last=True,
                      pin_memory=torch.cuda.is_available(), persistent_workers=False)


def load_eval_batch(root: str | os.PathLike, spec: dict, *, count: int = 16, seed: int = 0) -> tuple[torch.Tensor, list[str]]:
    """A fixed, seeded set of `count` images under root, eval-transformed -> ((count, 3, H, W), paths)."""
    files = list_images(root)
    picked = subset(files, min(count, len(files)), seed)
    transform = build_eval_transform(spec)
    return torch.stack([transform(load_rgb(p)) for p in picked]), [str(p) for p in picked]
