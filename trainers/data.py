"""Training patches and validation pairs from folders of HR images.

Any folder of PNG/JPEG/BMP images works (the DIV2K layout ``<root>/HR`` too); LR images are made
by the MATLAB-compatible bicubic resize of :mod:`trainers.degrade`, or read from a folder of
pre-made LR images (``LR_bicubic/X4/<name>x4.png``). Three small standard sets are bundled
(:data:`BUNDLED`) so that a fresh clone trains and validates with no download.

Randomness: item ``i`` of a :class:`PatchDataset` is drawn from a generator seeded with
``(seed, i)`` only. The data stream is therefore identical for every model trained with the same
seed, independent of DataLoader workers, and a resumed run continues it exactly by starting at
the next index.

Cost: each image is decoded and downscaled once per process (LRU cache, ``ESRNAS_IMAGE_CACHE_MB``)
and its LR also kept on disk (``ESRNAS_CACHE_DIR``, default ``~/.cache/esrnas``; ``off``
disables it), after which a training patch is a plain crop.
"""

from __future__ import annotations

import functools
import hashlib
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch

from search_space.errors import InputError
from search_space.io import shown, write_atomic
from trainers.degrade import bicubic_downsample
from trainers.environment import cache_dir, image_cache_bytes
from trainers.folder_cache import cached_store
from trainers.images import IMAGE_EXTENSIONS, dihedral, image_size, list_images, load_image
from trainers.store import StorePatchDataset, is_prepared

__all__ = ["BUNDLED", "PatchDataset", "patch_dataset", "resolve_dataset", "validation_pairs"]

_BUNDLED_ROOT = Path(__file__).resolve().parent / "bundled_data"
BUNDLED = {name: _BUNDLED_ROOT / name / "HR" for name in ("SunHays80", "Set5", "Set14")}

# Decoded HR images and their LR versions are kept per process (LRU, ESRNAS_IMAGE_CACHE_MB);
# beyond that size the least recently used are decoded / downscaled again. LR images made here are
# also kept on disk (.npy, memory-mapped): every search trial runs in its own process, and
# downscaling SunHays80 costs ~3.5 s of a ~30 s proxy on 2 cores. ESRNAS_CACHE_DIR=off disables
# it (trainers/environment.py).
_DISK_CACHE_VERSION = 1  # bump when the LR computation changes


def resolve_dataset(name_or_path: str | Path) -> Path:
    """A bundled set's name (``SunHays80``, ``Set5``, ``Set14``) or a folder -> its image folder.

    A folder without images but with an ``HR`` sub-folder (DIV2K layout) resolves to ``HR``, and
    a prepared dataset (``nas data prepare``) to its ``HR_sub``.
    """
    if isinstance(name_or_path, str) and name_or_path in BUNDLED:
        return BUNDLED[name_or_path]
    path = Path(name_or_path).expanduser()
    if not path.exists():
        raise InputError(f"{shown(path)}: dataset folder not found; make it from a folder of HR "
                         f"images with `nas data prepare <HR folder> --out {shown(path)}`, or "
                         f"train on a bundled set ({', '.join(BUNDLED)}: data.train: SunHays80)")
    if not path.is_dir():
        raise InputError(f"{path}: expected a folder of images, got a file")
    if not list_images(path) and (path / "HR").is_dir():
        path = path / "HR"
    elif not list_images(path) and (path / "HR_sub").is_dir():  # made by nas data prepare
        path = path / "HR_sub"
    if not list_images(path):
        raise InputError(f"{path}: no images found (expected {'/'.join(IMAGE_EXTENSIONS)} files)")
    return path


