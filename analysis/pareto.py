"""Pareto fronts, non-dominated ranks, hypervolume and the knee point of a trials table.

Pure functions on a pandas DataFrame with one row per trial (the columns of ``trials.csv``); no
torch. Objectives are given as ``{column: "max" | "min"}`` (the catalogue's words,
:mod:`analysis.metrics`; ``maximize``/``minimize`` are accepted too); internally every objective is
turned into a loss (``max`` columns negated), as Optuna and Archai do. Non-dominated sorting and
hypervolume are numpy code of this module (tested against brute force), not library internals.

Which rows compete: only ``status == "completed"`` rows (searched trials and anchors alike) with a
finite value in every objective. Running, failed, infeasible and pruned rows never enter a front.

Hypervolume is computed in normalised loss space: each objective is min-max scaled over the
eligible rows (ideal = best observed -> 0, worst observed -> 1), and the reference point is
``1 + margin`` (margin 0.1) in every objective, i.e. the worst observed value plus 10 % of the
observed range. The hypervolume of one run is therefore in ``[0, 1.1 ** m]`` and its history over
trials uses the same bounds throughout, so it never decreases.

The knee point is the front row farthest from the hyperplane through the front's extreme points
(the best row in each objective), on the side of the ideal point, with objectives min-max
normalised over the front (Das, 1999; Branke et al., 2004). Where that plane is undefined (fewer
than ``m`` distinct extremes) or no row bulges towards the ideal, the row nearest to the ideal
point is the knee.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Literal

import numpy as np
import pandas as pd

from analysis import metrics
from analysis.metrics import COL
from analysis.rundir import STATUS
from search_space.errors import InputError, did_you_mean

__all__ = [
    "Direction",
    "DIRECTIONS",
    "is_max",
    "ELIGIBLE_STATUS",
    "HV_MARGIN",
    "resolve_objectives",
    "eligible_mask",
    "loss_matrix",
    "nondominated_ranks",
    "pareto_mask",
    "pareto_front",
    "normalisation_bounds",
    "hypervolume",
    "hypervolume_history",
    "knee_point",
    "filter_where",
    "where_columns",
]

Direction = Literal["max", "min"]


class _Directions(Mapping):
    """Known metric columns of trials.csv -> direction, read from the catalogue on each use.
    Per-dataset columns (psnr_<set>, ssim_<set>) are recognised by prefix in ``direction_of``."""

    def _table(self) -> dict[str, str]:
        return {name: str(metrics.direction(name)) for name in metrics.metrics()}

    def __getitem__(self, name: str) -> str:
        return self._table()[name]

    def __iter__(self):
        return iter(self._table())

    def __len__(self) -> int:
        return len(self._table())


DIRECTIONS: Mapping[str, str] = _Directions()
def is_max(direction: str) -> bool:
    """``max``/``maximize`` -> True."""
    return metrics.direction_word(direction) == "max"


ELIGIBLE_STATUS = STATUS.completed
HV_MARGIN = 0.1


# ---------------------------------------------------------------------------- objectives
def direction_of(name: str, table: Mapping[str, str] = DIRECTIONS) -> Direction:
    """Direction of a known metric column; InputError naming the allowed metrics otherwise."""
    if name in table:
        return metrics.direction_word(table[name])
    if name.startswith(("psnr_", "ssim_")) and len(name) > 5:
        return "max"
    raise InputError(f"objective {name!r} is not a known metric; allowed: "
                     f"{', '.join(table)}, psnr_<set>, ssim_<set>{did_you_mean(name, table)}")


def resolve_objectives(
    objectives: str | Sequence[str] | Mapping[str, str],
    table: Mapping[str, str] = DIRECTIONS,
) -> dict[str, Direction]:
    """Normalise objectives to ``{column: "max" | "min"}``.

    Args:
        objectives: ``"psnr,runtime_ms"``, a list of column names (directions from ``table``),
            or a mapping column -> direction (``maximize``/``max``/``minimize``/``min``).
        table: Known metric directions.
    """
    if isinstance(objectives, str):
        objectives = [s.strip() for s in objectives.split(",") if s.strip()]
    if isinstance(objectives, Mapping):
        out = {}
        for name, direction in objectives.items():
            word = metrics.direction_word(direction)
            if word is None:
                raise InputError(f"objective {name!r}: direction must be max or min, "
                                 f"got {direction!r}")
            out[str(name)] = word
    else:
        names = list(objectives)
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise InputError(f"objectives: each objective may appear once, got "
                             f"{', '.join(duplicates)} twice")
        out = {name: direction_of(name, table) for name in names}
    if not out:
        raise InputError("objectives: expected at least one objective, e.g. psnr,runtime_ms")
    return out


# ---------------------------------------------------------------------------- fronts
def eligible_mask(df: pd.DataFrame, objectives: Mapping[str, str]) -> pd.Series:
    """Rows that may enter a front: completed, with a finite value in every objective."""
    mask = df[COL.status].astype(str) == ELIGIBLE_STATUS
    for name in objectives:
        if name not in df.columns:
            raise InputError(f"objective {name!r} is not a column of the trials table; columns: "
                             f"{', '.join(map(str, df.columns))}{did_you_mean(name, df.columns)}")
        values = pd.to_numeric(df[name], errors="coerce").astype(float)
        mask &= np.isfinite(values)
    return mask.astype(bool)


def loss_matrix(df: pd.DataFrame, objectives: Mapping[str, str]) -> np.ndarray:
    """``(rows, objectives)`` float array where smaller is better in every column."""
    cols = []
    for name, direction in objectives.items():
        values = pd.to_numeric(df[name], errors="coerce").to_numpy(dtype=float)
        cols.append(-values if is_max(direction) else values)
    return np.stack(cols, axis=1) if cols else np.empty((len(df), 0))


def _dominates(losses: np.ndarray) -> np.ndarray:
    """``d[i, j]``: row i dominates row j (no worse everywhere, better somewhere)."""
    le = np.all(losses[:, None, :] <= losses[None, :, :], axis=2)
    lt = np.any(losses[:, None, :] < losses[None, :, :], axis=2)
    return le & lt


def _ranks(losses: np.ndarray) -> np.ndarray:
    """Non-dominated sorting (NSGA-II's fronts): 0 = non-dominated; equal points share a rank.
    O(n^2 m) memory and time, ample for the hundreds of trials of a run."""
    n = len(losses)
    ranks = np.full(n, -1, dtype=np.int64)
    dom = _dominates(losses)
    dominated_by = dom.sum(axis=0)  # how many rows dominate each row
    rank = 0
    current = np.flatnonzero(dominated_by == 0)
    while current.size:
        ranks[current] = rank
        dominated_by = dominated_by - dom[current].sum(axis=0)
        dominated_by[ranks >= 0] = -1
        current = np.flatnonzero(dominated_by == 0)
        rank += 1
    return ranks


def nondominated_ranks(df: pd.DataFrame, objectives: Mapping[str, str]) -> pd.Series:
    """Front index of each row (0 = Pareto front, 1 = next front, ...); <NA> if not eligible."""
    mask = eligible_mask(df, objectives)
    ranks = pd.Series(pd.NA, index=df.index, dtype="Int64")
    if mask.any():
        ranks[mask] = _ranks(loss_matrix(df[mask], objectives))
    return ranks


def pareto_mask(df: pd.DataFrame, objectives: Mapping[str, str]) -> pd.Series:
    """True for rows on the first front (non-dominated among the eligible rows)."""
    return (nondominated_ranks(df, objectives) == 0).fillna(False).astype(bool)


def pareto_front(df: pd.DataFrame, objectives: Mapping[str, str]) -> pd.DataFrame:
    """The non-dominated rows, best first in the first objective."""
    front = df[pareto_mask(df, objectives)]
    first, direction = next(iter(objectives.items()))
    return front.sort_values(first, ascending=not is_max(direction), kind="stable")


# ---------------------------------------------------------------------------- hypervolume
def normalisation_bounds(df: pd.DataFrame, objectives: Mapping[str, str]) -> tuple[np.ndarray,
                                                                                   np.ndarray]:
    """``(ideal, worst)`` loss vectors over the eligible rows (see the module docstring)."""
    losses = loss_matrix(df[eligible_mask(df, objectives)], objectives)
    if len(losses) == 0:
        raise InputError("no completed trial has a value for every objective "
                         f"({', '.join(objectives)})")
    return losses.min(axis=0), losses.max(axis=0)


def _normalise(losses: np.ndarray, ideal: np.ndarray, worst: np.ndarray) -> np.ndarray:
    span = worst - ideal
    span = np.where(span > 0, span, 1.0)  # a constant objective contributes a unit side
    return (losses - ideal) / span


def _hv(normalised: np.ndarray, margin: float) -> float:
    reference = np.full(normalised.shape[1], 1.0 + margin)
    inside = np.all(normalised <= reference, axis=1)  # rows worse than the reference add nothing
    return _hypervolume(normalised[inside], reference) if inside.any() else 0.0


def _hypervolume(points: np.ndarray, reference: np.ndarray) -> float:
    """Volume dominated by ``points`` (losses) and bounded by ``reference``: exact, by slicing
    along the last objective (2-D: a sweep). Fine for the few objectives and fronts of a run."""
    front = points[_ranks(points) == 0] if len(points) > 1 else points
    front = np.unique(front, axis=0)
    if front.shape[1] == 1:
        return float(reference[0] - front[:, 0].min())
    order = np.argsort(front[:, -1], kind="stable")
    front = front[order]
    volume = 0.0
    for i in range(len(front)):
        upper = front[i + 1, -1] if i + 1 < len(front) else reference[-1]
        depth = upper - front[i, -1]
        if depth > 0:
            volume += depth * _hypervolume(front[: i + 1, :-1], reference[:-1])
    return float(volume)


def hypervolume(
    df: pd.DataFrame,
    objectives: Mapping[str, str],
    *,
    margin: float = HV_MARGIN,
    bounds: tuple[np.ndarray, np.ndarray] | None = None,
) -> float:
    """Hypervolume of the eligible rows in normalised loss space (reference ``1 + margin``).

    Args:
        df: Trials table.
        objectives: Column -> direction.
        margin: Reference point offset beyond the worst observed value, as a fraction of the
            observed range.
        bounds: ``(ideal, worst)`` to normalise with; default: those of ``df`` itself.
    """
    ideal, worst = bounds if bounds is not None else normalisation_bounds(df, objectives)
    losses = loss_matrix(df[eligible_mask(df, objectives)], objectives)
    if len(losses) == 0:
        return 0.0
    return _hv(_normalise(losses, ideal, worst), margin)


def _trial_order(df: pd.DataFrame) -> pd.Index:
    if COL.number not in df.columns:
        return df.index
    number = pd.to_numeric(df[COL.number], errors="coerce")
    position = pd.Series(np.arange(len(df)), index=df.index)
    order = pd.DataFrame({COL.number: number, "position": position})
    return order.sort_values([COL.number, "position"], na_position="last", kind="stable").index


def hypervolume_history(
    df: pd.DataFrame, objectives: Mapping[str, str], *, margin: float = HV_MARGIN
) -> pd.DataFrame:
    """Hypervolume after each trial, in trial-number order, with the final run's bounds.

    Returns:
        One row per trial: ``step`` (1-based), ``trial_id``, ``number``, ``hypervolume`` (the
        value after this trial; failed or running trials repeat the previous value).
    """
    bounds = normalisation_bounds(df, objectives)
    ordered = df.loc[_trial_order(df)]
    mask = eligible_mask(ordered, objectives).to_numpy()
    normalised = _normalise(loss_matrix(ordered, objectives), *bounds)
    values, current = [], 0.0
    for i in range(len(ordered)):
        if mask[i]:
            current = _hv(normalised[: i + 1][mask[: i + 1]], margin)
        values.append(current)
    return pd.DataFrame({
        "step": np.arange(1, len(ordered) + 1),
        COL.trial_id: (ordered[COL.trial_id].astype(str).to_numpy() if COL.trial_id in ordered
                       else ""),
        COL.number: (pd.to_numeric(ordered[COL.number], errors="coerce").astype(float).to_numpy()
                     if COL.number in ordered else np.nan),
        "hypervolume": values,
    })


# ---------------------------------------------------------------------------- knee
def knee_point(df: pd.DataFrame, objectives: Mapping[str, str]) -> object | None:
    """Index label of the knee row of the front (definition in the module docstring).

    Returns None when no row is eligible.
    """
    front = pareto_front(df, objectives)
    if front.empty:
        return None
    losses = loss_matrix(front, objectives)
    if losses.shape[1] == 1 or len(front) == 1:
        return front.index[int(np.argmin(losses[:, 0]))]
    normalised = _normalise(losses, losses.min(axis=0), losses.max(axis=0))
    nearest_ideal = front.index[int(np.argmin(np.linalg.norm(normalised, axis=1)))]
    distance = _distance_below_extremes_plane(normalised)
    if distance is None or distance.max() <= 1e-12:
        return nearest_ideal
    return front.index[int(np.argmax(distance))]


def _distance_below_extremes_plane(points: np.ndarray) -> np.ndarray | None:
    """Signed distance of each point to the plane through the extremes; > 0 towards the ideal."""
    m = points.shape[1]
    extremes = []
    for j in range(m):
        # best in objective j; ties broken by the sum of the other objectives
        key = np.lexsort((points.sum(axis=1), points[:, j]))
        extremes.append(points[key[0]])
    extremes = np.unique(np.array(extremes), axis=0)
    if len(extremes) < m:
        return None
    differences = extremes[1:] - extremes[0]
    _, singular, vt = np.linalg.svd(differences)
    if singular.min() <= 1e-12:
        return None  # extremes are collinear: no unique plane
    normal = vt[-1]
    if normal @ (np.zeros(m) - extremes[0]) > 0:
        normal = -normal  # orient away from the ideal point (the origin)
    return (extremes[0] - points) @ normal


# ---------------------------------------------------------------------------- filters
_CONDITION = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(<=|>=|==|!=|<|>|=)\s*([^<>=!\s].*?)\s*$")
_OPERATORS: dict[str, Callable] = {"<=": operator.le, ">=": operator.ge, "<": operator.lt,
                                   ">": operator.gt, "==": operator.eq, "=": operator.eq,
                                   "!=": operator.ne}


def _conditions(where: str) -> Iterable[str]:
    return [c for c in re.split(r",|\band\b|&&?", where) if c.strip()]


def where_columns(where: str) -> list[str]:
    """Columns named by the conditions of ``where`` (unparsable conditions skipped)."""
    matches = (_CONDITION.match(c) for c in _conditions(where))
    return [m.group(1) for m in matches if m]


def filter_where(df: pd.DataFrame, where: str) -> pd.DataFrame:
    """Rows satisfying every condition of ``where`` (``"runtime_ms<=30, params<400000"``).

    Conditions are ``column op value`` joined by ``,`` or ``and``; op is one of
    ``<= >= < > == !=``. Numeric columns compare as numbers (a missing value never matches),
    other columns as text (``anchor==fmen_s``, ``is_anchor==false``).
    """
    conditions = _conditions(where)
    if not conditions:
        raise InputError(f"--where: expected conditions like 'runtime_ms<=30', got {where!r}")
    mask = pd.Series(True, index=df.index)
    for condition in conditions:
        match = _CONDITION.match(condition)
        if not match:
            raise InputError(f"--where: expected 'column<=number' (ops <= >= < > == !=), "
                             f"got {condition.strip()!r}")
        column, op, value = match.groups()
        if column not in df.columns:
            raise InputError(f"--where: {column!r} is not a column of the trials table"
                             f"{did_you_mean(column, df.columns)}")
        mask &= _compare(df[column], op, value.strip("'\""), condition.strip())
    return df[mask]


def _compare(series: pd.Series, op: str, value: str, condition: str) -> pd.Series:
    numbers = pd.to_numeric(series, errors="coerce")
    is_numeric = numbers.notna().any() or series.dropna().empty
    try:
        threshold = float(value)
    except ValueError:
        threshold = math.nan
    if is_numeric and not math.isnan(threshold):
        return _OPERATORS[op](numbers.astype(float), threshold).fillna(False).astype(bool)
    if op not in ("==", "=", "!="):
        raise InputError(f"--where {condition!r}: {op} needs a number, got {value!r}")
    text = series.astype(str).str.lower()
    return _OPERATORS[op](text, value.lower()).astype(bool)
