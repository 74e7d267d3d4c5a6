"""One timing per device at a time, across processes (concurrent Ray trials on one machine).

A ``filelock.FileLock`` on ``<lock_dir>/timing-<device>.lock``. The default directory is per user
under the system temp dir (override with ``ESRNAS_LOCK_DIR``), so every trial a user runs on a
machine shares it without configuration. The OS drops the lock when its holder dies, so a killed
trial never blocks the others.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from filelock import FileLock

__all__ = ["default_lock_dir", "lock_path", "timing_lock"]


def default_lock_dir() -> Path:
    """``$ESRNAS_LOCK_DIR``, else ``<tmp>/esrnas-locks-<uid>``."""
    env = os.environ.get("ESRNAS_LOCK_DIR")
    if env:
        return Path(env)
    return Path(tempfile.gettempdir()) / f"esrnas-locks-{os.getuid()}"


def _device_label(device: str | torch.device) -> str:
    device = torch.device(device)
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return f"cuda{index}"
    return device.type


def lock_path(device: str | torch.device, lock_dir: str | Path | None = None) -> Path:
    """The lock file that serialises timings on ``device`` (e.g. ``timing-cuda0.lock``)."""
    folder = Path(lock_dir) if lock_dir is not None else default_lock_dir()
    return folder / f"timing-{_device_label(device)}.lock"


@contextmanager
def timing_lock(device: str | torch.device, lock_dir: str | Path | None = None) -> Iterator[Path]:
    """Hold the device's timing lock for the duration of the ``with`` block (waits for it)."""
    path = lock_path(device, lock_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path)):
        yield path