def patch_dataset(train: str | Path, *, scale: int, lr_patch: int, seed: int,
                  augment: bool = True, lr_dir: str | Path | None = None,
                  prepare: str | bool = "auto") -> torch.utils.data.Dataset:
    """Training patches from ``train``.

    A prepared dataset (``nas data prepare``) is read from its memory-mapped store (uint8 items,
    :mod:`trainers.store`). A folder of images is prepared into the cache on first use and read
    from there (:mod:`trainers.folder_cache`) when ``prepare`` is true, or ``auto`` and the
    folder is not a bundled set; otherwise, or with ``lr_dir``, or when it cannot be prepared
    whole, it gives a :class:`PatchDataset` (float items in [0, 1]). The bundled sets are read
    directly under ``auto``: they fit in memory, and the shipped CPU predictor was fitted on
    that sampling.
    """
    bundled = isinstance(train, str) and train in BUNDLED
    store = Path(train) if not bundled and is_prepared(train) else None
    if store is not None and lr_dir:
        raise InputError(f"data.lr_dir: not used with a prepared dataset ({train} holds its "
                         "own LR images); remove it")
    if store is None and not lr_dir and (prepare is True or (prepare == "auto" and not bundled)):
        store = cached_store(resolve_dataset(train), scale=scale, lr_patch=lr_patch)
    if store is not None:
        return StorePatchDataset(store, scale=scale, lr_patch=lr_patch, seed=seed,
                                 augment=augment)
    return PatchDataset(train, scale=scale, lr_patch=lr_patch, seed=seed, augment=augment,
                        lr_dir=lr_dir)


