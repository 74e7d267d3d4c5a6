"""The one validation layer: field rules, problem collection and number parsing.

Every user document (spec, training config, search config, search space) and every CLI value is
checked with these primitives. A dataclass field carries a :class:`Rule` in its metadata (type,
range, allowed values); :func:`check_fields` checks a mapping against a dataclass and
:func:`check_instance` a constructed one, so a frozen dataclass validates itself in
``__post_init__``. Problems are collected, never raised one by one: each is one line
``path: expected ..., got <value>`` (values shortened), and a document raises one
:class:`DocumentError` subclass listing them all.

YAML documents are parsed, bounded, in :mod:`search_space.yaml_io`; ``docs/validation.md``
lists the documented maxima.
"""

from __future__ import annotations

import math
import re
import reprlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

from search_space.errors import DocumentError, InputError, did_you_mean, not_allowed

__all__ = ["Rule", "rule", "Checked", "check_fields", "check_instance", "check_value",
           "field_rule", "unknown_keys", "short",
           "raise_problems", "parse_number"]

_repr = reprlib.Repr()
_repr.maxstring, _repr.maxother, _repr.maxlist, _repr.maxdict, _repr.maxlevel = 60, 60, 6, 6, 3


def short(value: Any) -> str:
    """``repr(value)``, shortened: a message never renders a huge or deeply nested value."""
    return _repr.repr(value)


# ---------------------------------------------------------------------------- rules
_INT, _NUMBER, _BOOL, _STR = "an integer", "a number", "true or false", "a non-empty string"
# Numbers written as text (PyYAML reads 5e-4, without a dot, as a string): ASCII only.
_NUMBER_TEXT = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", re.ASCII)


def parse_number(text: str) -> float | None:
    """A finite float from ASCII text (``5e-4``, ``12``), or None (``nan``, ``1e999``, ``²``)."""
    if not isinstance(text, str) or not _NUMBER_TEXT.fullmatch(text.strip()):
        return None
    value = float(text)
    return value if math.isfinite(value) else None


@dataclass(frozen=True)
class Rule:
    """What a value may be: a kind, a range and/or allowed values.

    Args:
        kind: ``int``, ``float`` (any finite number), ``bool``, ``str`` (non-empty) or None (any
            type; only ``choices`` / ``check`` apply).
        low, high: Inclusive bounds (``low_open``: ``> low``).
        choices: Allowed values, or a function returning them (registry look-ups stay lazy).
        optional: None is allowed.
        check: Extra rule ``value -> problem or None`` on a value of the right kind.
        expected: Overrides the ``expected ...`` text.
        lower: Compare strings case-insensitively (stored lowercase).
        convert: Normalise the value first (``"Set5, Set14"`` -> a tuple); may return it as is.
    """

    kind: type | None = None
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    choices: Sequence[Any] | Callable[[], Sequence[Any]] | None = None
    optional: bool = False
    check: Callable[[Any], str | None] | None = None
    expected: str | None = None
    lower: bool = False
    convert: Callable[[Any], Any] | None = None

    def allowed(self) -> Sequence[Any] | None:
        return self.choices() if callable(self.choices) else self.choices

    def describe(self) -> str:
        if self.expected:
            return self.expected
        text = {int: _INT, float: _NUMBER, bool: _BOOL, str: _STR}.get(self.kind, "a value")
        if self.low is not None:
            text += f" {'>' if self.low_open else '>='} {_num(self.low)}"
        if self.high is not None:
            text += f"{' and' if self.low is not None else ''} <= {_num(self.high)}"
        return text

    def apply(self, path: str, value: Any) -> tuple[Any, str | None]:
        """``(converted value, problem line or None)``."""
        value = self._convert(value)
        if value is None and self.optional:
            return None, None
        if not self._kind_ok(value) or not self._range_ok(value):
            return value, f"{path}: expected {self.describe()}, got {short(value)}"
        allowed = self.allowed()
        if allowed is not None and not any(value == a and type(value) is type(a)
                                           or value == a and self.kind is float
                                           for a in allowed):
            return value, _not_allowed(path, value, allowed)
        problem = self.check(value) if self.check else None
        if problem and problem.startswith("."):  # the check names a sub-path (``.seed: ...``)
            return value, f"{path}{problem}"
        return value, (f"{path}: {problem}" if problem else None)

    def _convert(self, value: Any) -> Any:
        if self.convert is not None:
            value = self.convert(value)
        if self.kind is float and isinstance(value, str):
            number = parse_number(value)
            return value if number is None else number
        if self.kind is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if self.lower and isinstance(value, str):
            return value.lower()
        return value

    def _kind_ok(self, value: Any) -> bool:
        if self.kind is None:
            return True
        if self.kind is bool:
            return isinstance(value, bool)
        if self.kind is int:
            return isinstance(value, int) and not isinstance(value, bool)
        if self.kind is float:
            return isinstance(value, (int, float)) and not isinstance(value, bool) and \
                math.isfinite(value)
        if self.kind is str:
            return isinstance(value, str) and value.strip() != ""
        return isinstance(value, self.kind)

    def _range_ok(self, value: Any) -> bool:
        if self.kind not in (int, float):
            return True
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return self.high is None or value <= self.high


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def _not_allowed(path: str, value: Any, allowed: Iterable[Any]) -> str:
    if isinstance(value, (str, int, float, bool)) and len(str(value)) <= 60:
        return not_allowed(path, value, allowed)
    return f"{path}: {short(value)} not allowed; allowed: {', '.join(map(str, allowed))}"


