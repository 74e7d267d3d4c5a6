"""Plots of a search run: PSNR against each cost, a 3-D view, hypervolume history, hyperparameters.

As in Optuna's visualisation package, each plot is split into a pure ``*_info()`` function that
decides what is drawn (tested) and a thin ``plot_*()`` that turns the info into a plotly figure.
plotly is imported only inside the builders.

One module per figure, as in ``optuna/visualization/``: ``scatter`` (the PSNR-vs-cost views and
their layers), ``scatter3d``, ``hypervolume``, ``parallel`` (parallel coordinates),
``learning_curves`` and ``fidelity`` (the figure of ``nas fidelity``); ``_utils`` holds what they
share (labels, colours, hover text, layout) and ``_writer`` writes the figures (HTML, and PNG
through kaleido). Import from this package.
"""

from __future__ import annotations

from analysis.plots._utils import (
    COST_VIEWS,
    LOG_AXIS_RATIO,
    METRIC_LABELS,
    REFERENCE_INPUT_HW,
    hover_text,
)
from analysis.plots._writer import export_png, write_figures
from analysis.plots.fidelity import fidelity_figure
from analysis.plots.hypervolume import HypervolumeInfo, hypervolume_info, plot_hypervolume
from analysis.plots.learning_curves import plot_learning_curves
from analysis.plots.parallel import (
    ParallelDimension,
    ParallelInfo,
    parallel_info,
    plot_parallel,
)
from analysis.plots.scatter import (
    PointLayer,
    ScatterInfo,
    plot_scatter,
    published_figure,
    scatter_info,
)
from analysis.plots.scatter3d import Scatter3DInfo, plot_scatter3d, scatter3d_info

__all__ = [
    "METRIC_LABELS",
    "COST_VIEWS",
    "REFERENCE_INPUT_HW",
    "LOG_AXIS_RATIO",
    "ParallelDimension",
    "published_figure",
    "export_png",
    "fidelity_figure",
    "PointLayer",
    "ScatterInfo",
    "Scatter3DInfo",
    "HypervolumeInfo",
    "ParallelInfo",
    "hover_text",
    "scatter_info",
    "scatter3d_info",
    "hypervolume_info",
    "parallel_info",
    "plot_scatter",
    "plot_scatter3d",
    "plot_hypervolume",
    "plot_parallel",
    "plot_learning_curves",
    "write_figures",
]
