"""What the results of a search mean: Pareto fronts, hypervolume, plots, report and export.

``analysis.pareto`` is pure (pandas/numpy); plotting imports plotly lazily and export imports
torch lazily, so ``import analysis`` stays light. ``analysis`` depends on ``search_space`` only.
"""

from __future__ import annotations

from analysis.pareto import (
    DIRECTIONS,
    filter_where,
    hypervolume,
    hypervolume_history,
    knee_point,
    nondominated_ranks,
    pareto_front,
    pareto_mask,
    resolve_objectives,
)

__all__ = [
    "DIRECTIONS",
    "filter_where",
    "hypervolume",
    "hypervolume_history",
    "knee_point",
    "nondominated_ranks",
    "pareto_front",
    "pareto_mask",
    "resolve_objectives",
]
