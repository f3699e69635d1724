"""Image folders, RGB conversion, clear errors, and the resumable epoch order."""

import json
from pathlib import Path

import jsonschema
import pytest
import torch
from PIL import Image

from clmae.configs import get_config
from clmae.data import AugmentedImages, EpochSampler, build_train_loader, build_train_transform, \
    eval_transform_spec, list_images, load_eval_batch, load_rgb, subset

from conftest import TRAINING_DIR


def test_missing_and_empty_folders(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope"):
        list_images(tmp_path / "nope")
    (tmp_path / "empty" / "class_a").mkdir(parents=True)
    (tmp_path / "empty" / "class_a" / "notes.txt").write_text("not an image")
    with pytest.raises(ValueError, match="no images"):
        list_images(tmp_path / "empty")


def test_unreadable_image_names_the_path(tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"this is not a jpeg")
    with pytest.raises(OSError, match="broken.jpg"):
        load_rgb(bad)


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "CMYK", "I;16"])
def test_every_image_becomes_rgb(tmp_path, mode):
    path = tmp_path / f"img_{mode.replace(';', '')}.png"
    img = Image.new("RGB", (20, 12), (200, 30, 90)).convert(mode)
    img.save(path) if mode != "CMYK" else img.save(path.with_suffix(".jpg"))
    loaded = load_rgb(path if mode != "CMYK" else path.with_suffix(".jpg"))
    assert loaded.mode == "RGB" and loaded.size == (20, 12)
    tensor = build_train_transform(16)(loaded)
    assert tensor.shape == (3, 16, 16) and tensor.dtype == torch.float32


def test_eval_transform_spec_fits_the_manifest_schema(synthetic_folder):
    schema = json.loads((TRAINING_DIR / "bundle-format" / "manifest.schema.json").read_text())
    spec = eval_transform_spec(get_config("vit_mini_p8_64"))
    jsonschema.validate(spec, {**schema["$defs"]["eval_transform"], "$defs": schema["$defs"]})
    assert (spec["resize_shorter_side"], spec["center_crop"], spec["interpolation"]) == (73, 64, "bicubic")
    batch, paths = load_eval_batch(synthetic_folder, eval_transform_spec(get_config("vit_micro_p4_16")), count=5)
    assert batch.shape == (5, 3, 16, 16)
    again, paths_again = load_eval_batch(synthetic_folder, eval_transform_spec(get_config("vit_micro_p4_16")), count=5)
    assert paths == paths_again and torch.equal(batch, again)  # fixed, seeded choice


def test_sampler_shards_and_resumes():
    full = [list(EpochSampler(50, seed=1, epoch=2, rank=r, world_size=2, batch_size=4)) for r in (0, 1)]
    assert all(len(x) == 24 for x in full)  # 50 // (2 * 4) * 4
    indices = [i for shard in full for i, _ in shard]
    assert len(set(indices)) == 48  # disjoint shards
    resumed = list(EpochSampler(50, seed=1, epoch=2, rank=1, world_size=2, batch_size=4, start=8))
    assert resumed == full[1][8:]
    other_epoch = [i for i, _ in EpochSampler(50, seed=1, epoch=3, rank=0, world_size=2, batch_size=4)]
    assert other_epoch != [i for i, _ in full[0]]


def test_augmentation_is_a_function_of_position(synthetic_folder):
    files = subset(list_images(synthetic_folder), 16, 0)
    dataset = AugmentedImages(files, build_train_transform(16))

    def batches(start_iter, workers):
        loader = build_train_loader(dataset, batch_size=4, seed=0, epoch=0, rank=0, world_size=1,
                                    start_iter=start_iter, num_workers=workers)
        return list(loader)

    full = batches(0, 0)
    assert len(full) == 4
    assert all(torch.equal(a, b) for a, b in zip(full[2:], batches(2, 2)))  # resumed, other worker count
    assert not torch.equal(full[0], full[1])


def test_subset_is_seeded_and_sorted(synthetic_folder):
    files = list_images(synthetic_folder)
    a, b = subset(files, 10, 3), subset(files, 10, 3)
    assert a == b and a == sorted(a) and len(a) == 10
    assert subset(files, None, 0) == files
