"""The in-memory training pipeline (`--data-pipeline memory`): decode once, augment batches of tensors.

The training set is decoded once into a uint8 tensor (N, 3, S, S) at the load size S (shorter side
resized to S, bicubic with antialias, then centre-cropped; a no-op for Imagenette's 96 x 96 JPEGs at
S = 96), optionally cached as an .npy file keyed by the file list. Each batch is then cut from that
tensor with one RandomResizedCrop box and one flip per image, drawn from a generator seeded by the
image's sample seed, i.e. by (seed, epoch, position in the epoch) as in the files pipeline. The draws
follow torchvision's RandomResizedCrop.get_params and RandomHorizontalFlip step for step, so both
pipelines cut the same box from the same image. torchvision's v2 transforms draw one set of
parameters per call, which would give a whole batch one crop; hence the per-image draw here.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
import torch.nn.functional as F
import torchvision.transforms.v2.functional as TF
from torchvision.transforms import InterpolationMode

from clmae.data import CROP_RATIO, IMAGENET_MEAN, IMAGENET_STD, EpochSampler, load_rgb


@dataclass(frozen=True)
class CropBox:
    """One image's augmentation: the crop box (top, left, height, width) in the stored image, and the flip."""

    top: int
    left: int
    height: int
    width: int
    flip: bool