class PatchDataset(torch.utils.data.Dataset):
    """Aligned random (LR, HR) patches with flips and 90-degree rotations.

    Args:
        hr: Bundled dataset name or folder of HR images.
        scale: Downscaling factor between HR and LR.
        lr_patch: LR patch side; the HR patch is ``lr_patch * scale``.
        seed: Data seed; item ``i`` depends only on ``(seed, i)``.
        augment: Random horizontal/vertical flips and rotations by k * 90 degrees.
        lr_dir: Optional folder of pre-made LR images named ``<hr stem>x<scale>.<ext>`` or
            ``<hr stem>.<ext>`` (or its parent holding ``X<scale>/``). Default: MATLAB bicubic.
        length: Nominal length; the loop draws indices ``[start, start + n)`` from it.
    """

    def __init__(self, hr: str | Path, *, scale: int, lr_patch: int, seed: int,
                 augment: bool = True, lr_dir: str | Path | None = None,
                 length: int = 10**9) -> None:
        self.folder = resolve_dataset(hr)
        self.scale, self.lr_patch, self.seed = scale, lr_patch, seed
        self.augment, self.length = augment, length
        self.paths = list_images(self.folder)
        self.sizes = [image_size(p) for p in self.paths]
        for path, (h, w) in zip(self.paths, self.sizes, strict=True):
            if h // scale < lr_patch or w // scale < lr_patch:
                raise InputError(f"{path}: image is {w}x{h}, smaller than one training patch "
                                 f"({lr_patch * scale}x{lr_patch * scale} HR at x{scale}); "
                                 "remove it or lower data.lr_patch")
        self.lr_paths = _match_lr_files(self.paths, lr_dir, scale) if lr_dir else None

    def __len__(self) -> int:
        return self.length

    def preload(self) -> None:
        """Decode (and downscale) every image now instead of on first use."""
        for k, path in enumerate(self.paths):
            _cached_image(path)
            if self.lr_paths is not None:
                _cached_image(self.lr_paths[k])
            else:
                _cached_image(path, self.scale)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        rng = np.random.default_rng([self.seed, int(i)])
        k = int(rng.integers(len(self.paths)))
        h, w = self.sizes[k]
        p, s = self.lr_patch, self.scale
        top = int(rng.integers(h // s - p + 1))
        left = int(rng.integers(w // s - p + 1))
        lr, hr = self._crop(k, top, left)
        if self.augment:
            flip_h, flip_v, rot = rng.integers(2), rng.integers(2), int(rng.integers(4))
            lr, hr = (dihedral(x, flip_h, flip_v, rot) for x in (lr, hr))
        return _to_tensor(lr), _to_tensor(hr)

    def _crop(self, k: int, top: int, left: int) -> tuple[np.ndarray, np.ndarray]:
        p, s = self.lr_patch, self.scale
        hr_full = _cached_image(self.paths[k])
        hr = hr_full[top * s:(top + p) * s, left * s:(left + p) * s]
        if self.lr_paths is not None:
            lr_full = _cached_image(self.lr_paths[k])
            expect = (self.sizes[k][0] // s, self.sizes[k][1] // s)
            if lr_full.shape[:2] != expect:
                raise InputError(f"{self.lr_paths[k]}: LR image is {lr_full.shape[1]}x"
                                 f"{lr_full.shape[0]}, expected {expect[1]}x{expect[0]} "
                                 f"(HR {self.paths[k].name} / {s})")
            return lr_full[top:top + p, left:left + p], hr
        lr_full = _cached_image(self.paths[k], scale=s)
        return lr_full[top:top + p, left:left + p], hr


def validation_pairs(name_or_path: str | Path, scale: int
                     ) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(image name, LR uint8, HR uint8 modcropped) for every image of a validation set (cached)."""
    folder = resolve_dataset(name_or_path)
    paths = list_images(folder)
    fingerprint = tuple((p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in paths)
    return _validation_pairs(str(folder), scale, fingerprint)


@functools.lru_cache(maxsize=16)
def _validation_pairs(folder: str, scale: int, fingerprint: tuple
                      ) -> list[tuple[str, np.ndarray, np.ndarray]]:
    pairs = []
    for name, _, _ in fingerprint:
        path = Path(folder) / name
        hr = load_image(path)
        if hr.shape[0] < scale or hr.shape[1] < scale:
            raise InputError(f"{path}: image is {hr.shape[1]}x{hr.shape[0]}, smaller than the "
                             f"scale {scale}")
        lr = bicubic_downsample(hr, scale)
        hr = hr[:lr.shape[0] * scale, :lr.shape[1] * scale]
        for arr in (lr, hr):
            arr.setflags(write=False)
        pairs.append((path.stem, lr, hr))
    return pairs


# ---------------------------------------------------------------------------- helpers
def _match_lr_files(hr_paths: list[Path], lr_dir: str | Path, scale: int) -> list[Path]:
    root = Path(lr_dir).expanduser()
    if not root.is_dir():
        raise InputError(f"{root}: LR folder (data.lr_dir) not found")
    if (root / f"X{scale}").is_dir():
        root = root / f"X{scale}"
    by_stem = {p.stem: p for p in list_images(root)}
    out = []
    for hr in hr_paths:
        lr = by_stem.get(f"{hr.stem}x{scale}") or by_stem.get(hr.stem)
        if lr is None:
            raise InputError(f"{root}: no LR image for {hr.name} (expected {hr.stem}x{scale}.png "
                             f"or {hr.stem}.png)")
        out.append(lr)
    return out


_cache: OrderedDict[tuple, np.ndarray] = OrderedDict()


def _cached_image(path: Path, scale: int = 1) -> np.ndarray:
    """Decoded image (``scale`` 1) or its MATLAB-bicubic LR at ``scale``, from a per-process LRU
    cache bounded by ``ESRNAS_IMAGE_CACHE_MB`` (LR images also from the disk cache): each image
    is decoded and downscaled once, after which a training patch is a plain crop."""
    stat = path.stat()
    key = (str(path), stat.st_mtime_ns, stat.st_size, scale)
    img = _cache.get(key)
    if img is not None:
        _cache.move_to_end(key)
        return img
    if scale == 1:
        img = load_image(path)
        img.setflags(write=False)
    else:
        img = _disk_cached_lr(key, lambda: bicubic_downsample(_cached_image(path), scale))
    _cache[key] = img
    total = sum(a.nbytes for a in _cache.values())
    while total > image_cache_bytes() and len(_cache) > 1:
        _, old = _cache.popitem(last=False)
        total -= old.nbytes
    return img


def _disk_cached_lr(key: tuple, make) -> np.ndarray:
    """``make()`` once per (file, mtime, size, scale) across processes; read-only result."""
    root = cache_dir()
    if root is None:
        img = make()
        img.setflags(write=False)
        return img
    digest = hashlib.sha1(repr((_DISK_CACHE_VERSION, *key)).encode()).hexdigest()
    path = root / "lr" / f"{digest}.npy"
    try:
        return np.load(path, mmap_mode="r")
    except (OSError, ValueError):
        pass  # not cached yet (or unreadable): make it
    img = make()
    try:  # atomic: concurrent trials never read a partial file
        write_atomic(path, lambda f: np.save(f, img))
    except OSError:
        pass  # an unwritable cache only costs time
    img.setflags(write=False)
    return img


def _to_tensor(img: np.ndarray) -> torch.Tensor:
    # (H, W, 3) uint8 -> (3, H, W) float32 in [0, 1]
    return torch.from_numpy(np.array(img.transpose(2, 0, 1), dtype=np.float32)).div_(255.0)