def field_rule(cls: type, name: str) -> Rule:
    """The rule of field ``name`` of dataclass ``cls`` (a CLI flag that overrides the field)."""
    return next(f.metadata["rule"] for f in fields(cls) if f.name == name)


def check_value(path: str, value: Any, rule: Rule) -> Any:
    """One value (a CLI flag) against ``rule``: the converted value, or a one-line InputError.
    None (a flag not given) passes."""
    if value is None:
        return None
    value, problem = rule.apply(path, value)
    if problem:
        raise InputError(problem)
    return value


def rule(**kwargs: Any) -> dict[str, Rule]:
    """Dataclass field metadata: ``field(default=.., metadata=rule(kind=int, low=1))``."""
    return {"rule": Rule(**kwargs)}


def unknown_keys(path: str, data: Mapping[str, Any], known: Sequence[str],
                 what: str = "unknown key") -> list[str]:
    """One line per key of ``data`` outside ``known``, with a suggestion."""
    prefix = f"{path}." if path else ""
    return [f"{prefix}{k}: {what}; allowed: {', '.join(map(str, known))}"
            f"{did_you_mean(k, known)}" for k in data if k not in known]


def check_fields(cls: type, data: Mapping[str, Any], path: str, problems: list[str],
                 skip: Sequence[str] = ()) -> dict[str, Any]:
    """Check ``data`` against the rules of dataclass ``cls``; unknown keys are problems.

    Returns the converted values of the fields present in ``data`` (``skip``-ped ones aside).
    """
    prefix = f"{path}." if path else ""
    problems += unknown_keys(path, data, [f.name for f in fields(cls)])
    out = {}
    for f in fields(cls):
        if f.name in skip or f.name not in data or "rule" not in f.metadata:
            continue
        value, problem = f.metadata["rule"].apply(prefix + f.name, data[f.name])
        if problem:
            problems.append(problem)
        out[f.name] = value
    return out


def raise_problems(problems: list[str], error: type, what: str | None = None) -> None:
    """Raise ``error(problems, what)`` (a :class:`DocumentError` subclass) if there are any."""
    if problems:
        raise error(problems, what)


class Checked:
    """Mixin of a frozen dataclass that checks its field rules on construction.

    ``_path`` prefixes the problems (``"data"`` -> ``data.lr_patch: ...``); ``_error`` is the
    document's error type.
    """

    _path = ""
    _error: type = DocumentError

    def __post_init__(self) -> None:
        raise_problems(check_instance(self, self._path), self._error)


def check_instance(obj: Any, path: str = "") -> list[str]:
    """The rule problems of a constructed dataclass (its ``__post_init__`` raises them)."""
    prefix = f"{path}." if path else ""
    problems = []
    for f in fields(obj):
        if "rule" in f.metadata:
            _, problem = f.metadata["rule"].apply(prefix + f.name, getattr(obj, f.name))
            if problem:
                problems.append(problem)
    return problems
