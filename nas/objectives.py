"""What a search can optimise or constrain: metric names, directions, and constraint expressions.

Objectives are declared with a direction (``max``/``min``) like Archai's ``higher_is_better``.
Constraints apply to the costs known before training: *cheap* ones (``params``, ``macs_g``,
``activations_m``, ``num_conv``, ``peak_memory_est_mb``; counted without running the model) reject
a sample before anything runs, *measured* ones (``runtime_ms``, ``peak_memory_mb``) right after
profiling. A bound is absolute (``"<= 400000"``) or relative to an anchor profiled on the same
machine with the same settings (``"<= 0.9 * fmen_s"``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from search_space.errors import InputError, did_you_mean

__all__ = [
    "Objective",
    "OBJECTIVES",
    "CHEAP_METRICS",
    "MEASURED_METRICS",
    "Constraint",
    "parse_constraint",
    "check_direction",
]


@dataclass(frozen=True)
class Objective:
    """One result column that can be optimised.

    Args:
        name: Column of trials.csv and key of the trial's report.
        higher_is_better: Default direction (``max`` when True).
        unit: For messages and plots.
        stage: When it is known: ``cheap`` (counted), ``measured`` (profiled) or ``trained``.
    """

    name: str
    higher_is_better: bool
    unit: str
    stage: str

    @property
    def direction(self) -> str:
        return "max" if self.higher_is_better else "min"


OBJECTIVES: dict[str, Objective] = {o.name: o for o in (
    Objective("psnr", True, "dB", "trained"),
    Objective("psnr_proxy", True, "dB", "trained"),
    Objective("ssim", True, "", "trained"),
    Objective("psnr_set5", True, "dB", "trained"),
    Objective("psnr_set14", True, "dB", "trained"),
    Objective("runtime_ms", False, "ms", "measured"),
    Objective("peak_memory_mb", False, "MiB", "measured"),
    Objective("peak_memory_est_mb", False, "MiB", "cheap"),
    Objective("params", False, "", "cheap"),
    Objective("macs_g", False, "G", "cheap"),
    Objective("activations_m", False, "M", "cheap"),
    Objective("num_conv", False, "", "cheap"),
)}

CHEAP_METRICS = tuple(n for n, o in OBJECTIVES.items() if o.stage == "cheap")
MEASURED_METRICS = tuple(n for n, o in OBJECTIVES.items() if o.stage == "measured")
_DIRECTIONS = ("max", "min")


def check_direction(path: str, direction: object) -> str:
    """``max``/``min`` (also ``maximize``/``minimize``) -> ``max``/``min``."""
    d = {"maximize": "max", "minimize": "min"}.get(str(direction), direction)
    if d not in _DIRECTIONS:
        raise InputError(f"{path}: expected max or min, got {direction!r}")
    return str(d)


@dataclass(frozen=True)
class Constraint:
    """``metric op bound``, where ``bound = factor * anchor's metric`` when ``anchor`` is set."""

    metric: str
    op: str
    value: float
    anchor: str | None = None

    @property
    def cheap(self) -> bool:
        return self.metric in CHEAP_METRICS

    def bound(self, references: Mapping[str, Mapping[str, float | None]]) -> float:
        """The absolute bound; ``references`` maps anchor -> its profiled metrics."""
        if self.anchor is None:
            return self.value
        ref = references.get(self.anchor, {}).get(self.metric)
        if ref is None:
            raise RuntimeError(f"constraint on {self.metric}: anchor {self.anchor!r} has no "
                               f"measured {self.metric}")
        return self.value * float(ref)

    def violation(self, value: float | None,
                  references: Mapping[str, Mapping[str, float | None]]) -> str | None:
        """None when satisfied, else a reason such as ``runtime_ms 41.2 > 37.5 (0.9 * fmen_s)``."""
        if value is None:
            return f"{self.metric} was not measured, cannot check {self.text()}"
        bound = self.bound(references)
        ok = {"<=": value <= bound, "<": value < bound, ">=": value >= bound,
              ">": value > bound}[self.op]
        if ok:
            return None
        negated = {"<=": ">", "<": ">=", ">=": "<", ">": "<="}[self.op]
        where = f" ({self.value:g} * {self.anchor})" if self.anchor else ""
        return f"{self.metric} {value:.6g} {negated} {bound:.6g}{where}"

    def text(self) -> str:
        rhs = f"{self.value:g} * {self.anchor}" if self.anchor else f"{self.value:g}"
        return f"{self.metric} {self.op} {rhs}"


_CONSTRAINT = re.compile(
    r"^\s*(?P<op><=|<|>=|>)?\s*(?:(?P<num>[-+]?[0-9.]+(?:[eE][-+]?[0-9]+)?)\s*"
    r"(?:\*\s*(?P<anchor1>[A-Za-z_][\w]*))?|(?P<anchor2>[A-Za-z_][\w]*))\s*$")


def parse_constraint(path: str, metric: str, text: object,
                     anchors: Iterable[str]) -> Constraint:
    """Parse one constraint of a search config.

    Args:
        path: Config path for messages (``constraints.runtime_ms``).
        metric: A cheap or measured metric.
        text: ``"<= 400000"``, ``400000`` (means ``<=``), ``"<= 0.9 * fmen_s"``, ``"<= fmen_s"``.
        anchors: Known anchor names.
    """
    allowed = CHEAP_METRICS + MEASURED_METRICS
    if metric not in allowed:
        raise InputError(f"{path}: {metric!r} cannot be constrained before training; allowed: "
                         f"{', '.join(allowed)}{did_you_mean(metric, allowed)}")
    if isinstance(text, bool) or not isinstance(text, (int, float, str)):
        raise InputError(f"{path}: expected '<= number' or '<= factor * anchor', got {text!r}")
    m = _CONSTRAINT.match(str(text))
    if m is None:
        raise InputError(f"{path}: expected '<= number' or '<= factor * anchor' "
                         f"(e.g. '<= 0.9 * fmen_s'), got {text!r}")
    anchor = m["anchor1"] or m["anchor2"]
    try:
        value = float(m["num"]) if m["num"] is not None else 1.0
    except ValueError:
        raise InputError(f"{path}: {m['num']!r} is not a number") from None
    anchors = list(anchors)
    if anchor is not None and anchor not in anchors:
        raise InputError(f"{path}: {anchor!r} is not a known anchor; allowed: "
                         f"{', '.join(anchors)}{did_you_mean(anchor, anchors)}")
    return Constraint(metric, m["op"] or "<=", value, anchor)
