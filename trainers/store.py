"""Training patches from a prepared dataset (``nas data prepare``), read through ``np.memmap``.

The store's ``.npy`` files are mapped read-only, so every DataLoader worker reads the same pages
from the OS page cache: no process holds a copy of the dataset, and a worker's own memory is its
batches only. A patch is a crop of a stored sub-image (never a PNG decode).

Items are uint8 ``(3, h, w)`` tensors: a batch crosses the worker queue, pinned memory and the
PCIe bus at a quarter of the float32 size, and the training loop scales it to ``[0, 1]`` on the
device. Randomness is :class:`trainers.data.PatchDataset`'s: item ``i`` depends on
``(seed, i)`` only.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from search_space.errors import InputError
from search_space.io import read_json_bounded
from trainers.images import dihedral  # the same augmentation as the folder loader
from trainers.prepare import FORMAT, MANIFEST, STORE

__all__ = ["StorePatchDataset", "is_prepared", "read_index"]


def is_prepared(path: str | Path) -> bool:
    """Whether ``path`` is a folder made by ``nas data prepare`` (complete: it has a manifest)."""
    path = Path(path).expanduser()
    return (path / MANIFEST).is_file() and (path / STORE / "index.json").is_file()


def read_index(root: Path) -> dict:
    path = root / STORE / "index.json"
    try:
        index = read_json_bounded(path, "prepared dataset index")
    except (OSError, ValueError) as e:
        raise InputError(f"{path}: cannot read the prepared dataset's index ({e})") from None
    if index.get("format") != FORMAT:
        raise InputError(f"{path}: not an index of a prepared dataset")
    return index


class StorePatchDataset(torch.utils.data.Dataset):
    """Aligned random (LR, HR) uint8 patches from a prepared dataset, with flips and rotations.

    Args:
        root: Folder made by ``nas data prepare``.
        scale: One of the prepared scales.
        lr_patch: LR patch side (at most the LR sub-image side, ``crop / scale``).
        seed: Data seed; item ``i`` depends only on ``(seed, i)``.
        augment: Random horizontal/vertical flips and rotations by k * 90 degrees.
        length: Nominal length; the loop draws indices ``[start, start + n)`` from it.
    """

    def __init__(self, root: str | Path, *, scale: int, lr_patch: int, seed: int,
                 augment: bool = True, length: int = 10**9) -> None:
        self.root = Path(root).expanduser()
        index = read_index(self.root)
        if scale not in index["scales"]:
            raise InputError(f"{self.root}: prepared at x{', x'.join(map(str, index['scales']))}"
                             f", not x{scale}; run nas data prepare with --scale {scale}")
        self.lr_side = index["crop"] // scale
        if lr_patch > self.lr_side:
            raise InputError(f"data.lr_patch: {lr_patch} is larger than the prepared LR "
                             f"sub-images ({self.lr_side} at x{scale}); prepare with a larger "
                             "--crop")
        self.scale, self.lr_patch, self.seed = scale, lr_patch, seed
        self.augment, self.length = augment, length
        self.files = {key: self.root / index["store"][key]["file"] for key in ("HR", f"X{scale}")}
        self.slots = np.concatenate([np.arange(start, start + n, dtype=np.int64)
                                     for start, n in index["ranges"]])
        if not len(self.slots):
            raise InputError(f"{self.root}: the prepared dataset holds no sub-image")
        self._maps: tuple[np.ndarray, np.ndarray] | None = None  # opened per process

    def __len__(self) -> int:
        return self.length

    def _arrays(self) -> tuple[np.ndarray, np.ndarray]:
        if self._maps is None:
            try:
                self._maps = (np.load(self.files[f"X{self.scale}"], mmap_mode="r"),
                              np.load(self.files["HR"], mmap_mode="r"))
            except (OSError, ValueError) as e:
                raise InputError(f"{self.root}: cannot map the prepared store ({e})") from None
        return self._maps

    def __getstate__(self) -> dict:  # workers map the files themselves (never pickle pages)
        return {**self.__dict__, "_maps": None}

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        lr_all, hr_all = self._arrays()
        rng = np.random.default_rng([self.seed, int(i)])
        k = int(self.slots[int(rng.integers(len(self.slots)))])
        p, s = self.lr_patch, self.scale
        top = int(rng.integers(self.lr_side - p + 1))
        left = int(rng.integers(self.lr_side - p + 1))
        lr = lr_all[k, top:top + p, left:left + p]
        hr = hr_all[k, top * s:(top + p) * s, left * s:(left + p) * s]
        if self.augment:
            flip_h, flip_v, rot = rng.integers(2), rng.integers(2), int(rng.integers(4))
            lr, hr = (dihedral(x, flip_h, flip_v, rot) for x in (lr, hr))
        return _chw(lr), _chw(hr)


def _chw(img: np.ndarray) -> torch.Tensor:
    # (H, W, 3) uint8 view of the mapping -> a (3, H, W) uint8 copy owned by this process
    return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))
