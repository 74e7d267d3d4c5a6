"""How faithfully a score ranks networks: rank statistics against reference PSNRs.

A proxy score is judged per pair of references: a pair counts only when the references' PSNRs
differ by at least ``min_gap_db`` (closer pairs are noise even between fully trained models).
Every statistic comes with a bootstrap interval over the references, so that a figure measured
on 20-odd networks is read with its uncertainty.

Plain numpy (n is tens): Kendall's tau-b, Spearman's rho (average ranks for ties) and the
pairwise accuracy; no scipy.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

__all__ = ["kendall_tau", "spearman", "pairwise_accuracy", "count_pairs", "fidelity_scores",
           "score_table", "MIN_GAP_DB", "STATISTICS"]

MIN_GAP_DB = 0.10
STATISTICS = ("kendall_tau", "spearman", "pairwise_accuracy")


def kendall_tau(x: Sequence[float], y: Sequence[float]) -> float:
    """Kendall's tau-b (ties in either variable handled as scipy's default); NaN if undefined."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    i, j = np.triu_indices(len(x), k=1)
    dx, dy = np.sign(x[i] - x[j]), np.sign(y[i] - y[j])
    denom = np.sqrt(np.count_nonzero(dx) * np.count_nonzero(dy))
    return float(np.sum(dx * dy) / denom) if denom else float("nan")


def _ranks(v: np.ndarray) -> np.ndarray:
    order = np.argsort(v, kind="stable")
    ranks = np.empty(len(v))
    ranks[order] = np.arange(len(v), dtype=float)
    for value in np.unique(v):  # average ranks of ties
        tied = v == value
        ranks[tied] = ranks[tied].mean()
    return ranks


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's rho: Pearson correlation of the (tie-averaged) ranks; NaN if undefined."""
    rx, ry = _ranks(np.asarray(x, float)), _ranks(np.asarray(y, float))
    rx, ry = rx - rx.mean(), ry - ry.mean()
    denom = np.sqrt((rx**2).sum() * (ry**2).sum())
    return float((rx * ry).sum() / denom) if denom else float("nan")


def pairwise_accuracy(score: Sequence[float], ref: Sequence[float],
                      min_gap_db: float = MIN_GAP_DB) -> float:
    """Share of the pairs whose references differ by >= ``min_gap_db`` that ``score`` orders
    like the references (a tied score counts half); NaN without such pairs."""
    s, r = np.asarray(score, float), np.asarray(ref, float)
    i, j = np.triu_indices(len(s), k=1)
    keep = np.abs(r[i] - r[j]) >= min_gap_db - 1e-12
    if not keep.any():
        return float("nan")
    agree = np.sign(s[i] - s[j])[keep] * np.sign(r[i] - r[j])[keep]
    return float(np.mean((agree + 1) / 2))


def count_pairs(ref: Sequence[float], min_gap_db: float = MIN_GAP_DB) -> int:
    r = np.asarray(ref, float)
    i, j = np.triu_indices(len(r), k=1)
    return int(np.count_nonzero(np.abs(r[i] - r[j]) >= min_gap_db - 1e-12))


def _statistics(score: np.ndarray, ref: np.ndarray, min_gap_db: float) -> dict[str, float]:
    return {"kendall_tau": kendall_tau(score, ref), "spearman": spearman(score, ref),
            "pairwise_accuracy": pairwise_accuracy(score, ref, min_gap_db)}


def fidelity_scores(score: Sequence[float], ref: Sequence[float], *,
                    min_gap_db: float = MIN_GAP_DB, n_boot: int = 2000, seed: int = 0,
                    level: float = 0.90) -> dict[str, float | list[float]]:
    """The three statistics of ``score`` against ``ref`` with bootstrap ``level`` intervals.

    The bootstrap resamples references with replacement (a resampled duplicate ties with
    itself and so drops out of its own pairs); ``<stat>_ci`` is the percentile interval.
    """
    s, r = np.asarray(score, float), np.asarray(ref, float)
    if len(s) != len(r) or len(s) < 3:
        raise ValueError(f"need >= 3 paired values, got {len(s)} and {len(r)}")
    out: dict[str, float | list[float]] = dict(_statistics(s, r, min_gap_db))
    rng = np.random.default_rng(seed)
    boots = {k: [] for k in STATISTICS}
    for _ in range(n_boot):
        idx = rng.integers(0, len(s), len(s))
        for k, v in _statistics(s[idx], r[idx], min_gap_db).items():
            if np.isfinite(v):
                boots[k].append(v)
    lo, hi = (1 - level) / 2 * 100, (1 + level) / 2 * 100
    for k, values in boots.items():
        out[f"{k}_ci"] = ([round(float(np.percentile(values, lo)), 4),
                           round(float(np.percentile(values, hi)), 4)] if values else None)
    # undefined statistics (no pair far enough apart, a constant score) are None, not NaN
    return {k: ((round(v, 4) if math.isfinite(v) else None) if isinstance(v, float) else v)
            for k, v in out.items()}


def score_table(scores: Mapping[str, Sequence[float]], ref: Sequence[float], *,
                min_gap_db: float = MIN_GAP_DB, seed: int = 0,
                n_boot: int = 2000) -> dict[str, dict]:
    """``fidelity_scores`` of every named score (higher must mean better)."""
    return {name: fidelity_scores(values, ref, min_gap_db=min_gap_db, seed=seed, n_boot=n_boot)
            for name, values in scores.items()}
