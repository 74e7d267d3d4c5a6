"""Learning curves: validation PSNR-Y during proxy training, one line per trial."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from analysis import metrics
from analysis.metrics import COL
from analysis.plots._utils import _layout


def plot_learning_curves(curves: Mapping[str, Sequence[tuple[int, float]]]):
    """Validation PSNR-Y against proxy iterations, one line per trial (``label -> curve``)."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for name, curve in curves.items():
        if curve:
            xs, ys = zip(*curve, strict=True)
            fig.add_trace(go.Scatter(x=list(xs), y=list(ys), mode="lines+markers", name=name))
    fig.update_xaxes(title="proxy training iteration")
    fig.update_yaxes(title=metrics.label(COL.psnr_proxy))
    _layout(fig, "Learning curves (validation during proxy training)",
            "A line that is still rising at the end was stopped before it converged.")
    return fig
