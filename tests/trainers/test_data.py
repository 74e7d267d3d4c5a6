"""Datasets: resolution, decoding, seeded aligned patches, validation pairs, clear errors."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from search_space.errors import InputError
from tests.conftest import FIXTURES
from trainers import data
from trainers.data import (
    BUNDLED,
    PatchDataset,
    _cached_image,
    resolve_dataset,
    validation_pairs,
)
from trainers.degrade import bicubic_downsample
from trainers.images import list_images, load_image


@pytest.fixture(autouse=True)
def _private_disk_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ESRNAS_CACHE_DIR", str(tmp_path / "cache"))
    data._cache.clear()


def _write(folder, name, hw=(40, 52), seed=0):
    folder.mkdir(parents=True, exist_ok=True)
    img = np.random.default_rng(seed).integers(0, 256, (*hw, 3)).astype(np.uint8)
    Image.fromarray(img).save(folder / name)
    return img


def test_bundled_sets_resolve_with_expected_sizes():
    assert len(list_images(resolve_dataset("Set5"))) == 5
    assert len(list_images(resolve_dataset("Set14"))) == 14
    assert len(list_images(resolve_dataset("SunHays80"))) == 80


def test_folder_div2k_layout_and_errors(tmp_path):
    _write(tmp_path / "div2k" / "HR", "0001.png")
    assert resolve_dataset(tmp_path / "div2k") == tmp_path / "div2k" / "HR"
    with pytest.raises(InputError, match=r"nope: dataset folder not found"):
        resolve_dataset(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("x")
    with pytest.raises(InputError, match=r"empty: no images found"):
        resolve_dataset(tmp_path / "empty")


def test_load_image_grayscale_and_corrupt(tmp_path):
    bridge = load_image(BUNDLED["Set14"] / "bridge.png")
    assert bridge.shape == (512, 512, 3) and bridge.dtype == np.uint8
    assert np.array_equal(bridge[..., 0], bridge[..., 2])
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    with pytest.raises(InputError, match=r"broken\.png: cannot read image"):
        load_image(bad)
    with pytest.raises(InputError, match=r"broken\.png"):
        PatchDataset(tmp_path, scale=2, lr_patch=4, seed=0)


def test_patches_shape_range_and_determinism():
    ds = PatchDataset("Set5", scale=4, lr_patch=12, seed=7)
    lr, hr = ds[3]
    assert lr.shape == (3, 12, 12) and hr.shape == (3, 48, 48)
    assert lr.dtype == torch.float32 and 0 <= float(lr.min()) and float(hr.max()) <= 1
    again = PatchDataset("Set5", scale=4, lr_patch=12, seed=7)[3]
    assert torch.equal(again[0], lr) and torch.equal(again[1], hr)
    other_seed = PatchDataset("Set5", scale=4, lr_patch=12, seed=8)[3]
    assert not torch.equal(other_seed[1], hr)


@pytest.mark.parametrize("corner", ["top_left", "interior", "bottom_right"])
def test_patch_lr_equals_crop_of_whole_image_lr(corner):
    ds = PatchDataset("Set14", scale=3, lr_patch=10, seed=0)
    k = [p.name for p in ds.paths].index("ppt3.png")  # sharp edges: any border effect would show
    h, w = ds.sizes[k][0] // 3, ds.sizes[k][1] // 3
    top, left = {"top_left": (0, 0), "interior": (h // 2, w // 3),
                 "bottom_right": (h - 10, w - 10)}[corner]
    lr, hr = ds._crop(k, top, left)
    full_hr = _cached_image(ds.paths[k])
    full_lr = bicubic_downsample(full_hr, 3)
    assert np.array_equal(lr, full_lr[top:top + 10, left:left + 10])
    assert np.array_equal(hr, full_hr[top * 3:(top + 10) * 3, left * 3:(left + 10) * 3])


def test_augmentation_is_the_same_dihedral_transform_on_lr_and_hr():
    plain = PatchDataset("Set5", scale=2, lr_patch=8, seed=1, augment=False)
    aug = PatchDataset("Set5", scale=2, lr_patch=8, seed=1, augment=True)
    changed = 0
    for i in range(12):
        (lr0, hr0), (lr1, hr1) = plain[i], aug[i]
        matches = [(f, r) for f in range(4) for r in range(4)
                   if torch.equal(_dihedral(lr0, f, r), lr1)
                   and torch.equal(_dihedral(hr0, f, r), hr1)]
        assert matches, f"item {i}: augmented pair is not a joint flip/rotation of the plain pair"
        changed += not torch.equal(lr0, lr1)
    assert changed >= 6


def _dihedral(x, flips, rot):
    if flips & 1:
        x = x.flip(-1)
    if flips & 2:
        x = x.flip(-2)
    return torch.rot90(x, rot, dims=(-2, -1))


def test_premade_lr_folder_gives_the_same_patches():
    made = PatchDataset("Set14", scale=4, lr_patch=16, seed=2)
    premade = PatchDataset("Set14", scale=4, lr_patch=16, seed=2, lr_dir=FIXTURES / "matlab_lr")
    for i in range(8):
        assert torch.equal(made[i][0], premade[i][0])
        assert torch.equal(made[i][1], premade[i][1])


def test_premade_lr_folder_errors(tmp_path):
    _write(tmp_path / "hr", "a.png", hw=(40, 40))
    (tmp_path / "lr" / "X2").mkdir(parents=True)
    with pytest.raises(InputError, match=r"no LR image for a\.png \(expected ax2\.png"):
        PatchDataset(tmp_path / "hr", scale=2, lr_patch=8, seed=0, lr_dir=tmp_path / "lr")
    _write(tmp_path / "lr" / "X2", "ax2.png", hw=(19, 20))
    ds = PatchDataset(tmp_path / "hr", scale=2, lr_patch=8, seed=0, lr_dir=tmp_path / "lr")
    with pytest.raises(InputError, match=r"ax2\.png: LR image is 20x19, expected 20x20"):
        ds[0]


def test_image_smaller_than_patch_is_named(tmp_path):
    _write(tmp_path, "big.png", hw=(64, 64))
    _write(tmp_path, "tiny.png", hw=(30, 64))
    with pytest.raises(InputError, match=r"tiny\.png: image is 64x30, smaller than one training "
                                         r"patch \(64x64 HR at x4\)"):
        PatchDataset(tmp_path, scale=4, lr_patch=16, seed=0)


def test_dataloader_workers_give_the_same_batches():
    ds = PatchDataset("Set5", scale=2, lr_patch=8, seed=3)
    kwargs = dict(batch_size=4, sampler=range(8))
    serial = [b[1] for b in torch.utils.data.DataLoader(ds, num_workers=0, **kwargs)]
    parallel = [b[1] for b in torch.utils.data.DataLoader(ds, num_workers=2, **kwargs)]
    assert all(torch.equal(a, b) for a, b in zip(serial, parallel, strict=True))


def test_validation_pairs_modcrop_and_cache(tmp_path):
    pairs = validation_pairs("Set14", 3)
    names = [n for n, _, _ in pairs]
    assert len(names) == 14 and names[0] == "baboon"
    comic = dict((n, (lr, hr)) for n, lr, hr in pairs)["comic"]  # 250x361 HR
    assert comic[1].shape == (360, 249, 3) and comic[0].shape == (120, 83, 3)
    assert validation_pairs("Set14", 3) is pairs
    folder = tmp_path / "val"
    shutil.copytree(BUNDLED["Set5"], folder)
    first = validation_pairs(folder, 2)
    _write(folder, "zz.png", hw=(20, 20))
    assert len(validation_pairs(folder, 2)) == len(first) + 1  # a changed folder is re-read


def test_lr_disk_cache_is_shared_and_follows_file_changes(tmp_path):
    folder = tmp_path / "imgs"
    img = _write(folder, "a.png", hw=(40, 40))
    first = _cached_image(folder / "a.png", scale=2)
    assert np.array_equal(first, bicubic_downsample(img, 2))
    data._cache.clear()  # as in another process: only the disk cache is left
    again = _cached_image(folder / "a.png", scale=2)
    assert isinstance(again, np.memmap) and np.array_equal(again, first)
    assert len(list((tmp_path / "cache" / "lr").glob("*.npy"))) == 1
    _write(folder, "a.png", hw=(40, 40), seed=1)  # new content: a new entry, not the stale one
    data._cache.clear()
    assert not np.array_equal(_cached_image(folder / "a.png", scale=2), first)
