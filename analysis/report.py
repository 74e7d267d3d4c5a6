"""The report of a search run (read through :mod:`analysis.run`): summarise it, write
``report.html``.

``report.html`` is self-contained (plotly.js inlined once) and shows the run's protocol, trial
counts by status, the Pareto front as a table (knee marked), the plots, the anchors against
their published figures, and how far the proxy can be trusted (Kendall tau between the anchors'
proxy PSNR and their official-weight PSNR, where ``trials.csv`` has ``psnr_official``). Works on
a run in progress: running, failed, infeasible and pruned rows are counted, never in a front.
"""

from __future__ import annotations

import datetime as _dt
import html
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from analysis import formatting, pareto, plots
from analysis.metrics import COL, is_flag_set
from analysis.run import Run, check_objectives, protocol, status_counts
from analysis.rundir import STATUS, RunDir
from search_space.anchors import get_anchor
from search_space.errors import InputError
from search_space.io import write_atomic

__all__ = ["ReportResult", "proxy_trust", "front_records", "build_figures", "write_report"]

# below three anchors a rank correlation is always +-1 and says nothing
MIN_TRUST_ANCHORS = 3


# ---------------------------------------------------------------------------- summaries
def proxy_trust(df: pd.DataFrame) -> dict[str, Any] | None:
    """Kendall tau-b between the anchors' raw proxy PSNR (``psnr_proxy``; ``psnr`` in runs made
    before calibration existed) and ``psnr_official``; None if n < 3."""
    if COL.psnr_official not in df.columns:
        return None
    anchors = df[df[COL.is_anchor] & (df[COL.status] == pareto.ELIGIBLE_STATUS)]
    column = COL.psnr_proxy if COL.psnr_proxy in df.columns else COL.psnr
    proxy = pd.to_numeric(anchors[column], errors="coerce")
    official = pd.to_numeric(anchors[COL.psnr_official], errors="coerce")
    ok = proxy.notna() & official.notna()
    if ok.sum() < MIN_TRUST_ANCHORS:
        return None
    from analysis.fidelity import kendall_tau

    return {
        "n": int(ok.sum()),
        "tau": kendall_tau(proxy[ok], official[ok]),
        "anchors": [str(a) for a in anchors.loc[ok, COL.anchor]],
    }


def front_records(front: pd.DataFrame, objectives: Mapping[str, str],
                  knee: object | None = None) -> list[dict[str, Any]]:
    """JSON-ready rows of the front: trial_id, is_anchor, anchor, arch_id, knee, objectives."""
    records = []
    for label, row in front.iterrows():
        record = {COL.trial_id: row[COL.trial_id], COL.is_anchor: bool(row[COL.is_anchor]),
                  COL.anchor: row.get(COL.anchor) or None, COL.arch_id: row.get(COL.arch_id, ""),
                  "knee": bool(label == knee)}
        for name in objectives:
            record[name] = _plain_number(row[name])
        records.append(record)
    return records


def _plain_number(value: Any) -> Any:
    value = float(value)
    return int(value) if value.is_integer() and abs(value) < 2**53 else value


# ---------------------------------------------------------------------------- figures
def _has_values(df: pd.DataFrame, column: str) -> bool:
    return column in df.columns and pd.to_numeric(df[column], errors="coerce").notna().any()


def build_figures(run: Run, objectives: Mapping[str, str]) -> dict[str, Any]:
    """``{"pareto_<view>": figure}`` for every view the table has data for."""
    df, figures = run.trials, {}
    quality = next((k for k, v in objectives.items() if pareto.is_max(v)), COL.psnr)
    for stem, x in plots.COST_VIEWS:
        if _has_values(df, x) and _has_values(df, quality):
            info = plots.scatter_info(df, x, objectives, y=quality, scale=run.scale,
                                      input_hw=run.input_hw)
            figures[f"pareto_{stem}"] = plots.plot_scatter(info)
    axes = (tuple(objectives) if len(objectives) == 3
            else (COL.runtime_ms, COL.peak_memory_mb, quality))
    if all(_has_values(df, a) for a in axes):
        figures["pareto_3d"] = plots.plot_scatter3d(plots.scatter3d_info(df, objectives, axes))
    if len(objectives) >= 2:
        figures["pareto_hypervolume"] = plots.plot_hypervolume(
            plots.hypervolume_info(df, objectives))
    if _has_values(df, quality):
        info = plots.parallel_info(df, color=quality)
        if len(info.dimensions) > 1 and len(info.color) > 1:
            figures["pareto_parallel"] = plots.plot_parallel(info)
    curves = _learning_curves(run)
    if curves:
        figures["learning_curves"] = plots.plot_learning_curves(curves)
    return figures


