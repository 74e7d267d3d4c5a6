"""Plots of a search run: PSNR against each cost, a 3-D view, hypervolume history, hyperparameters.

As in Optuna's visualisation package, each plot is split into a pure ``*_info()`` function that
decides what is drawn (tested) and a thin ``plot_*()`` that turns the info into a plotly figure.
plotly is imported only inside the builders.

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

import json
import math
import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analysis import metrics, pareto
from analysis.formatting import format_value, parse_json, spec_summary
from analysis.metrics import COL
from search_space.anchors import get_anchor
from search_space.io import first_line, write_atomic

__all__ = [
    "METRIC_LABELS",
    "COST_VIEWS",
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

# axis titles of the catalogue's columns (analysis.metrics), as of import; _label reads it live
METRIC_LABELS = {name: metrics.label(name) for name in metrics.columns()}
# (file stem, x column): the PSNR-vs-cost views written by the report.
COST_VIEWS = (("runtime", COL.runtime_ms), ("memory", COL.peak_memory_mb), ("macs", COL.macs_g),
              ("params", COL.params))
# the input size of the anchors' reference MACs (NTIRE protocol)
REFERENCE_INPUT_HW = (256, 256)
# a cost axis spanning more than this ratio is drawn on a log scale
LOG_AXIS_RATIO = 30.0

_COLOURS = {"front": "#d62728", "dominated": "#9aa5b1", "anchor": "#1f77b4",
            "official": "#2ca02c", "published": "#7f7f7f", "line": "#d62728"}


# ---------------------------------------------------------------------------- text
def hover_text(row: Mapping[str, Any]) -> str:
    """Hover label of one trial: id, anchor, spec summary, every metric, hyperparameters."""
    lines = [f"<b>trial {row.get(COL.trial_id, '?')}</b>"]
    if row.get(COL.anchor):
        lines[0] += f" (anchor {row[COL.anchor]})"
    lines.append(f"arch {row.get(COL.arch_id, '')}, status {row.get(COL.status, '')}")
    summary = spec_summary(row.get(COL.spec))
    if summary:
        lines.append(summary)
    for name in (*metrics.metrics(), COL.seed):
        value = row.get(name)
        if value is not None and not pd.isna(value):
            lines.append(f"{name}: {format_value(value)}")
    for name in sorted(k for k in row if str(k).startswith(("psnr_set", "ssim_set"))):
        if isinstance(row[name], (int, float)) and not math.isnan(row[name]):
            lines.append(f"{name}: {format_value(row[name])}")
    hparams = parse_json(row.get(COL.hparams))
    if isinstance(hparams, Mapping) and hparams:
        flat = ", ".join(f"{k}={format_value(v)}" for k, v in _flatten(hparams).items())
        lines.append(f"hparams: {flat[:160]}")
    return "<br>".join(lines)


def _flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(_flatten(value, f"{name}."))
        elif isinstance(value, (list, tuple)):
            out[name] = json.dumps(value)
        else:
            out[name] = value
    return out


def _label(column: str) -> str:
    return metrics.label(column)


# ---------------------------------------------------------------------------- 2-D views
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


def _rows(df: pd.DataFrame) -> list[dict[str, Any]]:
    return df.to_dict(orient="records")


def _anchor_rows(df: pd.DataFrame) -> pd.Series:
    if COL.is_anchor not in df.columns:
        return pd.Series(False, df.index)
    return df[COL.is_anchor].astype(bool)


def _layer(name: str, kind: str, df: pd.DataFrame, x: str, y: str, **kwargs) -> PointLayer:
    rows = _rows(df)
    return PointLayer(
        name=name, kind=kind,
        x=[float(r[x]) for r in rows], y=[float(r[y]) for r in rows],
        hover=[hover_text(r) for r in rows],
        labels=[str(r.get(COL.anchor) or "") for r in rows],
        trial_ids=[str(r.get(COL.trial_id, "")) for r in rows], **kwargs,
    )


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


# ---------------------------------------------------------------------------- 3-D view
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


# ---------------------------------------------------------------------------- hypervolume
@dataclass
class HypervolumeInfo:
    steps: list[int]
    trial_ids: list[str]
    values: list[float]
    objectives: dict[str, str]
    reference_note: str


def hypervolume_info(df: pd.DataFrame, objectives: Mapping[str, str]) -> HypervolumeInfo:
    """Hypervolume after each trial (trial-number order); see ``analysis.pareto``."""
    history = pareto.hypervolume_history(df, objectives)
    return HypervolumeInfo(
        steps=[int(s) for s in history["step"]],
        trial_ids=[str(t) for t in history[COL.trial_id]],
        values=[float(v) for v in history["hypervolume"]],
        objectives=dict(objectives),
        reference_note=(f"objectives min-max normalised over the completed trials; reference "
                        f"point = worst observed + {pareto.HV_MARGIN:.0%} of the range; "
                        f"maximum {(1 + pareto.HV_MARGIN) ** len(objectives):.3g}"),
    )


# ---------------------------------------------------------------------------- parallel coords
@dataclass
class ParallelDimension:
    label: str
    values: list[float]
    tickvals: list[float] | None = None
    ticktext: list[str] | None = None


@dataclass
class ParallelInfo:
    dimensions: list[ParallelDimension]
    color: list[float]
    color_label: str
    trial_ids: list[str]


def _spec_features(spec: Any) -> dict[str, Any]:
    data = parse_json(spec)
    if not isinstance(data, Mapping):
        return {}
    body = [{"block": s} if isinstance(s, str) else s for s in data.get("body") or []]
    blocks = [str(s.get("block")) for s in body for _ in range(int(s.get("repeat", 1) or 1))]
    conv = data.get("conv")
    return {"channels": data.get("channels"), "blocks": len(blocks),
            "block types": "+".join(sorted(set(blocks))),
            "fusion": data.get("fusion"), "global residual": data.get("global_residual"),
            "last conv": data.get("last_conv"),
            "activation": data.get("activation") or "default",
            "conv unit": (conv.get("type") if isinstance(conv, Mapping) else conv) or "plain",
            "upsampler": data.get("upsampler"), "input skip": data.get("input_skip")}


def _trial_features(row: Mapping[str, Any]) -> dict[str, Any]:
    """Spec features, then training hyperparameters (``hparams.<key>`` where names clash)."""
    features = _spec_features(row.get(COL.spec))
    for key, value in _flatten(parse_json(row.get(COL.hparams)) or {}).items():
        features[f"hparams.{key}" if key in features else key] = value
    return features


def parallel_info(df: pd.DataFrame, *, color: str = COL.psnr,
                  max_dimensions: int = 14) -> ParallelInfo:
    """Hyperparameters (the ``hparams`` JSON, flattened) and spec features of searched trials.

    Completed, non-anchor trials only (anchors were not sampled). Dimensions that never vary
    are dropped (they carry no information); text values, and numbers with gaps, become integer
    codes with their names as ticks. The last dimension is ``color`` itself.
    """
    done = df[(df[COL.status].astype(str) == pareto.ELIGIBLE_STATUS) & ~_anchor_rows(df)
              & np.isfinite(pd.to_numeric(df[color], errors="coerce").astype(float))]
    table = pd.DataFrame([_trial_features(r) for r in _rows(done)], index=done.index)
    dimensions = []
    for column in table.columns:
        values = table[column]
        if values.astype(str).nunique(dropna=False) < 2:
            continue
        dimensions.append(_dimension(column, values))
    dimensions = dimensions[: max_dimensions - 1]
    colours = [float(v) for v in pd.to_numeric(done[color], errors="coerce")]
    dimensions.append(ParallelDimension(_label(color), colours))
    return ParallelInfo(dimensions=dimensions, color=colours, color_label=_label(color),
                        trial_ids=[str(t) for t in done.get(COL.trial_id, done.index)])


def _category_key(name: str) -> tuple:
    # numbers in numeric order, then text; missing values ("-") first
    if name == "-":
        return (0, 0.0, "")
    try:
        return (1, float(name.replace(",", "")), "")
    except ValueError:
        return (2, 0.0, name)


def _dimension(label: str, values: pd.Series) -> ParallelDimension:
    numbers = pd.to_numeric(values, errors="coerce")
    is_bool = values.map(lambda v: isinstance(v, (bool, np.bool_))).any()
    if numbers.notna().all() and not is_bool:
        return ParallelDimension(label, [float(v) for v in numbers])
    names = sorted({format_value(v) for v in values}, key=_category_key)
    codes = {name: float(i) for i, name in enumerate(names)}
    return ParallelDimension(label, [codes[format_value(v)] for v in values],
                             tickvals=list(codes.values()), ticktext=names)


# ---------------------------------------------------------------------------- figures
_MARKERS = {
    "front": dict(symbol="circle", size=11, color=_COLOURS["front"],
                  line=dict(width=1, color="#222")),
    "dominated": dict(symbol="circle", size=8, color=_COLOURS["dominated"], opacity=0.75),
    "anchor": dict(symbol="diamond", size=12, color=_COLOURS["anchor"],
                   line=dict(width=1, color="#222")),
    "official": dict(symbol="star-open", size=13, color=_COLOURS["official"],
                     line=dict(width=2)),
    "knee": dict(symbol="circle-open", size=22, color="#ff7f0e", line=dict(width=3)),
}


def _layout(fig, title: str, note: str = "") -> None:
    full = title if not note else f"{title}<br><sup>{note}</sup>"
    fig.update_layout(template="plotly_white", title=dict(text=full, x=0.01),
                      legend=dict(orientation="h", yanchor="top", y=-0.14, x=0),
                      margin=dict(l=70, r=30, t=80, b=90), hoverlabel=dict(align="left"),
                      width=1000, height=640)


def _alternating_positions(xs) -> list[str]:
    """Labels above and below in turn along x, so neighbouring anchors' names do not overlap."""
    order = sorted(range(len(xs)), key=lambda i: xs[i])
    positions = [""] * len(xs)
    for rank, i in enumerate(order):
        positions[i] = "bottom center" if rank % 2 else "top center"
    return positions


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
            name=layer.name, marker=_MARKERS[layer.kind], hovertext=layer.hover,
            hoverinfo="text", text=layer.labels if with_text else None,
            textposition=_alternating_positions(layer.x),
            visible=True if layer.visible else "legendonly"))
    fig.update_xaxes(title=info.x_label, type="log" if info.log_x else "linear")
    fig.update_yaxes(title=info.y_label)
    _layout(fig, info.title, info.note)
    return fig


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