def draw_crop_box(sample_seed: int, height: int, width: int, scale: tuple[float, float],
                  ratio: tuple[float, float] = CROP_RATIO) -> CropBox:
    """RandomResizedCrop.get_params, then RandomHorizontalFlip's draw, from a generator seeded by sample_seed.

    The same sequence of draws as torchvision's files-path transform under torch.manual_seed(sample_seed),
    without touching the global generator (forking it costs about 1 ms per image).
    """
    gen = torch.Generator().manual_seed(sample_seed)
    area = height * width
    log_ratio = torch.log(torch.tensor(ratio))
    box = None
    for _ in range(10):
        target_area = area * torch.empty(1).uniform_(scale[0], scale[1], generator=gen).item()
        aspect = torch.exp(torch.empty(1).uniform_(log_ratio[0], log_ratio[1], generator=gen)).item()
        w = int(round(math.sqrt(target_area * aspect)))
        h = int(round(math.sqrt(target_area / aspect)))
        if 0 < w <= width and 0 < h <= height:
            top = int(torch.randint(0, height - h + 1, size=(1,), generator=gen).item())
            left = int(torch.randint(0, width - w + 1, size=(1,), generator=gen).item())
            box = (top, left, h, w)
            break
    if box is None:  # torchvision's fallback: the central crop at the nearest allowed aspect ratio
        in_ratio = width / height
        if in_ratio < min(ratio):
            w, h = width, int(round(width / min(ratio)))
        elif in_ratio > max(ratio):
            h, w = height, int(round(height * max(ratio)))
        else:
            w, h = width, height
        box = ((height - h) // 2, (width - w) // 2, h, w)
    flip = bool(torch.rand(1, generator=gen).item() < 0.5)
    return CropBox(*box, flip=flip)


def decode_images(files: list[Path], load_size: int) -> torch.Tensor:
    """uint8 (N, 3, S, S): every file as RGB, shorter side resized to S (bicubic, antialias), centre-cropped."""
    out = torch.empty(len(files), 3, load_size, load_size, dtype=torch.uint8)
    for i, path in enumerate(files):
        img = load_rgb(path)
        pixels = torch.from_numpy(np.array(img, dtype=np.uint8)).permute(2, 0, 1)  # (3, H, W)
        if pixels.shape[1:] != (load_size, load_size):
            pixels = TF.resize(pixels, load_size, InterpolationMode.BICUBIC, antialias=True)
            pixels = TF.center_crop(pixels, [load_size, load_size])
        out[i] = pixels
    return out


def cache_key(files: list[Path], load_size: int) -> str:
    """sha256 of the load size and every file's resolved path, size and mtime: any change decodes again."""
    digest = hashlib.sha256(f"load_size={load_size}\n".encode())
    for path in files:
        stat = path.stat()
        digest.update(f"{path.resolve()}\t{stat.st_size}\t{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def load_images(files: list[Path], load_size: int, cache_dir: str | os.PathLike | None = None,
                log=print) -> torch.Tensor:
    """decode_images, through an .npy cache in cache_dir when given (written atomically)."""
    target = None
    if cache_dir is not None:
        target = Path(cache_dir) / f"images-{len(files)}x{load_size}px-{cache_key(files, load_size)[:16]}.npy"
        if target.is_file():
            array = np.load(target)
            if array.shape == (len(files), 3, load_size, load_size) and array.dtype == np.uint8:
                log(f"loaded {len(files)} decoded images from {target}")
                return torch.from_numpy(array)
    t0 = time.perf_counter()
    images = decode_images(files, load_size)
    log(f"decoded {len(files)} images at {load_size} px in {time.perf_counter() - t0:.1f} s "
        f"({images.numel() / 2**20:.0f} MiB)")
    if target is not None:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
        with open(tmp, "wb") as f:
            np.save(f, images.numpy())
        os.replace(tmp, target)
    return images


class InMemoryImages:
    """The decoded training set and its batched augmentation.

    Args:
        images: uint8 (N, 3, S, S), from load_images.
        image_size: the side of the training crops (the model's input).
        crop_scale: RandomResizedCrop's area range (MAE: 0.2 to 1).
    """

    def __init__(self, images: torch.Tensor, image_size: int, crop_scale: tuple[float, float]) -> None:
        if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"expected uint8 (N, 3, S, S) images, got {tuple(images.shape)} {images.dtype}")
        self.images = images
        self.image_size = image_size
        self.crop_scale = tuple(crop_scale)
        self.mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
        self.std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)

    def __len__(self) -> int:
        return self.images.shape[0]

    def crop_boxes(self, sample_seeds: list[int]) -> list[CropBox]:
        _, _, height, width = self.images.shape
        return [draw_crop_box(s, height, width, self.crop_scale) for s in sample_seeds]

    def batch(self, indices: list[int], sample_seeds: list[int]) -> torch.Tensor:
        """(B, 3, H, W) float32, normalised: one crop box and flip per image, then ToTensor + Normalize."""
        size = (self.image_size, self.image_size)
        crops = []
        with _one_thread():
            for index, box in zip(indices, self.crop_boxes(sample_seeds)):
                region = self.images[index:index + 1, :, box.top:box.top + box.height,
                                     box.left:box.left + box.width]
                # uint8 in and out (rounded, as PIL does); equal to torchvision's resized_crop without its dispatch
                crop = F.interpolate(region, size=size, mode="bicubic", antialias=True)  # (1, 3, H, W)
                crops.append(crop.flip(-1) if box.flip else crop)
        batch = torch.cat(crops).float().div_(255.0)
        return batch.sub_(self.mean).div_(self.std)


@contextlib.contextmanager
def _one_thread():
    """Run many tiny ops on one thread: splitting a 64 x 64 resize over threads costs more than it saves
    (a batch of 64 crops took 72 ms on one thread, 158-187 ms on two, on the busy 2-core machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def build_memory_loader(dataset: InMemoryImages, *, batch_size: int, seed: int, epoch: int, rank: int,
                        world_size: int, start_iter: int) -> Iterator[torch.Tensor]:
    """Batches (N, 3, H, W) of one epoch from iteration start_iter on: the files pipeline's order and seeds."""
    sampler = EpochSampler(len(dataset), seed=seed, epoch=epoch, rank=rank, world_size=world_size,
                           batch_size=batch_size, start=start_iter * batch_size)
    items = iter(sampler)
    while True:
        chunk = [item for _, item in zip(range(batch_size), items)]
        if len(chunk) < batch_size:  # drop_last, as the DataLoader
            return
        yield dataset.batch([i for i, _ in chunk], [s for _, s in chunk])
