"""The environment variables esrnas reads, checked like any other input.

- ``ESRNAS_CACHE_DIR``: the on-disk caches (LR images, prepared folders, the calibration store of
  :mod:`nas.calibration`); ``off`` turns them off.
  Default ``~/.cache/esrnas``. Must be a folder (or not exist yet) outside /proc, /sys and /dev.
- ``ESRNAS_IMAGE_CACHE_MB``: the per-process cache of decoded images, in MiB (default 4096).
- ``ESRNAS_LOG_DIR``: where a crash's traceback goes when the command has no output folder yet
  (default ``~/.cache/esrnas/logs``); an unusable one only means the traceback is not saved.

The values are read when used, not at import, so a process sees its own environment. ``nas``
checks them all before a command runs (:func:`check_environment`): a bad value is bad input
(exit 2, one line naming the variable), never a crash halfway through a search.
"""

from __future__ import annotations

import os
from pathlib import Path

from search_space.errors import InputError
from search_space.io import is_system_path, shown

__all__ = ["cache_dir", "image_cache_bytes", "log_dir", "check_environment"]

_OFF = ("", "off", "0", "none")
MAX_IMAGE_CACHE_MB = 1 << 20


def cache_dir() -> Path | None:
    """``ESRNAS_CACHE_DIR`` as a folder, or None when it is turned off."""
    value = os.environ.get("ESRNAS_CACHE_DIR", str(Path.home() / ".cache" / "esrnas"))
    if value.strip().lower() in _OFF:
        return None
    path = Path(value).expanduser()
    if is_system_path(path) or path.resolve() == Path("/"):
        raise InputError(f"ESRNAS_CACHE_DIR: {shown(path)} is a system folder; expected a folder "
                         "of your own (or off)")
    if os.path.lexists(path) and not path.is_dir():
        raise InputError(f"ESRNAS_CACHE_DIR: {shown(path)} exists and is not a folder; expected a "
                         "folder (or off)")
    return path


def image_cache_bytes() -> int:
    """``ESRNAS_IMAGE_CACHE_MB`` in bytes."""
    value = os.environ.get("ESRNAS_IMAGE_CACHE_MB", "4096").strip()
    if not (value.isascii() and value.isdigit()) or int(value) > MAX_IMAGE_CACHE_MB:
        raise InputError(f"ESRNAS_IMAGE_CACHE_MB: expected a whole number of MiB from 0 to "
                         f"{MAX_IMAGE_CACHE_MB:,}, got {value[:40]!r}")
    return int(value) * 2**20


def log_dir() -> Path:
    """``ESRNAS_LOG_DIR``: where crash tracebacks go when a command has no output folder."""
    value = os.environ.get("ESRNAS_LOG_DIR", "")
    return Path(value).expanduser() if value.strip() else \
        Path.home() / ".cache" / "esrnas" / "logs"


def check_environment() -> None:
    """Every variable above that can be wrong; InputError naming the first bad one."""
    cache_dir()
    image_cache_bytes()
