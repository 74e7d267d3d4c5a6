"""The file and error helpers every package shares: one atomic write, one bounded read, one
first-line rule, one conversion to plain YAML/JSON values.

A bounded read is how every file a user (or a colleague's run folder) hands the tool is read:
regular files only (a named pipe would block, ``/dev/zero`` never ends, ``/proc`` files lie
about their size), at most ``limit`` bytes, checked by reading ``limit + 1``.

An atomic write goes to a temp file in the target's folder and is moved into place with
``os.replace``, so a reader, a concurrent trial or a crash never sees half a file. Files get
the permissions of any file the user creates (``mkstemp`` alone would make them 0600).
"""

from __future__ import annotations

import json
import os
import re
import stat
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any

from search_space.errors import InputError

MAX_JSON_BYTES = 16 << 20
MAX_CHECKPOINT_BYTES = 4 << 30
_PSEUDO_FILESYSTEMS = ("/proc", "/sys", "/dev")


def current_umask() -> int:
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
        os.chmod(tmp, 0o666 & ~current_umask())
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


_URL_PASSWORD = re.compile(r"(\b[A-Za-z][A-Za-z0-9+.-]*://[^\s:/@]*):([^\s@/]*)@")


def mask_secrets(text: str) -> str:
    """``text`` with the password of every URL in it masked (``postgresql://alice:***@host/db``):
    a storage URL reaches messages, logs and the command line recorded in them."""
    return _URL_PASSWORD.sub(r"\1:***@", text)


def without_password(url: str | None) -> str | None:
    """``url`` with its password removed (``postgresql://alice@host/db``): what a run folder may
    store. libpq finds the password again in ``PGPASSWORD`` or ``~/.pgpass``."""
    return None if url is None else _URL_PASSWORD.sub(r"\1@", url)


def shown(path: str | Path) -> str:
    """A path as messages show it: quoted only when it holds a character that would break the
    one-line rule (a newline, a control character)."""
    text = str(path)
    return text if text.isprintable() else repr(text)


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a named pipe"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "a special file"


def check_output_dir(path: str | Path, flag: str) -> Path:
    """Refuse an output folder that cannot be made (under a file, in /proc, not writable) as bad
    input named by ``flag``, without creating anything."""
    path = Path(path)
    if is_system_path(path):
        raise InputError(f"{flag}: {shown(path)} is under /proc, /sys or /dev; expected a folder "
                         "of your own")
    if os.path.lexists(path) and not path.is_dir():
        raise InputError(f"{flag}: {shown(path)} exists and is not a folder")
    parent = path.absolute()
    while not os.path.lexists(parent):
        parent = parent.parent
    if not parent.is_dir():
        raise InputError(f"{flag}: cannot create the folder {shown(path)} ({shown(parent)} is "
                         "not a folder)")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(f"{flag}: cannot create the folder {shown(path)} ({shown(parent)} is "
                         "not writable)")
    return path


def make_output_dir(path: str | Path, flag: str) -> Path:
    """Create the output folder ``path`` (and its parents) after :func:`check_output_dir`."""
    path = check_output_dir(path, flag)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InputError(f"{flag}: cannot create the folder {shown(path)} "
                         f"({e.strerror or type(e).__name__})") from None
    return path


def is_system_path(path: Path) -> bool:
    """Whether ``path`` resolves into /proc, /sys or /dev (or is one of them)."""
    resolved = str(path.resolve())
    return any(resolved == p or resolved.startswith(p + "/") for p in _PSEUDO_FILESYSTEMS)


def open_regular(path: str | Path, what: str) -> int:
    """A read-only descriptor of ``path``, which must be a regular file outside /proc, /sys and
    /dev (opened non-blocking, so a named pipe is refused instead of waited on)."""
    path = Path(path)
    if is_system_path(path):
        raise InputError(f"{shown(path)}: cannot read {what} (a system file under /proc, /sys "
                         "or /dev; expected a regular file)")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as e:
        raise InputError(f"{shown(path)}: cannot read {what} ({e.strerror})") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise InputError(f"{shown(path)}: cannot read {what} ({_kind(mode)}, not a regular file)")
    return fd


def read_bounded(path: str | Path, what: str, limit: int) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes; InputError otherwise."""
    fd = open_regular(path, what)
    try:
        with os.fdopen(fd, "rb") as f:
            data = f.read(limit + 1)
    except OSError as e:
        raise InputError(f"{shown(path)}: cannot read {what} ({e.strerror})") from None
    if len(data) > limit:
        raise InputError(f"{shown(path)}: {what} is larger than {limit:,} bytes, the most read")
    return data


def read_text_bounded(path: str | Path, what: str, limit: int) -> str:
    """:func:`read_bounded`, decoded as UTF-8."""
    try:
        return read_bounded(path, what, limit).decode("utf-8")
    except UnicodeDecodeError as e:
        raise InputError(f"{shown(path)}: cannot read {what} (not UTF-8 text: byte {e.start})") \
            from None


def read_json_bounded(path: str | Path, what: str, limit: int = MAX_JSON_BYTES) -> Any:
    """A JSON file through :func:`read_bounded`; invalid JSON is an InputError."""
    try:
        return json.loads(read_text_bounded(path, what, limit), object_pairs_hook=_unique_keys)
    except (ValueError, RecursionError) as e:
        raise InputError(f"{shown(path)}: {what} is not valid JSON ({first_line(e)[:80]})") \
            from None


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out
