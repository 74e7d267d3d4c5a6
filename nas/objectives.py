"""What a search can optimise or constrain: metric names, directions, and constraint expressions.

The metrics, their directions, units and stages come from the catalogue (:mod:`analysis.metrics`).

Objectives are declared with a direction (``max``/``min``) like Archai's ``higher_is_better``.
Constraints are checked as soon as their metric is known: *cheap* ones (``params``, ``macs_g``,
``activations_m``, ``num_conv``, ``peak_memory_est_mb``; counted without running the model) reject
a sample before anything runs, *measured* ones (``runtime_ms``, ``peak_memory_mb``,
``ntire_score``) right after profiling, *trained* ones (``psnr``, ``ssim``: a quality floor)
after training. A bound is absolute (``"<= 400000"``) or relative to an anchor measured in the same
run with the same settings: ``"<= 0.9 * fmen_s"`` (a factor) or ``">= span_ch28 - 0.05"`` (an
offset; a quality floor compares with the anchor's result under the same proxy).

``ntire_score`` is the NTIRE ESR challenge's ranking score relative to a baseline anchor
(:func:`ntire_score`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from analysis import metrics as catalogue
from analysis.metrics import COL
from search_space.errors import InputError, did_you_mean

__all__ = [
    "Objective",
    "OBJECTIVES",
    "CHEAP_METRICS",
    "MEASURED_METRICS",
    "TRAINED_METRICS",
    "Constraint",
    "parse_constraint",
    "check_direction",
    "ntire_score",
    "NTIRE_WEIGHTS",
]

# NTIRE 2026 ESR weights of runtime, FLOPs (MACs) and params (2024/2025: 0.7 / 0.15 / 0.15).
NTIRE_WEIGHTS = {"runtime": 0.8, "macs": 0.1, "params": 0.1}


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


def _objectives() -> dict[str, Objective]:
    return {f.name: Objective(f.name, f.direction == "max", f.unit, f.stage)
            for f in catalogue.FIELDS.values() if f.is_metric and f.searchable}


class _Objectives(Mapping):
    """The searchable metrics of the catalogue (:mod:`analysis.metrics`), read on each use: a
    metric added to the catalogue is searchable at once."""

    def __getitem__(self, name: str) -> Objective:
        return _objectives()[name]

    def __iter__(self):
        return iter(_objectives())

    def __len__(self) -> int:
        return len(_objectives())


OBJECTIVES: Mapping[str, Objective] = _Objectives()
CHEAP_METRICS = catalogue.metrics(searchable=True, stage="cheap")
MEASURED_METRICS = catalogue.metrics(searchable=True, stage="measured")
TRAINED_METRICS = catalogue.metrics(searchable=True, stage="trained")


def check_direction(path: str, direction: object) -> str:
    """``max``/``min`` (also ``maximize``/``minimize``) -> ``max``/``min``."""
    d = catalogue.direction_word(direction)
    if d is None:
        raise InputError(f"{path}: expected max or min, got {direction!r}")
    return d


_OPS = {"<=": lambda a, b: a <= b, "<": lambda a, b: a < b, ">=": lambda a, b: a >= b,
        ">": lambda a, b: a > b}
_NEGATED = {"<=": ">", "<": ">=", ">=": "<", ">": "<="}


@dataclass(frozen=True)
class Constraint:
    """``metric op bound``: ``bound = value`` or, relative to an anchor,
    ``value * anchor's metric + offset``."""

    metric: str
    op: str
    value: float
    anchor: str | None = None
    offset: float = 0.0

    @property
    def cheap(self) -> bool:
        return self.stage == "cheap"

    @property
    def stage(self) -> str:
        return catalogue.FIELDS[self.metric].stage

    def bound(self, references: Mapping[str, Mapping[str, float | None]]) -> float:
        """The absolute bound; ``references`` maps anchor -> its measured metrics."""
        if self.anchor is None:
            return self.value
        ref = references.get(self.anchor, {}).get(self.metric)
        if ref is None:
            raise RuntimeError(f"constraint on {self.metric}: anchor {self.anchor!r} has no "
                               f"measured {self.metric}")
        return self.value * float(ref) + self.offset

    def violation(self, value: float | None,
                  references: Mapping[str, Mapping[str, float | None]]) -> str | None:
        """None when satisfied, else a reason such as ``runtime_ms 41.2 > 37.5 (0.9 * fmen_s)``."""
        if value is None:
            return f"{self.metric} was not measured, cannot check {self.text()}"
        bound = self.bound(references)
        if _OPS[self.op](value, bound):
            return None
        where = f" ({self._rhs()})" if self.anchor else ""
        return f"{self.metric} {value:.6g} {_NEGATED[self.op]} {bound:.6g}{where}"

    def ratio_violation(self, ratio: float, baseline_ms: float) -> str | None:
        """The bound read on a paired ratio to the anchor itself: ``runtime <= v * anchor +
        offset`` holds when ``ratio <= v + offset / baseline_ms``, with ``baseline_ms`` the
        anchor's time in the same pairs. None when satisfied, else the reason."""
        bound = self.value + self.offset / baseline_ms
        if _OPS[self.op](ratio, bound):
            return None
        return (f"{COL.runtime_ratio} {ratio:.4g} {_NEGATED[self.op]} {bound:.4g} "
                f"({self._rhs()}, timed paired)")

    def _rhs(self) -> str:
        if self.anchor is None:
            return f"{self.value:g}"
        rhs = self.anchor if self.value == 1 else f"{self.value:g} * {self.anchor}"
        if self.offset:
            rhs += f" {'-' if self.offset < 0 else '+'} {abs(self.offset):g}"
        return rhs

    def text(self) -> str:
        return f"{self.metric} {self.op} {self._rhs()}"