def plot_hypervolume(info: HypervolumeInfo):
    import plotly.graph_objects as go

    fig = go.Figure(go.Scatter(
        x=info.steps, y=info.values, mode="lines+markers", line=dict(shape="hv"),
        name="hypervolume",
        hovertext=[f"after trial {t} (#{s}): {v:.4f}" for s, t, v in
                   zip(info.steps, info.trial_ids, info.values, strict=True)], hoverinfo="text"))
    fig.update_xaxes(title="trials (in trial-number order)")
    fig.update_yaxes(title="hypervolume (normalised)")
    _layout(fig, "Hypervolume of " + ", ".join(f"{k} ({v[:3]})" for k, v in
                                                 info.objectives.items()), info.reference_note)
    return fig


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


def plot_parallel(info: ParallelInfo):
    import plotly.graph_objects as go

    dimensions = []
    for d in info.dimensions:
        entry: dict[str, Any] = dict(label=d.label, values=d.values)
        if d.tickvals is not None:
            entry.update(tickvals=d.tickvals, ticktext=d.ticktext)
        dimensions.append(entry)
    fig = go.Figure(go.Parcoords(
        line=dict(color=info.color, colorscale="Viridis", showscale=True,
                  colorbar=dict(title=info.color_label)),
        dimensions=dimensions, labelangle=-25, labelside="top",
        labelfont=dict(size=11), tickfont=dict(size=10)))
    _layout(fig, "Hyperparameters and architecture of completed trials")
    fig.update_layout(margin=dict(l=80, r=80, t=110, b=40))
    return fig


