"""nas data prepare: BasicSR layout, bit-exact LR, store, bad files, resume after kill -9."""

from __future__ import annotations

import json
import os
import signal
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from nas.cli import main
from search_space.errors import InputError
from trainers.data import patch_dataset
from trainers.degrade import bicubic_downsample
from trainers.prepare import Settings, prepare, sub_positions
from trainers.store import StorePatchDataset, is_prepared

ROOT = Path(__file__).resolve().parents[2]
SMALL = Settings(scales=(2, 4), crop=32, step=16)


def _images(folder: Path, count: int, hw=(70, 90), seed=0) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        img = rng.integers(0, 256, (*hw, 3), dtype=np.uint8)
        Image.fromarray(img).save(folder / f"{i:04d}.png")
    return folder


def _png16(path: Path, img: np.ndarray) -> None:
    """A 16-bit RGB PNG (PIL cannot write one)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    h, w = img.shape[:2]
    raw = b"".join(b"\x00" + row.astype(">u2").tobytes() for row in img)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2,
                                                                         0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def _read(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        return np.asarray(img)


def test_sub_positions_follow_basicsr():
    # DIV2K's 2040x1356 at crop 480 / step 240: 5 rows x 8 columns (the last ones flush)
    tops = sorted({t for t, _ in sub_positions(1356, 2040, 480, 240)})
    lefts = sorted({left for _, left in sub_positions(1356, 2040, 480, 240)})
    assert tops == [0, 240, 480, 720, 876] and lefts == [0, 240, 480, 720, 960, 1200, 1440, 1560]
    assert sub_positions(480, 480, 480, 240) == [(0, 0)]


def test_layout_lr_bit_identical_and_store(tmp_path):
    src = _images(tmp_path / "src", 2)
    out = tmp_path / "out"
    result = prepare(src, out, SMALL, workers=0, progress=False)
    per_image = len(sub_positions(70, 90, 32, 16))
    assert (result.images, result.sub_images, result.skipped) == (2, 2 * per_image, [])
    assert is_prepared(out)
    hr_full = _read(src / "0001.png")
    top, left = sub_positions(70, 90, 32, 16)[4]
    hr = _read(out / "HR_sub" / "0001_s005.png")
    assert np.array_equal(hr, hr_full[top:top + 32, left:left + 32])
    hr_store = np.load(out / "store" / "HR.npy", mmap_mode="r")
    for s in (2, 4):
        lr = _read(out / "LR_bicubic" / f"X{s}_sub" / "0001_s005.png")
        assert np.array_equal(lr, bicubic_downsample(hr, s))
        lr_store = np.load(out / "store" / f"X{s}.npy", mmap_mode="r")
        assert np.array_equal(lr_store[per_image + 4], lr)
    assert np.array_equal(hr_store[per_image + 4], hr)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["sub_images"] == 2 * per_image
    first = manifest["sources"][0]["sub_images"][0]
    assert first["name"] == "0000_s001.png" and set(first["sha256"]) == {"HR", "X2", "X4"}


def test_bad_images_are_named_and_skipped_or_stop_with_strict(tmp_path, capsys):
    src = _images(tmp_path / "src", 2)
    Image.fromarray(np.zeros((40, 40), np.uint8)).save(src / "gray.png")
    Image.fromarray(np.zeros((20, 40, 3), np.uint8)).save(src / "tiny.png")
    (src / "broken.png").write_bytes(b"not a png")
    _png16(src / "deep.png", np.full((40, 40, 3), 4000, np.uint16))  # PIL opens it as "RGB"
    Image.fromarray(np.full((40, 40), 4000, np.uint16)).save(src / "deep_gray.png")
    result = prepare(src, tmp_path / "out", SMALL, workers=0, progress=False)
    reasons = dict(result.skipped)
    assert sorted(reasons) == ["broken.png", "deep.png", "deep_gray.png", "gray.png", "tiny.png"]
    assert "colour mode L" in reasons["gray.png"]
    assert "bit depth 16" in reasons["deep.png"] and "bit depth 16" in reasons["deep_gray.png"]
    assert "20 x 40".replace(" ", "") not in reasons["tiny.png"] and "40x20" in reasons["tiny.png"]
    assert "cannot read image" in reasons["broken.png"]
    assert result.images == 2
    code = main(["data", "prepare", str(src), "--out", str(tmp_path / "strict"), "--crop", "32",
                 "--step", "16", "--scale", "2,4", "--strict", "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "broken.png: cannot read image" in err and "Traceback" not in err


def test_bad_settings_are_one_line_errors(tmp_path, capsys):
    src = _images(tmp_path / "src", 1)
    assert main(["data", "prepare", str(src), "--out", str(tmp_path / "o"), "--crop", "30",
                 "--scale", "4"]) == 2
    assert "--crop: 30 is not divisible by the scale(s) 4" in capsys.readouterr().err
    prepare(src, tmp_path / "o2", SMALL, workers=0, progress=False)
    with pytest.raises(InputError, match="other settings"):
        prepare(src, tmp_path / "o2", Settings(scales=(2,), crop=32, step=16), workers=0,
                progress=False)


def test_kill_9_halfway_then_resume_gives_the_same_manifest(tmp_path):
    src = _images(tmp_path / "src", 20, hw=(128, 128))
    settings = Settings(scales=(2, 4), crop=32, step=8)
    killed = tmp_path / "killed"
    cmd = [sys.executable, "-m", "nas.cli", "data", "prepare", str(src), "--out", str(killed),
           "--crop", "32", "--step", "8", "--scale", "2,4", "--workers", "1", "--quiet"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stderr=subprocess.PIPE)
    done = killed / ".prepare" / "done"
    deadline = time.monotonic() + 900  # the interpreter may start slowly on a busy machine
    while time.monotonic() < deadline and proc.poll() is None:
        if done.is_dir() and len(list(done.glob("*.json"))) >= 2:
            break
        time.sleep(0.02)
    assert proc.poll() is None, proc.stderr.read().decode()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    finished = len(list(done.glob("*.json")))
    assert 2 <= finished < 20 and not (killed / "manifest.json").exists()

    resumed = prepare(src, killed, settings, workers=2, progress=False)
    assert resumed.reused == finished and resumed.images == 20
    clean = prepare(src, tmp_path / "clean", settings, workers=0, progress=False)
    assert (killed / "manifest.json").read_bytes() == (tmp_path / "clean" /
                                                        "manifest.json").read_bytes()
    for key in ("HR", "X2", "X4"):
        a = np.load(killed / "store" / f"{key}.npy")
        assert np.array_equal(a, np.load(tmp_path / "clean" / "store" / f"{key}.npy"))
    assert clean.sub_images == 20 * len(sub_positions(128, 128, 32, 8))


def test_store_patches_are_aligned_deterministic_and_train(tmp_path):
    src = _images(tmp_path / "src", 3)
    out = tmp_path / "out"
    prepare(src, out, SMALL, workers=0, progress=False)
    data = patch_dataset(str(out), scale=4, lr_patch=6, seed=5, augment=False)
    assert isinstance(data, StorePatchDataset)
    lr, hr = data[7]
    assert lr.dtype == torch.uint8 and lr.shape == (3, 6, 6) and hr.shape == (3, 24, 24)
    assert all(torch.equal(a, b) for a, b in zip(data[7], data[7], strict=True))
    # an unaugmented patch is a crop of one stored sub-image, LR and HR at the same place
    lr_all = np.load(out / "store" / "X4.npy")
    hr_all = np.load(out / "store" / "HR.npy")
    lr_np, hr_np = lr.permute(1, 2, 0).numpy(), hr.permute(1, 2, 0).numpy()
    hits = [(k, t, left) for k in range(len(lr_all)) for t in range(3) for left in range(3)
            if np.array_equal(lr_all[k, t:t + 6, left:left + 6], lr_np)]
    assert len(hits) == 1
    k, t, left = hits[0]
    assert np.array_equal(hr_all[k, t * 4:t * 4 + 24, left * 4:left * 4 + 24], hr_np)
    with pytest.raises(InputError, match="prepared at x2, x4, not x3"):
        patch_dataset(str(out), scale=3, lr_patch=4, seed=0)
    with pytest.raises(InputError, match="larger than the prepared LR sub-images"):
        patch_dataset(str(out), scale=4, lr_patch=9, seed=0)

    from trainers.config import TrainConfig
    from trainers.loop import train

    config = TrainConfig.from_dict({
        "arch": {"scale": 4, "channels": 4, "body": [{"block": "conv"}]},
        "data": {"train": str(out), "val": [], "lr_patch": 6, "batch_size": 2, "workers": 0},
        "iterations": 3, "eval_every": 0, "checkpoint_every": 0,
        "out_dir": str(tmp_path / "run"), "threads": 1})
    result = train(config, progress=False)
    assert result.iterations == 3 and np.isfinite(result.history[-1]["loss"])


# ---------------------------------------------------------------------------- folder cache
@pytest.fixture
def cache_dir(tmp_path, monkeypatch):

    monkeypatch.setenv("ESRNAS_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_a_plain_folder_is_prepared_into_the_cache_once_and_read_from_its_store(tmp_path,
                                                                                 cache_dir):
    src = _images(tmp_path / "mine", 3, hw=(70, 90))
    ds = patch_dataset(str(src), scale=2, lr_patch=8, seed=0)
    assert isinstance(ds, StorePatchDataset)
    store = ds.root
    assert store.parent == cache_dir / "prepared" and not (store / "HR_sub").exists()
    index = store / "store" / "index.json"
    stamp = index.stat().st_mtime_ns
    again = patch_dataset(str(src), scale=2, lr_patch=8, seed=0)
    assert again.root == store and index.stat().st_mtime_ns == stamp  # reused, not redone
    lr, hr = ds[5]
    assert torch.equal(lr, again[5][0]) and tuple(hr.shape) == (3, 16, 16)
    # the LR of every cached sub-image is the MATLAB-exact bicubic of its HR
    lrs, hrs = np.load(store / "store" / "X2.npy"), np.load(store / "store" / "HR.npy")
    assert np.array_equal(lrs[0], bicubic_downsample(hrs[0], 2))
    _images(src, 1, hw=(70, 90), seed=9)  # an edited folder is prepared again
    assert patch_dataset(str(src), scale=2, lr_patch=8, seed=0).root != store


def test_the_bundled_sets_and_prepare_false_read_images_directly(tmp_path, cache_dir):
    from trainers.data import PatchDataset

    src = _images(tmp_path / "mine", 2, hw=(70, 90))
    assert isinstance(patch_dataset(str(src), scale=2, lr_patch=8, seed=0, prepare=False),
                      PatchDataset)
    assert isinstance(patch_dataset("Set5", scale=2, lr_patch=8, seed=0), PatchDataset)
    assert not (cache_dir / "prepared").exists() or not any((cache_dir / "prepared").iterdir())


def test_bad_settings_are_one_document_error_naming_every_flag(capsys, tmp_path):
    from trainers.prepare import SettingsError

    with pytest.raises(SettingsError) as info:
        Settings(scales=(1, 2), crop=4, step=0)
    assert info.value.problems == [
        "--scale: expected factors from 2 to 16, got (1, 2)",
        "--crop: expected an integer >= 8 and <= 8192, got 4",
        "--step: expected an integer >= 1 and <= 8192, got 0"]
    src = _images(tmp_path / "src", 1)
    assert main(["data", "prepare", str(src), "--out", str(tmp_path / "o"), "--scale", "2,x"]) == 2
    assert "--scale: expected comma-separated integers, got '2,x'" in capsys.readouterr().err
