"""Which trial to export, and its spec read safely.

``select_trial`` picks a row of the trials table (a named pick, a trial id, an arch id or an
anchor); ``trial_dir`` and ``trial_spec`` find the trial's folder and spec inside the run, and
refuse a spec that does not match trials.csv or is above the size limits before anything is
built.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from analysis import pareto
from analysis.metrics import COL, is_flag_set
from analysis.run import Run
from analysis.rundir import TrialDir
from search_space.errors import InputError, did_you_mean
from search_space.io import shown
from search_space.limits import check_resources
from search_space.spec import ArchSpec

__all__ = ["PICKS", "select_trial", "trial_dir", "trial_spec"]

# named picks -> (column, direction) they optimise; "knee" uses the run's objectives
PICKS = {"knee": None, "max-psnr": (COL.psnr, "maximize"), "fastest": (COL.runtime_ms, "minimize"),
         "smallest-memory": (COL.peak_memory_mb, "minimize")}


# the named picks that rank by the predicted psnr, and so skip extrapolated trials by default
PSNR_PICKS = ("knee", "max-psnr")


# ---------------------------------------------------------------------------- picking
def _not_extrapolated(candidates: pd.DataFrame, pick: str) -> pd.DataFrame:
    """The candidates whose psnr is not extrapolated (an error when that leaves none)."""
    if COL.extrapolated not in candidates.columns:
        return candidates
    kept = candidates[~candidates[COL.extrapolated].map(is_flag_set)]
    if kept.empty and not candidates.empty:
        raise InputError(f"--pick {pick}: every candidate trial's psnr is extrapolated beyond "
                         "the predictor's references; pass --allow-extrapolated to pick among "
                         "them anyway")
    return kept


def _range_text(df: pd.DataFrame, where: str) -> str:
    parts = []
    for column in pareto.where_columns(where):
        if column in df.columns:
            values = pd.to_numeric(df[column], errors="coerce").dropna()
            if not values.empty:
                parts.append(f"{column} ranges {values.min():.4g}..{values.max():.4g}")
    return "; ".join(parts)


def select_trial(
    df: pd.DataFrame,
    pick: str,
    objectives: Mapping[str, str],
    *,
    where: str | None = None,
    extrapolated: bool = False,
) -> tuple[Any, str]:
    """Index label of the picked row, and a one-line description of why it was picked.

    Args:
        df: Trials table.
        pick: ``knee``, ``max-psnr``, ``fastest``, ``smallest-memory``, a trial id, an arch_id
            or an anchor name (then its best completed trial).
        objectives: Objectives of the knee's front.
        where: Conditions the trial must satisfy (``analysis.pareto.filter_where``).
        extrapolated: Let ``knee`` and ``max-psnr`` pick a trial whose ``psnr`` is predicted
            beyond the predictor's references (by default they skip it: its figure is the
            least trustworthy of the front).
    """
    completed = df[df[COL.status] == pareto.ELIGIBLE_STATUS]
    candidates = pareto.filter_where(completed, where) if where else completed
    if where and candidates.empty:
        ranges = _range_text(completed, where)
        raise InputError(f"--where {where!r}: no completed trial satisfies it ("
                         f"{len(completed)} completed{'; ' + ranges if ranges else ''})")
    if not pick.strip():
        raise InputError(f"--pick: expected one of {', '.join(PICKS)}, a trial id, an arch id or "
                         "an anchor, got an empty value")
    if pick in PICKS:
        if pick in PSNR_PICKS and not extrapolated:
            candidates = _not_extrapolated(candidates, pick)
        return _select_named(candidates, pick, objectives, where)
    return _select_by_id(df, candidates, pick, where)


def _select_named(candidates: pd.DataFrame, pick: str, objectives: Mapping[str, str],
                  where: str | None) -> tuple[Any, str]:
    scope = f" among trials with {where}" if where else ""
    if pick == "knee":
        label = pareto.knee_point(candidates, objectives)
        if label is None:
            raise InputError(f"--pick knee: no completed trial{scope} has values for all of "
                             f"{', '.join(objectives)}")
        return label, f"knee of the front of {', '.join(objectives)}{scope}"
    column, direction = PICKS[pick]
    values = pd.to_numeric(candidates.get(column), errors="coerce")
    rows = candidates[values.notna()]
    if rows.empty:
        raise InputError(f"--pick {pick}: no completed trial{scope} has a {column} value")
    psnr = pd.to_numeric(rows.get(COL.psnr, pd.Series(np.nan, rows.index)), errors="coerce")
    runtime = pd.to_numeric(rows.get(COL.runtime_ms, pd.Series(np.nan, rows.index)),
                            errors="coerce")
    order = pd.DataFrame({
        "key": values[rows.index] * (-1 if direction == "maximize" else 1),
        # ties: better PSNR, then faster
        "psnr": -psnr.fillna(-np.inf), "runtime": runtime.fillna(np.inf),
    }).sort_values(["key", "psnr", "runtime"], kind="stable")
    return order.index[0], f"{pick} ({column} {direction[:3]}){scope}"


def _select_by_id(df: pd.DataFrame, candidates: pd.DataFrame, pick: str,
                  where: str | None) -> tuple[Any, str]:
    matches = df[df[COL.trial_id] == pick]
    for column in (COL.arch_id, COL.anchor):  # the same architecture may have run more than once
        if matches.empty and column in df.columns:
            matches = df[(df[column] == pick) & (df[COL.status] == pareto.ELIGIBLE_STATUS)]
            matches = matches.sort_values(COL.psnr, ascending=False) if COL.psnr in df else matches
    if matches.empty:
        names = list(df[COL.trial_id]) + [a for a in df.get(COL.anchor, []) if a] + list(PICKS)
        raise InputError(f"--pick: {pick!r} is neither one of {', '.join(PICKS)} nor a trial "
                         f"id, arch id or anchor of this run{did_you_mean(pick, names)}")
    label = matches.index[0]
    row = df.loc[label]
    if row[COL.status] != pareto.ELIGIBLE_STATUS:
        reason = f" ({row[COL.reason]})" if row.get(COL.reason) else ""
        raise InputError(f"--pick {pick}: trial is {row[COL.status]}{reason}; only completed "
                         "trials can be exported")
    if where and label not in candidates.index:
        raise InputError(f"--pick {pick}: trial does not satisfy --where {where!r}")
    return label, f"trial {row[COL.trial_id]}"


# ---------------------------------------------------------------------------- the trial's files
def trial_dir(run: Run, row: Mapping[str, Any]) -> TrialDir:
    folder = run.layout.trial(str(row[COL.trial_id]))
    run.layout.contained(folder.path, f"trial folder of {row[COL.trial_id]}")
    return folder


def trial_spec(run: Run, row: Mapping[str, Any]) -> ArchSpec:
    """The trial's ArchSpec: ``trials/<id>/spec.yaml``, else the ``spec`` JSON of trials.csv;
    refused above the size limits (``search_space.limits``) before anything is built."""
    path = trial_dir(run, row).spec_yaml
    if os.path.lexists(path):
        spec = ArchSpec.from_file(run.layout.contained(path, "spec file"))
    elif row.get(COL.spec):
        spec = ArchSpec.from_yaml(str(row[COL.spec]),
                                  source=f"trials.csv spec of {row[COL.trial_id]}")
    else:
        raise InputError(f"trial {row[COL.trial_id]}: no spec (neither {path} nor a spec column)")
    if row.get(COL.arch_id) and spec.arch_id() != row[COL.arch_id]:
        raise InputError(f"trial {row[COL.trial_id]}: its spec has arch_id {spec.arch_id()}, but "
                         f"trials.csv says {row[COL.arch_id]}")
    check_resources(spec, what=shown(path) if os.path.lexists(path) else
                    f"trials.csv spec of {row[COL.trial_id]}")
    return spec
