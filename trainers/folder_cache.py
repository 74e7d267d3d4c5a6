"""A plain folder of training images, prepared into the cache on first use.

``nas data prepare`` makes a memory-mapped store that every DataLoader worker shares through the
page cache; a folder of PNGs read directly is decoded into each process's own LRU cache and
drops 20-fold once the set outgrows it. So a user's folder is prepared (the store alone, no PNGs)
into ``$ESRNAS_CACHE_DIR/prepared/<key>`` the first time a training reads it, and read from there
afterwards. The key covers the folder, its files' names, sizes and mtimes and the scale: an edited
folder is prepared again. Concurrent trainings (a search's trials) wait on one lock.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from filelock import FileLock

from search_space.errors import InputError
from trainers.environment import cache_dir
from trainers.images import list_images
from trainers.prepare import VERSION, Settings, check_header, prepare
from trainers.store import is_prepared

__all__ = ["cached_store", "CROP"]

CROP = 480  # BasicSR's sub-image side, lowered to fit a folder of smaller images


def _settings(images: list[Path], scale: int, lr_patch: int) -> Settings | None:
    """Sub-images as large as BasicSR's that every image holds; None when the folder cannot be
    prepared whole (an image too small for one patch, not 8-bit RGB, or unreadable)."""
    try:
        side = min(min(check_header(p, 1)) for p in images)
    except InputError:
        return None  # the folder loader reads it as it is, and names a bad file itself
    crop = min(CROP, side) // scale * scale
    if crop < max(8, lr_patch * scale):  # 8: the smallest sub-image a store holds
        return None
    return Settings(scales=(scale,), crop=crop, step=max(1, crop // 2))


def _key(folder: Path, images: list[Path], scale: int) -> str:
    """The files' names, sizes and mtimes fix their headers, hence the cut: a cached folder is
    found without reading an image."""
    files = [(p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in images]
    text = json.dumps([VERSION, CROP, str(folder.resolve()), files, scale])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def cached_store(folder: Path, *, scale: int, lr_patch: int, progress: bool = True
                 ) -> Path | None:
    """The prepared store of ``folder`` (made now if it is not cached yet), or None when the
    disk cache is off or the folder cannot be prepared whole."""
    root, images = cache_dir(), list_images(folder)
    if root is None or not images:
        return None
    out = root / "prepared" / _key(folder, images, scale)
    if is_prepared(out):
        return out
    settings = _settings(images, scale, lr_patch)
    if settings is None:
        return None
    out.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(f"{out}.lock"):
        if not is_prepared(out):  # another training may have made it meanwhile
            prepare(folder, out, settings, strict=True, progress=progress, pngs=False)
    return out