# ---------------------------------------------------------------------------- writing
def write_figures(figures: Mapping[Path, Any], *, png: bool = True) -> list[str]:
    """Write every figure to its ``.html`` path, and beside it a ``.png`` where a browser exists.

    Each HTML file inlines plotly.js (about 4.6 MB), so that one file copied or mailed on its
    own still renders, offline. PNGs are rendered by kaleido in a
    locally installed Chrome/Chromium; kaleido is never allowed to download one. Returns
    warnings (one line each), e.g. when no browser is found; the HTML is written regardless.
    """
    for html, fig in figures.items():
        Path(html).parent.mkdir(parents=True, exist_ok=True)
        write_atomic(html, fig.to_html(include_plotlyjs=True, full_html=True))
    if not png:
        return []
    return export_png({Path(html).with_suffix(".png"): fig for html, fig in figures.items()})


def export_png(figures: Mapping[Path, Any]) -> list[str]:
    """Render figures to PNG files with kaleido; warnings (one line each) instead of errors."""
    try:
        import kaleido
        from kaleido.errors import ChromeNotFoundError
    except ImportError:
        return ["PNG export skipped: kaleido is not installed (pip install 'kaleido>=1')"]
    specs, temporary = [], {}
    for path, fig in figures.items():
        tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.png")
        temporary[tmp] = path
        specs.append(dict(fig=fig.to_dict(), path=tmp,
                          opts=dict(format="png", width=fig.layout.width or 1000,
                                    height=fig.layout.height or 640, scale=1)))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # mathjax=False: kaleido would otherwise load MathJax from a CDN
            kaleido.write_fig_from_object_sync(specs, kopts=dict(mathjax=False))
    except ChromeNotFoundError:
        problem = ("PNG export skipped: no Chrome/Chromium found (Debian: apt-get install -y "
                   "chromium; or set BROWSER_PATH); the HTML plots were written")
    except Exception as e:  # noqa: BLE001  (a browser crash must not lose the report)
        problem = (f"PNG export failed ({type(e).__name__}: {first_line(e)}); the HTML plots "
                   "were written")
    else:
        problem = None
    for tmp, path in temporary.items():
        if problem is None and tmp.exists():
            os.replace(tmp, path)
        else:
            tmp.unlink(missing_ok=True)
    return [problem] if problem else []