def _learning_curves(run: Run) -> dict[str, list[tuple[int, float]]]:
    """Completed trials' validation curves, labelled by trial id (and anchor)."""
    rundir = RunDir(run.path)
    done = run.trials[run.trials[COL.status] == pareto.ELIGIBLE_STATUS]
    curves = {}
    for _, row in done.iterrows():
        label = str(row[COL.trial_id]) + (f" ({row[COL.anchor]})" if row.get(COL.anchor) else "")
        curve = rundir.validation_curve(str(row[COL.trial_id]))
        if len(curve) >= 2:
            curves[label] = curve
    return curves


# ---------------------------------------------------------------------------- report
@dataclass
class ReportResult:
    front: pd.DataFrame
    objectives: dict[str, str]
    knee: object | None
    hypervolume: float | None
    files: list[Path]
    warnings: list[str]


def write_report(run: Run, objectives: Mapping[str, str], *, png: bool = True) -> ReportResult:
    """Write ``report.html`` and ``pareto_*.html/png`` into the run directory."""
    check_objectives(run, objectives)
    df = run.trials
    front = pareto.pareto_front(df, objectives)
    knee = pareto.knee_point(df, objectives)
    hv = pareto.hypervolume(df, objectives) if len(objectives) >= 2 else None
    figures = build_figures(run, objectives)
    pages = {run.layout.figure_file(name, "html"): fig for name, fig in figures.items()}
    notes = plots.write_figures(pages, png=png)
    page = _render(run, objectives, front, knee, hv, figures, notes)
    report = run.layout.report_html
    write_atomic(report, page)
    pngs = [p for p in (run.layout.figure_file(name, "png") for name in figures)
            if png and p.exists()]
    files = [report, *pages, *pngs]
    return ReportResult(front=front, objectives=dict(objectives), knee=knee, hypervolume=hv,
                        files=files, warnings=notes)


_CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:24px auto;
max-width:1200px;color:#1d2330;padding:0 16px}
h1{font-size:1.6em;margin-bottom:4px} h2{margin-top:32px;border-bottom:1px solid #dde;
padding-bottom:4px;font-size:1.25em} .muted{color:#667} table{border-collapse:collapse;
font-size:0.88em;margin:8px 0} th,td{border:1px solid #d9dde6;padding:4px 8px;text-align:left;
vertical-align:top} th{background:#f2f4f8} td.num{text-align:right;font-variant-numeric:
tabular-nums} tr.knee td{background:#fff4d6} tr.anchor td:first-child{border-left:4px solid
#1f77b4} .counts span{display:inline-block;margin-right:18px} .counts b{font-size:1.2em}
.note{background:#f6f8fb;border-left:4px solid #9aa5b1;padding:6px 10px;margin:8px 0}
pre{background:#f6f8fb;padding:10px;overflow:auto;font-size:0.85em} .plot{margin:16px 0}
code{background:#f2f4f8;padding:1px 4px;border-radius:3px}
"""


def _esc(value: Any) -> str:
    return html.escape(str(value))


def _cell(value: Any) -> str:
    if isinstance(value, (float, np.floating)) and math.isnan(value):
        return '<td class="num">-</td>'
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        return f'<td class="num">{_esc(formatting.format_value(value))}</td>'
    return f"<td>{_esc(value)}</td>"


def _table(header: list[str], rows: list[list[Any]], classes: list[str] | None = None) -> str:
    head = "".join(f"<th>{_esc(h)}</th>" for h in header)
    body = []
    for i, row in enumerate(rows):
        css = f' class="{classes[i]}"' if classes and classes[i] else ""
        body.append(f"<tr{css}>" + "".join(_cell(v) for v in row) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def _protocol(run: Run, objectives: Mapping[str, str]) -> str:
    items = dict(protocol(run))
    items["objectives"] = ", ".join(f"{k} ({v})" for k, v in objectives.items())
    rows = [[k, "-" if v in (None, "") else v] for k, v in items.items()]
    table = _table(["", "value"], rows)
    if run.search:
        dump = yaml.safe_dump(run.search, sort_keys=False)
        table += f"<details><summary>search.yaml</summary><pre>{_esc(dump)}</pre></details>"
    else:
        table += '<p class="muted">No search.yaml in the run directory.</p>'
    return table


def _front_table(front: pd.DataFrame, objectives: Mapping[str, str], knee: object) -> str:
    extra = [c for c in (COL.params, COL.macs_g, COL.peak_memory_mb, COL.runtime_ms, COL.psnr,
                         COL.ssim, COL.ntire_score)
             if c in front.columns and c not in objectives]
    header = ["trial", COL.anchor, COL.arch_id] + list(objectives) + extra + ["architecture"]
    rows, classes = [], []
    for label, row in front.iterrows():
        rows.append([row[COL.trial_id] + (" (knee)" if label == knee else ""), row[COL.anchor],
                     row.get(COL.arch_id, "")] + [_value(row, c) for c in objectives]
                    + [_value(row, c) for c in extra]
                    + [formatting.spec_summary(row.get(COL.spec))])
        classes.append("knee" if label == knee else ("anchor" if row[COL.is_anchor] else ""))
    note = ""
    if COL.psnr_sd in front.columns and front[COL.psnr_sd].notna().any():
        note = ('<p class="muted">psnr: the prediction +- its sd (leave-one-out residuals and '
                "the averaged models' spread); <i>extrapolated</i>: a feature lies outside the "
                "references the predictor was fitted on, so the figure is the least trustworthy "
                "(<code>nas export --pick knee</code> skips such trials unless "
                "<code>--allow-extrapolated</code>).</p>")
    return _table(header, rows, classes) + note


def _value(row: pd.Series, column: str) -> Any:
    """A front-table cell: psnr with its sd and extrapolation flag, anything else as is."""
    value = row[column]
    if column != COL.psnr or pd.isna(value):
        return value
    sd = row.get(COL.psnr_sd)
    text = f"{value:.3f}" + ("" if sd is None or pd.isna(sd) else f" +- {sd:.2f}")
    return text + (" (extrapolated)" if is_flag_set(row.get(COL.extrapolated)) else "")


def _published(name: str) -> dict[str, Any]:
    try:
        published = get_anchor(name).published or {}
    except InputError:
        return {}
    ntire = next((v for k, v in published.items() if k.startswith("ntire")
                  and isinstance(v, Mapping)), {})
    return {"params_k": published.get("params_k"), "runtime_ms": ntire.get("runtime_ms"),
            "memory_mb": ntire.get("memory_mb"), "hardware": ntire.get("hardware", "")}


def _anchor_section(df: pd.DataFrame) -> str:
    anchors = df[df[COL.is_anchor]]
    if anchors.empty:
        return '<p class="muted">No anchors in this run.</p>'
    rows = []
    for _, row in anchors.iterrows():
        pub = _published(row[COL.anchor])
        rows.append([row[COL.anchor], row[COL.trial_id], row[COL.status],
                     row.get(COL.psnr, math.nan), row.get(COL.psnr_proxy, math.nan),
                     row.get(COL.psnr_official, math.nan),
                     row.get(COL.runtime_ms, math.nan), row.get(COL.peak_memory_mb, math.nan),
                     row.get(COL.params, math.nan), row.get(COL.ntire_score, math.nan),
                     pub.get("params_k") or "-", pub.get("runtime_ms") or "-",
                     pub.get("memory_mb") or "-", pub.get("hardware") or "-"])
    header = [COL.anchor, "trial", COL.status, "psnr (objective)", "proxy PSNR",
              "official-weight PSNR",
              "runtime ms (this run)", "peak MiB (this run)", COL.params, "NTIRE score",
              "paper params K (x4)",
              "paper runtime ms", "paper memory MB", "paper hardware"]
    return (_table(header, rows) + '<p class="muted">Paper runtimes and memory were measured on '
            "the hardware named (GPUs, CUDA peak allocation); they are not comparable with this "
            "run's measurements and are not drawn in the plots.</p>")


def _trust_section(run: Run) -> str:
    return _calibration_section(run.calibration) + _anchor_trust(run.trials)


def _calibration_section(calibration: Mapping[str, Any]) -> str:
    """What ``psnr`` is, and the fidelity of the predictor behind it (``nas fidelity``)."""
    if not calibration.get("calibrated"):
        why = calibration.get("predictor") or "no calibration record in this run"
        return (f'<p class="note">The objective <code>psnr</code> is the raw proxy PSNR '
                f"({_esc(why)}). Short proxies favour small, fast-converging networks; "
                "the front's PSNR axis may invert the capacity ranking.</p>")
    scale = ((calibration.get("fidelity") or {}).get("scale")
             or ((calibration.get("model") or {}).get("meta") or {}).get("scale"))
    text = (f"<p>The objective <code>psnr</code> is a <b>prediction of converged Set5"
            f"{f' x{scale}' if scale else ''} "
            f"PSNR-Y</b> ({_esc(calibration['predictor'])}) from what the proxy observed; the "
            "raw figure is <code>psnr_proxy</code>.</p>")
    fid = calibration.get("fidelity")
    if not fid:
        return text
    rows = []
    for name, s in fid["scores"].items():
        rows.append([name] + ["-" if s[k] is None else
                              f"{s[k]:+.3f} [{s[k + '_ci'][0]:+.2f}, {s[k + '_ci'][1]:+.2f}]"
                              for k in ("kendall_tau", "spearman", "pairwise_accuracy")])
    text += (f"<p>Fidelity of this proxy over {fid['n']} reference networks with known converged "
             f"PSNR ({fid['pairs']} pairs at least {fid['min_gap_db']:.2f} dB apart; predictor "
             "figures leave-one-out; 90% bootstrap intervals):</p>"
             + _table(["score", "Kendall tau", "Spearman", "pairwise accuracy"], rows))
    if not fid.get("predictor_beats_baselines"):
        text += ('<p class="note">The predictor does not beat every training-free baseline: '
                 "this front's PSNR axis is no better than ranking by size.</p>")
    return text


def _anchor_trust(df: pd.DataFrame) -> str:
    trust = proxy_trust(df)
    if trust is None:
        return (f'<p class="muted">Anchors: fewer than {MIN_TRUST_ANCHORS} completed '
                "anchors with an official-weight PSNR (<code>psnr_official</code>) in "
                "trials.csv.</p>")
    return (f"<p>Kendall tau between the anchors' raw proxy PSNR and their official-weight PSNR "
            f"in this run: <b>{trust['tau']:.2f}</b> (n = {trust['n']}: "
            f"{_esc(', '.join(trust['anchors']))}). The anchors' converged PSNRs lie close "
            "together, so with few of them this figure is mostly noise; the reference-set "
            "figures above are the ones to read.</p>")


def _problems_section(df: pd.DataFrame, limit: int = 50) -> str:
    bad = df[df[COL.status].isin((STATUS.failed, STATUS.infeasible, STATUS.pruned))]
    if bad.empty:
        return '<p class="muted">No failed, infeasible or pruned trials.</p>'
    rows = [[r[COL.trial_id], r[COL.status], r.get(COL.reason, "")]
            for _, r in bad.head(limit).iterrows()]
    more = f'<p class="muted">... and {len(bad) - limit} more.</p>' if len(bad) > limit else ""
    return _table(["trial", COL.status, COL.reason], rows) + more


def _render(run: Run, objectives: Mapping[str, str], front: pd.DataFrame, knee: object,
            hv: float | None, figures: Mapping[str, Any], notes: list[str]) -> str:
    from plotly.offline import get_plotlyjs

    df = run.trials
    counts = status_counts(df)
    count_html = "".join(f"<span>{_esc(k)} <b>{v}</b></span>" for k, v in counts.items())
    n_anchors = int(df[COL.is_anchor].sum())
    hv_text = ("-" if hv is None else f"{hv:.4f} (objectives min-max normalised over the "
               f"completed trials; reference point = worst observed + "
               f"{pareto.HV_MARGIN:.0%} of the range; maximum "
               f"{(1 + pareto.HV_MARGIN) ** len(objectives):.3g})")
    knee_text = "-" if knee is None else _esc(df.loc[knee, COL.trial_id])
    plot_html = "".join(
        f'<div class="plot">{fig.to_html(include_plotlyjs=False, full_html=False)}</div>'
        for fig in figures.values())
    warn_html = "".join(f'<p class="note">{_esc(n)}</p>' for n in notes)
    generated = _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>esrnas run {_esc(run.name)}</title>
<style>{_CSS}</style><script type="text/javascript">{get_plotlyjs()}</script></head><body>
<h1>esrnas run <code>{_esc(run.name)}</code></h1>
<p class="muted">{_esc(run.path.resolve())} &middot; report generated {_esc(generated)}</p>
{warn_html}
<h2>Protocol</h2>{_protocol(run, objectives)}
<h2>Trials</h2><p class="counts">{count_html}</p>
<p class="muted">{len(df)} trials in trials.csv, {n_anchors} of them anchors (paper models measured
under this run's protocol). Only completed trials with every objective compete for the front;
running, failed, infeasible and pruned trials are counted here and listed below.</p>
<h2>Pareto front ({len(front)} trials)</h2>
<p>Objectives: {_esc(', '.join(f'{k} ({v})' for k, v in objectives.items()))}.
Knee: <b>{knee_text}</b> (the front point farthest from the plane through the best point of each
objective, in normalised space). Hypervolume: {_esc(hv_text)}.</p>
{_front_table(front, objectives, knee)}
<p class="muted">Export one with <code>nas export {_esc(run.path)} --pick knee</code>
(or max-psnr, fastest, smallest-memory, a trial id).</p>
<h2>Plots</h2>{plot_html}
<h2>Anchors</h2>{_anchor_section(df)}
<h2>How far the proxy can be trusted</h2>{_trust_section(run)}
<h2>Failed, infeasible and pruned trials</h2>{_problems_section(df)}
</body></html>
"""
