"""The in-memory pipeline: decoding equals the files, per-image crop boxes, exact resume, the decode cache."""

import os

import numpy as np
import pytest
import torch
from torchvision import transforms

from clmae.data import CROP_SCALE, AugmentedImages, EpochSampler, build_train_loader, build_train_transform, \
    list_images, load_rgb, subset
from clmae.memory_pipeline import InMemoryImages, build_memory_loader, cache_key, decode_images, draw_crop_box, \
    load_images


@pytest.fixture(scope="module")
def files(synthetic_folder):
    return subset(list_images(synthetic_folder), 32, 0)  # 20 x 20 PNGs


def _loader(dataset, start_iter=0, epoch=0, seed=0):
    return list(build_memory_loader(dataset, batch_size=8, seed=seed, epoch=epoch, rank=0, world_size=1,
                                    start_iter=start_iter))


@pytest.mark.parametrize("height,width,scale", [(96, 96, (0.2, 1.0)), (40, 100, (0.9, 1.0)), (12, 200, (0.9, 1.0))])
def test_crop_boxes_are_torchvisions_draws(height, width, scale):
    """Same box and flip as RandomResizedCrop + RandomHorizontalFlip under manual_seed (files pipeline);
    the last shape has no valid box in 10 tries, so it checks the central-crop fallback too."""
    for seed in range(200):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            box = transforms.RandomResizedCrop.get_params(torch.zeros(3, height, width), scale, (3 / 4, 4 / 3))
            flip = bool(torch.rand(1) < 0.5)
        drawn = draw_crop_box(seed, height, width, scale)
        assert (drawn.top, drawn.left, drawn.height, drawn.width, drawn.flip) == (*box, flip), seed


def test_decoding_equals_the_files(files):
    images = decode_images(files, 20)  # the PNGs' own size: no resize
    assert images.dtype == torch.uint8 and images.shape == (32, 3, 20, 20)
    for i in (0, 17, 31):
        assert np.array_equal(images[i].permute(1, 2, 0).numpy(), np.asarray(load_rgb(files[i])))
    smaller = decode_images(files[:2], 16)  # shorter side to 16 (square images: a plain resize)
    assert smaller.shape == (2, 3, 16, 16)


def test_memory_batches_match_the_files_pipeline(files):
    """Same order, same boxes and flips; only PIL's and torch's bicubic resampling differ (a few levels)."""
    memory = _loader(InMemoryImages(decode_images(files, 20), 16, CROP_SCALE))
    loader = build_train_loader(AugmentedImages(files, build_train_transform(16)), batch_size=8, seed=0, epoch=0,
                                rank=0, world_size=1, start_iter=0, num_workers=0)
    from_files = list(loader)
    assert len(memory) == len(from_files) == 4
    for a, b in zip(memory, from_files):
        diff = (a - b).abs() * 0.225 * 255  # back to 0-255 levels
        assert a.shape == b.shape and diff.mean() < 0.5 and diff.max() <= 8


def test_two_images_of_one_batch_get_different_boxes(files):
    same = decode_images(files[:1], 20).expand(16, -1, -1, -1).contiguous()  # 16 copies of one image
    dataset = InMemoryImages(same, 16, CROP_SCALE)
    batch = _loader(dataset)[0]
    seeds = [s for _, s in EpochSampler(16, seed=0, epoch=0, rank=0, world_size=1, batch_size=8)][:8]
    boxes = dataset.crop_boxes(seeds)
    assert len(set(boxes)) == 8  # one box per image, not one per batch
    assert all(not torch.equal(batch[0], batch[i]) for i in range(1, 8))


def test_augmentation_is_a_function_of_seed_epoch_and_position(files):
    dataset = InMemoryImages(decode_images(files, 20), 16, CROP_SCALE)
    full = _loader(dataset)
    assert len(full) == 4
    assert all(torch.equal(a, b) for a, b in zip(full, _loader(dataset)))  # deterministic
    assert all(torch.equal(a, b) for a, b in zip(full[2:], _loader(dataset, start_iter=2)))  # resumed
    assert not torch.equal(full[0], _loader(dataset, epoch=1)[0])
    assert not torch.equal(full[0], _loader(dataset, seed=1)[0])


def test_decode_cache_is_keyed_by_the_file_list(files, tmp_path):
    messages = []
    first = load_images(files, 20, tmp_path, log=messages.append)
    cached = list(tmp_path.glob("images-32x20px-*.npy"))
    assert len(cached) == 1 and messages[-1].startswith("decoded")
    again = load_images(files, 20, tmp_path, log=messages.append)
    assert messages[-1].startswith("loaded") and torch.equal(first, again)
    assert cache_key(files, 20) != cache_key(files, 24) != cache_key(files[1:], 20)
    stat = files[0].stat()
    key = cache_key(files, 20)
    os.utime(files[0], ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))  # a changed file decodes again
    try:
        assert cache_key(files, 20) != key
    finally:
        os.utime(files[0], ns=(stat.st_atime_ns, stat.st_mtime_ns))


def test_bad_inputs_fail_clearly():
    with pytest.raises(ValueError, match="uint8"):
        InMemoryImages(torch.zeros(2, 3, 8, 8), 8, CROP_SCALE)
