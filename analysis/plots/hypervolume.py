"""Hypervolume history of a run: its value after each trial (``hypervolume_info``), and figure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd

from analysis import pareto
from analysis.metrics import COL
from analysis.plots._utils import _layout


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


# ---------------------------------------------------------------------------- figure
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
