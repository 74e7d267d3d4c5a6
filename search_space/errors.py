"""User-facing input errors shared by every package.

Anything derived from :class:`InputError` is bad input from the user (a spec, a config, a CLI
argument, a file). The ``nas`` CLI prints its message as plain lines and exits with code 2.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class InputError(ValueError):
    """Bad user input; the message names the field or file and what was expected.

    The message is kept on one line: a newline or control character that came in with the input
    (a path, a value) is written escaped, so the one-line rule of the CLI holds whatever the
    input held.
    """

    def __init__(self, message: str = "") -> None:
        super().__init__(one_line(str(message)))


def one_line(text: str) -> str:
    """``text`` with line breaks and other control characters escaped (``\\n``)."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


class DocumentError(InputError):
    """Every problem of one document (a spec, a config); ``problems`` holds one line each.

    One problem gives one line; several give a heading line and one indented line per problem.
    """

    kind = "document"

    def __init__(self, problems: list[str], what: str | None = None) -> None:
        self.problems = list(problems)
        what = what or self.kind
        n = len(self.problems)
        lines = [one_line(p) for p in self.problems]
        if n == 1:
            msg = f"invalid {one_line(what)}: {lines[0]}"
        else:
            msg = f"invalid {one_line(what)} ({n} problems):\n" + "\n".join(f"  {p}" for p in lines)
        ValueError.__init__(self, msg)  # several lines by design: a heading and one per problem


class SpecError(DocumentError):
    """An invalid architecture spec. ``problems`` lists one line per bad field."""

    kind = "ArchSpec"


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