def ntire_score(costs: Mapping[str, float | None], base: Mapping[str, float | None],
                weights: Mapping[str, float] = NTIRE_WEIGHTS) -> float | None:
    """``w_r e^(2 runtime/runtime_b) + w_f e^(2 MACs/MACs_b) + w_p e^(2 params/params_b)``.

    The NTIRE ESR challenge's score (lower is better; the baseline scores ``e^2`` = 7.3891 when
    the weights sum to 1). ``costs`` and ``base`` hold ``runtime_ms``, ``macs_g`` and
    ``params`` measured the same way; a ``runtime_ratio`` in ``costs`` (the runtime timed paired
    with the baseline, :mod:`trainers.timing`) stands for ``runtime/runtime_b``. None when a
    figure is missing.
    """
    ratios = {"runtime": costs.get(COL.runtime_ratio)}
    keys = {"runtime": COL.runtime_ms, "macs": COL.macs_g, "params": COL.params}
    for name, column in keys.items():
        value, ref = costs.get(column), base.get(column)
        if ratios.get(name) is None:
            ratios[name] = None if value is None or not ref else float(value) / float(ref)
    if any(r is None for r in ratios.values()):
        return None
    return sum(float(weights[name]) * math.exp(2.0 * float(r)) for name, r in ratios.items())


_NUMBER = r"[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?"
_CONSTRAINT = re.compile(
    rf"^\s*(?P<op><=|<|>=|>)?\s*(?:(?P<num>{_NUMBER})\s*"
    r"(?:\*\s*(?P<anchor1>[A-Za-z_][\w]*))?|(?P<anchor2>[A-Za-z_][\w]*))"
    rf"\s*(?:(?P<sign>[-+])\s*(?P<offset>{_NUMBER}))?\s*$")


def parse_constraint(path: str, metric: str, text: object,
                     anchors: Iterable[str]) -> Constraint:
    """Parse one constraint of a search config.

    Args:
        path: Config path for messages (``constraints.runtime_ms``).
        metric: Any metric of :data:`OBJECTIVES`.
        text: ``"<= 400000"``, ``400000`` (means ``<=``), ``"<= 0.9 * fmen_s"``, ``"<= fmen_s"``,
            ``">= span_ch28 - 0.05"``.
        anchors: Known anchor names.
    """
    allowed = tuple(OBJECTIVES)
    if metric not in allowed:
        raise InputError(f"{path}: {metric!r} cannot be constrained; allowed: "
                         f"{', '.join(allowed)}{did_you_mean(metric, allowed)}")
    expected = "'<= number', '<= factor * anchor' or '>= anchor - offset'"
    if isinstance(text, bool) or not isinstance(text, (int, float, str)):
        raise InputError(f"{path}: expected {expected}, got {text!r}")
    m = _CONSTRAINT.match(str(text))
    if m is None:
        raise InputError(f"{path}: expected {expected} (e.g. '<= 0.9 * fmen_s'), got {text!r}")
    anchor = m["anchor1"] or m["anchor2"]
    value = float(m["num"]) if m["num"] is not None else 1.0
    offset = float(m["offset"]) * (-1 if m["sign"] == "-" else 1) if m["offset"] else 0.0
    if not (math.isfinite(value) and math.isfinite(offset)) or str(anchor).lower() in (
            "nan", "inf", "infinity"):
        raise InputError(f"{path}: expected finite numbers, got {text!r}")
    if anchor is None and m["offset"]:
        raise InputError(f"{path}: an offset needs an anchor ('>= span_ch28 - 0.05'), "
                         f"got {text!r}")
    anchors = list(anchors)
    if anchor is not None and anchor not in anchors:
        raise InputError(f"{path}: {anchor!r} is not a known anchor; allowed: "
                         f"{', '.join(anchors)}{did_you_mean(anchor, anchors)}")
    return Constraint(metric, m["op"] or "<=", value, anchor, offset)
