"""User-facing input errors shared by every package.

Anything derived from :class:`InputError` is bad input from the user (a spec, a config, a CLI
argument, a file). The ``nas`` CLI prints its message as plain lines and exits with code 2.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class InputError(ValueError):
    """Bad user input; the message names the field or file and what was expected."""


class SpecError(InputError):
    """An invalid architecture spec. ``problems`` lists one line per bad field."""

    def __init__(self, problems: list[str], what: str = "ArchSpec") -> None:
        self.problems = list(problems)
        n = len(self.problems)
        if n == 1:
            msg = f"invalid {what}: {self.problems[0]}"
        else:
            lines = "\n".join(f"  {p}" for p in self.problems)
            msg = f"invalid {what} ({n} problems):\n{lines}"
        super().__init__(msg)


def did_you_mean(value: object, allowed: Iterable[str]) -> str:
    """A ``" (did you mean 'x'?)"`` suffix, or ``""`` when nothing is close."""
    close = difflib.get_close_matches(str(value), [str(a) for a in allowed], n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def not_allowed(path: str, value: object, allowed: Iterable[object]) -> str:
    """One problem line: ``path: 'value' not allowed; allowed: a, b (did you mean 'a'?)``."""
    allowed = list(allowed)
    names = ", ".join(str(a) for a in allowed)
    hint = did_you_mean(value, map(str, allowed))
    return f"{path}: {value!r} not allowed; allowed: {names}{hint}"


def read_yaml_file(path, what: str):
    """Parse a YAML file; unreadable or malformed input raises one-line :class:`InputError`.

    Args:
        path: The file.
        what: What the file is, for the message (``"spec file"``, ``"training config"``).
    """
    from pathlib import Path

    import yaml

    path = Path(path)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as e:
        reason = getattr(e, "strerror", None) or type(e).__name__
        raise InputError(f"{path}: cannot read {what} ({reason})") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        from search_space.io import first_line

        raise InputError(f"{path}: not valid YAML ({first_line(e)})") from None
