"""The 3-D view: three metrics at once, in the layers of the 2-D views plus a third coordinate."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pandas as pd

from analysis import pareto
from analysis.metrics import COL
from analysis.plots._utils import _MARKERS, _anchor_rows, _label, _layout
from analysis.plots.scatter import PointLayer, _layer


@dataclass
class Scatter3DInfo:
    axes: tuple[str, str, str]
    labels: tuple[str, str, str]
    layers: list[PointLayer]
    z: dict[str, list[float]]  # layer name -> third coordinate
    title: str


def scatter3d_info(
    df: pd.DataFrame,
    objectives: Mapping[str, str],
    axes: Sequence[str] = (COL.runtime_ms, COL.peak_memory_mb, COL.psnr),
) -> Scatter3DInfo:
    """Three metrics at once; the front highlighted is that of the run's objectives."""
    axes = tuple(axes)
    if len(axes) != 3:
        raise ValueError(f"a 3-D view needs three axes, got {axes}")
    directions = {a: pareto.direction_of(a) for a in axes}
    plotted = df[pareto.eligible_mask(df, directions)]
    on_front = pareto.pareto_mask(df, objectives).reindex(plotted.index, fill_value=False)
    is_anchor = _anchor_rows(plotted)
    parts = (("front (" + ", ".join(objectives) + ")", "front", on_front & ~is_anchor),
             ("dominated", "dominated", ~on_front & ~is_anchor),
             ("anchors (this run's protocol)", "anchor", is_anchor))
    layers, z = [], {}
    for name, kind, mask in parts:
        layers.append(_layer(name, kind, plotted[mask], axes[0], axes[1]))
        z[name] = [float(v) for v in plotted.loc[mask, axes[2]]]
    return Scatter3DInfo(axes=axes, labels=tuple(_label(a) for a in axes), layers=layers, z=z,
                         title=" / ".join(_label(a) for a in axes))


# ---------------------------------------------------------------------------- figure
def plot_scatter3d(info: Scatter3DInfo):
    import plotly.graph_objects as go

    fig = go.Figure()
    for layer in info.layers:
        marker = {k: v for k, v in _MARKERS[layer.kind].items() if k != "line"}
        marker["size"] = max(4, marker["size"] // 2)
        fig.add_trace(go.Scatter3d(
            x=layer.x, y=layer.y, z=info.z[layer.name], name=layer.name,
            mode="markers+text" if layer.kind == "anchor" else "markers",
            text=layer.labels if layer.kind == "anchor" else None,
            marker=marker, hovertext=layer.hover, hoverinfo="text"))
    _layout(fig, info.title)
    fig.update_layout(
        scene=dict(xaxis_title=info.labels[0], yaxis_title=info.labels[1],
                   zaxis_title=info.labels[2], camera=dict(eye=dict(x=1.9, y=1.5, z=0.9)),
                   domain=dict(x=[0, 1], y=[0, 1])),
        legend=dict(orientation="v", yanchor="top", y=0.98, x=0.0),
        margin=dict(l=10, r=10, t=60, b=10))
    return fig
