"""Parallel coordinates: hyperparameters and spec features of the searched trials
(``parallel_info``), and figure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from analysis import pareto
from analysis.formatting import format_value, parse_json
from analysis.metrics import COL
from analysis.plots._utils import _anchor_rows, _flatten, _label, _layout, _rows


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


# ---------------------------------------------------------------------------- figure
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
