"""Data-loading throughput: a prepared dataset (``nas data prepare``) against a plain folder.

Makes ``--images`` synthetic photos of 2040x1356 (smooth colour fields, edges and grain, so that
PNG decoding costs about what a photo's does), prepares them at x4 (crop 480, step 240), then
reads 64x64 LR patches at x4 in batches of 64 with 2 DataLoader workers and augmentation on,
from the prepared store and from the plain folder (``trainers.data.PatchDataset`` with its
per-process image cache and a private LR disk cache, both starting cold, as they always are on a
set larger than the cache). The store runs ``--batches`` batches after ``--warmup``; the plain
folder runs from its first batch for at most ``--batches`` or ``--plain-seconds``.

Memory per worker is its private memory (``Private_Clean + Private_Dirty`` of
``/proc/<pid>/smaps``) outside the mapping of the store's files, i.e. what each worker adds on
top of the page cache that all of them share. The prepared loader hands uint8 batches to the
training loop, which scales them to [0, 1] on the device; the plain folder hands float32.

    .venv/bin/python benchmarks/data_throughput.py                 # 100 images
    .venv/bin/python benchmarks/data_throughput.py --images 10 --batches 20   # quick

The last line reads ``prepared: N patches/s, M MB RSS per worker; plain folder: K patches/s;
ratio R``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np


def synthetic_photo(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Low-frequency colour fields, a few hard-edged shapes and sensor-like grain (uint8 RGB)."""
    y = np.linspace(0, 1, height, dtype=np.float32)[:, None]
    x = np.linspace(0, 1, width, dtype=np.float32)[None, :]
    img = np.empty((height, width, 3), np.float32)
    for c in range(3):
        fy, fx, phase = rng.uniform(1, 6, 3)
        img[..., c] = 128 + 80 * np.sin(2 * np.pi * (fy * y + fx * x) + phase * 3)
    for _ in range(12):
        cy, cx, r = rng.uniform(0, height), rng.uniform(0, width), rng.uniform(30, 300)
        mask = (y * height - cy) ** 2 + (x * width - cx) ** 2 < r * r
        img[mask] = rng.uniform(0, 255, 3)
    img += rng.normal(0, 4, img.shape).astype(np.float32)
    return np.clip(img, 0, 255).astype(np.uint8)


def make_images(folder: Path, count: int, height: int, width: int) -> None:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        path = folder / f"{i + 1:04d}.png"
        if not path.exists():
            Image.fromarray(synthetic_photo(rng, height, width)).save(path)


def private_mb(pid: int, exclude: tuple[str, ...]) -> tuple[float, float]:
    """(private MB outside ``exclude`` mappings, resident MB of those mappings) of ``pid``."""
    private = mapped = 0
    current_excluded = False
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            head = line.split(None, 1)[0]
            if not head.endswith(":"):  # a mapping's header line: address perms ... path
                parts = line.split()
                current_excluded = len(parts) >= 6 and parts[5] in exclude
            elif head in ("Private_Clean:", "Private_Dirty:") and not current_excluded:
                private += int(line.split()[1])
            elif head == "Rss:" and current_excluded:
                mapped += int(line.split()[1])
    return private / 1024, mapped / 1024


def measure(dataset, *, workers: int, batch: int, warmup: int, batches: int,
            max_seconds: float, exclude: tuple[str, ...] = ()) -> tuple[float, float, float]:
    """(patches/s, max private MB per worker, max MB of the excluded mapping per worker)."""
    import torch

    total = (warmup + batches) * batch
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch, sampler=range(total),
                                         num_workers=workers, prefetch_factor=4,
                                         persistent_workers=False)
    it = iter(loader)
    for _ in range(warmup):
        next(it)
    start, got = time.perf_counter(), 0
    for _ in range(batches):
        next(it)
        got += batch
        if time.perf_counter() - start > max_seconds:
            break
    rate = got / (time.perf_counter() - start)
    memory = [private_mb(w.pid, exclude) for w in it._workers]
    del it
    return rate, max(m[0] for m in memory), max(m[1] for m in memory)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=100)
    parser.add_argument("--height", type=int, default=1356)
    parser.add_argument("--width", type=int, default=2040)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--patch", type=int, default=64, help="LR patch side")
    parser.add_argument("--scale", type=int, default=4)
    parser.add_argument("--warmup", type=int, default=5, help="batches before timing")
    parser.add_argument("--batches", type=int, default=100, help="timed batches")
    parser.add_argument("--plain-seconds", type=float, default=120.0,
                        help="time limit of the plain-folder measurement")
    parser.add_argument("--dir", default=None,
                        help="work folder (kept; images and preparation are reused)")
    args = parser.parse_args()

    work = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="esrnas_data_"))
    os.environ["ESRNAS_CACHE_DIR"] = str(work / "lr_cache")  # before trainers.data reads it
    from trainers.data import PatchDataset, patch_dataset
    from trainers.prepare import Settings, prepare

    src, out = work / "HR", work / "prepared"
    t = time.perf_counter()
    make_images(src, args.images, args.height, args.width)
    print(f"{args.images} images of {args.width}x{args.height} in {src} "
          f"({time.perf_counter() - t:.0f} s)")
    result = prepare(src, out, Settings(scales=(args.scale,)), workers=args.workers,
                     progress=False)
    print(f"prepared {result.sub_images} sub-images in {result.seconds:.0f} s "
          f"({result.reused} images reused)")

    store = patch_dataset(str(out), scale=args.scale, lr_patch=args.patch, seed=0)
    exclude = tuple(str(p.resolve()) for p in store.files.values())
    common = {"workers": args.workers, "batch": args.batch}
    rate, rss, mapped = measure(store, warmup=args.warmup, batches=args.batches,
                                max_seconds=float("inf"), exclude=exclude, **common)
    print(f"prepared store: {rate:.0f} patches/s; per worker {rss:.0f} MB private outside the "
          f"store mapping, {mapped:.0f} MB of the mapping resident")
    plain = PatchDataset(src, scale=args.scale, lr_patch=args.patch, seed=0)
    plain_rate, plain_rss, _ = measure(plain, warmup=0, batches=args.batches,
                                       max_seconds=args.plain_seconds, **common)
    print(f"plain folder: {plain_rate:.0f} patches/s; per worker {plain_rss:.0f} MB private")
    print(f"prepared: {rate:.0f} patches/s, {rss:.0f} MB RSS per worker; plain folder: "
          f"{plain_rate:.0f} patches/s; ratio {rate / plain_rate:.1f}")


if __name__ == "__main__":
    main()
