"""The PSNR-vs-cost views: what each 2-D view draws (``scatter_info``) and its figure.

Layers of the 2-D views:

- searched trials on the front of the run's objectives, and dominated ones; the knee ringed;
- anchors as measured in this run (same proxy training and profiling protocol), labelled;
- anchors with their official weights (``psnr_official``: fully trained, same validation
  protocol), hidden by default because they sit ~3 dB above any proxy-trained point;
- published / official-code figures of the anchors, only where they measure the same thing as
  the x axis: parameters, and MACs where the run profiled at their 3x256x256 input. Published
  runtimes and memory come from other hardware (GPUs) and are listed in the report's anchor
  table instead of being drawn.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from analysis import metrics, pareto
from analysis.formatting import format_value
from analysis.metrics import COL, is_flag_set
from analysis.plots._utils import (
    _COLOURS,
    _MARKERS,
    LOG_AXIS_RATIO,
    REFERENCE_INPUT_HW,
    _alternating_positions,
    _anchor_rows,
    _label,
    _layout,
    _rows,
    hover_text,
)
from search_space.anchors import get_anchor


@dataclass
class PointLayer:
    """One legend entry: points (or ``None``-separated segments) of one kind."""

    name: str
    kind: str  # front | dominated | anchor | knee | official | published
    x: list[float]
    y: list[float]
    hover: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    trial_ids: list[str] = field(default_factory=list)
    visible: bool = True
    sd: list[float] = field(default_factory=list)  # the y value's sd per point (psnr_sd)
    extrapolated: list[bool] = field(default_factory=list)  # psnr predicted beyond the refs


@dataclass
class ScatterInfo:
    """What a PSNR-vs-cost view draws."""

    x: str
    y: str
    x_label: str
    y_label: str
    layers: list[PointLayer]
    front_line: tuple[list[float], list[float]]  # the 2-D front of (x, y), as a step line
    title: str
    note: str = ""
    log_x: bool = False


def _layer(name: str, kind: str, df: pd.DataFrame, x: str, y: str, **kwargs) -> PointLayer:
    rows = _rows(df)
    predicted = y == COL.psnr
    return PointLayer(
        name=name, kind=kind,
        x=[float(r[x]) for r in rows], y=[float(r[y]) for r in rows],
        hover=[hover_text(r) for r in rows],
        labels=[str(r.get(COL.anchor) or "") for r in rows],
        trial_ids=[str(r.get(COL.trial_id, "")) for r in rows],
        sd=[_number(r.get(COL.psnr_sd)) if predicted else math.nan for r in rows],
        extrapolated=[predicted and is_flag_set(r.get(COL.extrapolated)) for r in rows],
        **kwargs,
    )


def _number(value: Any) -> float:
    return math.nan if value is None or pd.isna(value) else float(value)


def _front_line(df: pd.DataFrame, x: str, y: str, directions: Mapping[str, str]):
    pair = {x: directions[x], y: directions[y]}
    front = pareto.pareto_front(df, pair).sort_values(x)
    return [float(v) for v in front[x]], [float(v) for v in front[y]]


def scatter_info(
    df: pd.DataFrame,
    x: str,
    objectives: Mapping[str, str],
    *,
    y: str = COL.psnr,
    scale: int | None = None,
    input_hw: tuple[int, int] | None = REFERENCE_INPUT_HW,
    anchor_lookup: Callable[[str], Any] | None = None,
) -> ScatterInfo:
    """The PSNR-vs-``x`` view.

    Args:
        df: Trials table.
        x: Cost column on the x axis (runtime_ms, peak_memory_mb, macs_g, params, ...).
        objectives: The run's objectives; the highlighted front is theirs.
        y: Quality column on the y axis.
        scale: The run's scale (selects the anchors' reference figures).
        input_hw: LR input size the run profiled at (MACs, activations, runtime, memory);
            published MACs are drawn only when it is the reference 256x256. None: not recorded
            (an old run with ``input_hw: auto``): the axis says so and nothing published is
            drawn against it.
        anchor_lookup: ``name -> Anchor`` (default ``search_space.anchors.get_anchor``).
    """
    directions = {x: pareto.direction_of(x), y: pareto.direction_of(y)}
    plotted = df[pareto.eligible_mask(df, directions)]
    on_front = pareto.pareto_mask(df, objectives).reindex(plotted.index, fill_value=False) \
        if set(objectives) <= set(df.columns) else pd.Series(False, plotted.index)
    is_anchor = _anchor_rows(plotted)
    front_name = "front (" + ", ".join(objectives) + ")"
    layers = [
        _layer(front_name, "front", plotted[on_front & ~is_anchor], x, y),
        _layer("dominated", "dominated", plotted[~on_front & ~is_anchor], x, y),
        _layer("anchors (this run's protocol)", "anchor", plotted[is_anchor], x, y),
    ]
    knee = pareto.knee_point(df, objectives) if set(objectives) <= set(df.columns) else None
    if knee in plotted.index:
        layers.append(_layer("knee", "knee", plotted.loc[[knee]], x, y))
    official = _official_layer(plotted[is_anchor], x, y)
    if official is not None:
        layers.append(official)
    published = None
    if x == COL.params or (input_hw is not None and tuple(input_hw) == REFERENCE_INPUT_HW):
        published = _published_layer(plotted[is_anchor], plotted[y], x, scale, anchor_lookup)
    if published is not None:
        layers.append(published)
    note = ""
    if x in (COL.runtime_ms, COL.runtime_iqr_ms, COL.peak_memory_mb):
        note = ("Published runtimes/memory of the anchors were measured on other hardware (GPUs); "
                "they are listed in the report, not drawn.")
    xs = pd.to_numeric(plotted[x], errors="coerce")
    log_x = bool(len(xs) and xs.min() > 0 and xs.max() / xs.min() > LOG_AXIS_RATIO)
    x_label = _label(x)
    if metrics.per_input(x):
        x_label += (f" (3x{input_hw[0]}x{input_hw[1]} input)" if input_hw is not None
                    else " (input size not recorded)")
    return ScatterInfo(
        x=x, y=y, x_label=x_label + (" (log scale)" if log_x else ""), y_label=_label(y),
        layers=layers, front_line=_front_line(plotted, x, y, directions),
        title=f"{_label(y)} vs {_label(x)}", note=note, log_x=log_x,
    )


def _official_layer(anchors: pd.DataFrame, x: str, y: str) -> PointLayer | None:
    if y != COL.psnr or COL.psnr_official not in anchors.columns:
        return None
    with_official = anchors[np.isfinite(pd.to_numeric(anchors[COL.psnr_official], errors="coerce")
                                        .astype(float))]
    if with_official.empty:
        return None
    return _layer("anchors, official weights (fully trained)", "official", with_official, x,
                  COL.psnr_official, visible=False)


def published_figure(anchor: Any, column: str, scale: int | None) -> tuple[float, str] | None:
    """An anchor's published or official-code value of ``column`` at ``scale``, with its source.

    Only parameters and MACs are comparable across machines; anything else gives None.
    """
    reference = getattr(anchor, "reference", None) or {}
    published = getattr(anchor, "published", None) or {}
    key = f"x{scale or 4}"
    if column == COL.params:
        params = reference.get("params") or {}
        if key in params:
            return float(params[key]), f"official code, {key}"
        if scale in (None, 4) and isinstance(published.get("params_k"), (int, float)):
            return float(published["params_k"]) * 1000, "paper (K, x4)"
    if column == COL.macs_g and scale in (None, 4):
        macs = reference.get("torch_macs_g_256")
        if isinstance(macs, (int, float)):
            return float(macs), "official code, x4, 3x256x256"
    return None


def _published_layer(anchors: pd.DataFrame, ys: pd.Series, x: str, scale: int | None,
                     lookup: Callable[[str], Any] | None) -> PointLayer | None:
    if x not in (COL.params, COL.macs_g) or anchors.empty:
        return None
    lookup = lookup or get_anchor
    ys = pd.to_numeric(ys, errors="coerce")
    low, high = float(ys.min()), float(ys.max())
    pad = max(high - low, 0.05) * 0.15
    layer = PointLayer("published / official-code size (x only)", "published", [], [])
    for name in sorted(set(anchors[COL.anchor].astype(str)) - {""}):
        try:
            figure = published_figure(lookup(name), x, scale)
        except Exception:  # noqa: BLE001  (an anchor renamed since the run: nothing to draw)
            figure = None
        if figure is None:
            continue
        value, source = figure
        text = f"{name}: {format_value(value)} ({source})"
        # a vertical segment spanning the data: x is comparable, y is not
        layer.x += [value, value, math.nan]
        layer.y += [low - pad, high + pad, math.nan]
        layer.hover += [text, text, ""]
        layer.labels += [name, "", ""]
    return layer if layer.x else None


# ---------------------------------------------------------------------------- figure
def plot_scatter(info: ScatterInfo):
    """plotly figure of a :class:`ScatterInfo`."""
    import plotly.graph_objects as go

    fig = go.Figure()
    xs, ys = info.front_line
    if xs:
        fig.add_trace(go.Scatter(
            x=xs, y=ys, mode="lines", name=f"2-D front ({info.x}, {info.y})",
            line=dict(color=_COLOURS["line"], dash="dot", width=1.5, shape="hv"),
            hoverinfo="skip"))
    for layer in info.layers:
        if layer.kind == "published":
            fig.add_trace(go.Scatter(
                x=layer.x, y=layer.y, mode="lines+text", name=layer.name,
                text=layer.labels, textposition="top right", hovertext=layer.hover,
                hoverinfo="text", line=dict(color=_COLOURS["published"], dash="dash", width=1.5),
                textfont=dict(size=10, color=_COLOURS["published"])))
            continue
        with_text = layer.kind in ("anchor", "official")
        fig.add_trace(go.Scatter(
            x=layer.x, y=layer.y, mode="markers+text" if with_text else "markers",
            name=layer.name, marker=_marker(layer), hovertext=layer.hover,
            hoverinfo="text", text=layer.labels if with_text else None,
            textposition=_alternating_positions(layer.x), error_y=_band(layer),
            visible=True if layer.visible else "legendonly"))
    fig.update_xaxes(title=info.x_label, type="log" if info.log_x else "linear")
    fig.update_yaxes(title=info.y_label)
    note = info.note
    if any(math.isfinite(v) for layer in info.layers for v in layer.sd):
        note = (note + " " if note else "") + ("Bars: +-1 sd of the predicted psnr; open "
                                               "markers: extrapolated beyond the predictor's "
                                               "references.")
    _layout(fig, info.title, note)
    return fig


def _marker(layer: PointLayer) -> dict[str, Any]:
    """The layer's marker, open (hollow) where the point's psnr is extrapolated."""
    marker = dict(_MARKERS[layer.kind])
    if any(layer.extrapolated) and not marker["symbol"].endswith("-open"):
        marker["symbol"] = [f"{marker['symbol']}-open" if e else marker["symbol"]
                            for e in layer.extrapolated]
    return marker


def _band(layer: PointLayer) -> dict[str, Any] | None:
    """+-1 sd error bars of a predicted psnr (None where no point has an sd)."""
    if not any(math.isfinite(v) for v in layer.sd):
        return None
    return dict(type="data", array=[v if math.isfinite(v) else 0.0 for v in layer.sd],
                visible=True, thickness=1, width=0, color="rgba(80,80,80,0.5)")
