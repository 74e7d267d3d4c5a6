"""The file and error helpers every package shares: one atomic write, one first-line rule, one
conversion to plain YAML/JSON values.

An atomic write goes to a temp file in the target's folder and is moved into place with
``os.replace``, so a reader, a concurrent trial or a crash never sees half a file. Files get
the permissions of any file the user creates (``mkstemp`` alone would make them 0600).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_atomic(path: str | Path, data: str | bytes | Callable[[IO[bytes]], Any]) -> Path:
    """Write ``data`` (text, bytes, or a function writing to a binary file) to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            if callable(data):
                data(f)
            else:
                f.write(data.encode() if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def save_torch_atomic(obj: Any, path: str | Path) -> Path:
    """``torch.save`` through :func:`write_atomic`."""
    import torch

    return write_atomic(path, lambda f: torch.save(obj, f))


def plain(value: Any) -> Any:
    """``value`` with mappings as dicts of str keys and sequences as lists (YAML/JSON-ready)."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def first_line(e: BaseException) -> str:
    """The first line of an exception's message, or its type name when it has none."""
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__
