"""The pieces the plots share: axis labels, the cost views, colours and markers, hover text, the
row helpers and the common layout. No figure module is imported here."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import pandas as pd

from analysis import metrics
from analysis.formatting import format_value, parse_json, spec_summary
from analysis.metrics import COL

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


# ---------------------------------------------------------------------------- rows
def _rows(df: pd.DataFrame) -> list[dict[str, Any]]:
    return df.to_dict(orient="records")


def _anchor_rows(df: pd.DataFrame) -> pd.Series:
    if COL.is_anchor not in df.columns:
        return pd.Series(False, df.index)
    return df[COL.is_anchor].astype(bool)


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
