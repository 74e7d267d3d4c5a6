"""``nas verify``: the verification rung of a search.

The proxy ranks thousands of candidates cheaply; before a user trains one for days, the few a
user would pick are re-checked under a longer schedule. The rung retrains the K best feasible
networks of a run's Pareto front (or the ones picked), plus the run's baseline anchor, from
scratch under one schedule: the run's own proxy (data, seed, optimiser, patch, batch, cosine
decay) with ``iterations`` (default 8x the proxy's) and its validations scaled alike
(:func:`rung_train_base`). Every network is trained with the same recipe and seed, so the
difference to the baseline is paired.

What it reports (:func:`summarise`): each network's PSNR at the rung (mean over the proxy's
validation sets, and per set), its difference to the baseline anchor at the rung and at the
proxy rung (the run's ``psnr``), and whether the proxy's ranking holds: Kendall tau between the
rungs and the pairs that flip.

Layout (:class:`analysis.rundir.RunDir`): ``verify.csv`` (one row per network and schedule,
rewritten atomically after each) and ``verify/<name>/`` (its training folder and ``row.json``,
the row written atomically the moment it is known, so that a ``kill -9`` between a network's end
and the table's rewrite loses nothing). A row whose schedule key (:func:`nas.fidelity.proxy_key`
of its training config) matches is never retrained; an interrupted network starts again.

The run folder is untrusted input: it is read through :func:`analysis.run.load_run`, specs
through :func:`analysis.export.trial_spec`, and every spec's size is checked
(:func:`search_space.limits.check_resources`) before anything is built.
"""

from __future__ import annotations

import csv
import io
import math
import os
import re
import shutil
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from analysis import pareto
from analysis.fidelity import MIN_GAP_DB, kendall_tau
from analysis.metrics import COL
from analysis.run import Run, default_objectives, load_run
from analysis.rundir import STATUS, RunDir, now_iso, read_json, write_json
from analysis.trials_csv import MAX_TRIALS_CSV_BYTES
from nas.progress import format_duration
from search_space.anchors import get_anchor, list_anchors
from search_space.errors import InputError, did_you_mean
from search_space.io import first_line, read_text_bounded, write_atomic
from search_space.limits import check_resources
from trainers.config import TrainConfig, partial_value

__all__ = ["VERIFY_FACTOR", "Candidate", "rung_train_base", "open_run", "pick_candidates",
           "run_verify", "summarise", "VERIFY_COLUMNS"]

# The rung's default length, in proxy schedules.
VERIFY_FACTOR = 8
_ITERATIONS = "iterations"  # the TrainConfig key
# What verify.csv holds: the network, its schedule (key), its PSNR at the rung (mean over the
# validation sets and per set), and what the proxy rung said of it (the run's psnr, psnr_proxy).
PSNR_RUNG = "psnr_rung"
PSNR_RUN = "psnr_run"
VERIFY_COLUMNS = ("name", COL.trial_id, COL.anchor, "is_baseline", COL.arch_id, "key",
                  COL.iterations, COL.seed, PSNR_RUNG, COL.psnr_set5, COL.psnr_set14, PSNR_RUN,
                  COL.psnr_proxy, COL.train_seconds, COL.finished_at)
_FLOATS = (PSNR_RUNG, COL.psnr_set5, COL.psnr_set14, PSNR_RUN, COL.psnr_proxy,
           COL.train_seconds)


@dataclass(frozen=True)
class Candidate:
    """One network of the rung: ``name`` (its trial id, or the anchor's name for the baseline),
    its spec and what the proxy rung measured of it (None where the run has no row): PSNRs and
    seconds per training iteration (for the ETA)."""

    name: str
    trial_id: str
    anchor: str
    spec: Any
    is_baseline: bool
    psnr_run: float | None
    psnr_proxy: float | None
    seconds_per_iteration: float | None = None


# ---------------------------------------------------------------------------- the schedule
def rung_train_base(proxy_base: Mapping[str, Any], iterations: int | None) -> dict[str, Any]:
    """The proxy's partial TrainConfig with an ``iterations`` schedule (None: VERIFY_FACTOR x
    the proxy's); validations scale with it (the cpu preset: 750 / 375 -> 6000 / 3000)."""
    base = dict(proxy_base)
    proxy_iterations = int(partial_value(base, _ITERATIONS))
    n = int(iterations) if iterations is not None else VERIFY_FACTOR * proxy_iterations
    every = int(partial_value(base, "eval_every"))
    base.update(iterations=n, eval_every=max(1, round(every * n / proxy_iterations))
                if every else 0)
    return base


# ---------------------------------------------------------------------------- candidates
def open_run(path: str) -> tuple[Run, Any]:
    """The run (trials.csv through :func:`analysis.run.load_run`) and its SearchConfig."""
    from nas.config import SearchConfig

    run = load_run(path)
    if not run.layout.search_yaml.is_file():
        raise InputError(f"{run.layout.search_yaml}: missing; `nas verify` needs the run's "
                         "search config (its proxy, seed and anchors)")
    config = SearchConfig.from_file(run.layout.search_yaml)
    return run, config


def baseline_anchor(config: Any, given: str | None) -> str:
    """``--baseline``, else the run's runtime baseline (the NTIRE baseline or a relative
    constraint's anchor), else the anchor of a PSNR floor, else the first anchor."""
    from nas.session import runtime_baseline

    anchors = list_anchors()
    if given is not None:
        if given not in anchors:
            raise InputError(f"--baseline: {given!r} is not an anchor"
                             f"{did_you_mean(given, anchors)}")
        return given
    floors = [c.anchor for c in config.constraints if c.anchor and c.stage == "trained"]
    name = runtime_baseline(config) or next(iter(floors), None) or next(iter(config.anchors),
                                                                        None)
    if name is None:
        raise InputError("--baseline: the run names no anchor; give one (e.g. --baseline "
                         "span_ch28)")
    return name


def pick_candidates(run: Run, config: Any, *, top: int, picks: Sequence[str] = (),
                    baseline: str | None = None) -> list[Candidate]:
    """The baseline anchor first, then the picked trials (``--pick``), else the ``top`` sampled
    trials of the run's front with the highest ``psnr``; duplicates (same arch) once."""
    from analysis.export import select_trial, trial_spec

    objectives, _ = default_objectives(run)
    df = run.trials
    base = baseline_anchor(config, baseline)
    base_row = _anchor_row(df, base)
    out = [Candidate(base, "" if base_row is None else str(base_row[COL.trial_id]), base,
                     get_anchor(base).spec.with_scale(config.scale), True,
                     *_proxy_figures(base_row))]
    if picks:
        # verification is where an extrapolated claim gets checked: never skip one
        labels = [select_trial(df, pick, objectives, extrapolated=True)[0] for pick in picks]
    else:
        front = pareto.pareto_front(df, objectives)
        front = front[~front[COL.is_anchor]]
        labels = list(front.sort_values(COL.psnr, ascending=False, kind="stable").index[:top])
        if not labels:
            raise InputError(f"{run.layout.trials_csv}: no completed sampled trial on the front "
                             f"of {', '.join(objectives)}")
    seen = {out[0].spec.arch_id()}
    for label in labels:
        row = df.loc[label]
        _check_folder_name(str(row[COL.trial_id]), run)
        spec = trial_spec(run, row)
        if spec.arch_id() in seen:
            continue
        seen.add(spec.arch_id())
        out.append(Candidate(str(row[COL.trial_id]), str(row[COL.trial_id]),
                             str(row.get(COL.anchor) or ""), spec, False, *_proxy_figures(row)))
    return out


_SAFE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


def _check_folder_name(trial_id: str, run: Run) -> None:
    """A trial id names a folder under verify/ (removed before a retry): never a path."""
    if not _SAFE_NAME.match(trial_id):
        raise InputError(f"{run.layout.trials_csv}: trial_id {trial_id[:60]!r} is not a plain "
                         "folder name (letters, digits, '_', '-', '.')")


def _anchor_row(df: pd.DataFrame, anchor: str) -> Mapping[str, Any] | None:
    rows = df[(df[COL.anchor] == anchor) & (df[COL.status] == STATUS.completed)]
    return None if rows.empty else rows.iloc[0]


def _proxy_figures(row: Mapping[str, Any] | None) -> tuple[float | None, ...]:
    if row is None:
        return None, None, None
    seconds, iterations = _number(row.get(COL.train_seconds)), _number(row.get(COL.iterations))
    per_iteration = seconds / iterations if seconds and iterations else None
    return _number(row.get(COL.psnr)), _number(row.get(COL.psnr_proxy)), per_iteration


def _number(value: Any) -> float | None:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def check_sizes(candidates: Sequence[Candidate], train_base: Mapping[str, Any],
                run: Run) -> None:
    """Every spec within the resource limits at the rung's patch and batch, before any build."""
    patch = int(partial_value(train_base, "data.lr_patch"))
    batch = int(partial_value(train_base, "data.batch_size"))
    for c in candidates:
        where = "an anchor" if c.is_baseline else f"{run.layout.trial(c.trial_id).spec_yaml}"
        check_resources(c.spec, input_hw=(patch, patch), batch=batch, what=f"{c.name} ({where})")


# ---------------------------------------------------------------------------- rows
def load_rows(layout: RunDir) -> dict[tuple[str, str], dict[str, Any]]:
    """Finished rows by (name, key): verify.csv, completed by ``verify/*/row.json`` records it
    missed. InputError naming the file for one that cannot be read."""
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    if os.path.lexists(layout.verify_csv):
        text = read_text_bounded(layout.contained(layout.verify_csv, "verify table"),
                                 "verify table", MAX_TRIALS_CSV_BYTES)
        if text and not text.endswith("\n"):
            raise InputError(f"{layout.verify_csv}: its last line is cut short (a torn file)")
        try:
            for raw in csv.DictReader(io.StringIO(text, newline="")):
                row = _typed_row(raw, layout.verify_csv)
                rows[(row["name"], row["key"])] = row
        except csv.Error as e:
            raise InputError(f"{layout.verify_csv}: not a readable CSV ({first_line(e)})") \
                from None
    for path in sorted(layout.verify_dir.glob("*/row.json")) if layout.verify_dir.is_dir() \
            else ():
        try:
            row = _typed_row(read_json(path), path)
        except (OSError, ValueError, AttributeError) as e:
            raise InputError(f"{path}: unreadable ({first_line(e)})") from None
        rows.setdefault((row["name"], row["key"]), row)
    return rows


def _typed_row(raw: Mapping[str, Any], source: Any) -> dict[str, Any]:
    row = {c: raw.get(c) for c in VERIFY_COLUMNS}
    if not row["name"] or not row["key"]:
        raise InputError(f"{source}: a row without name or key; expected columns "
                         f"{', '.join(VERIFY_COLUMNS)}")
    for column in _FLOATS:
        row[column] = None if row[column] in (None, "") else _float(row[column], column, source)
    row["is_baseline"] = str(row["is_baseline"]) in ("True", "true", "1")
    return row


def _float(value: Any, column: str, source: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise InputError(f"{source}: {column} {value!r} is not a number") from None


def write_rows(layout: RunDir, rows: Mapping[tuple[str, str], Mapping[str, Any]]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=VERIFY_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows.values():
        writer.writerow({c: "" if row.get(c) is None else row[c] for c in VERIFY_COLUMNS})
    write_atomic(layout.verify_csv, buf.getvalue())


# ---------------------------------------------------------------------------- training
def run_verify(run: Run, config: Any, candidates: Sequence[Candidate],
               train_base: Mapping[str, Any], *, threads: int | None = None,
               progress: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
    """Train every candidate not yet done under ``train_base``; their rows, in order."""
    from nas.fidelity import proxy_key
    from nas.trial_settings import TrialSettings, trial_train_config

    layout = run.layout
    settings = TrialSettings(run_dir=str(layout.path), scale=config.scale, train_base=train_base,
                             seed=config.seed, threads=threads)
    rows = load_rows(layout)
    todo = []
    for c in candidates:
        folder = layout.verify_dir / c.name
        cfg = trial_train_config(c.spec, {}, settings, folder)
        todo.append((c, folder, cfg, proxy_key(cfg)))
    say = progress or (lambda line: print(line, file=sys.stderr, flush=True))
    eta = _Eta([(c, cfg[_ITERATIONS]) for c, _, cfg, key in todo if (c.name, key) not in rows])
    for i, (c, folder, cfg, key) in enumerate(todo, 1):
        if (c.name, key) in rows:
            say(f"[{i}/{len(todo)}] {c.name}: done before, {rows[(c.name, key)][PSNR_RUNG]:.3f} dB")
            continue
        say(f"[{i}/{len(todo)}] {c.name}: training {cfg[_ITERATIONS]} iterations; ETA "
            f"{format_duration(eta.left())}")
        t0 = time.perf_counter()
        row = _train_one(c, folder, cfg, key, config.seed)
        eta.done(time.perf_counter() - t0)
        write_json(folder / "row.json", row)
        rows[(c.name, key)] = row
        write_rows(layout, rows)
        say(f"[{i}/{len(todo)}] {c.name}: {row[PSNR_RUNG]:.3f} dB in "
            f"{time.perf_counter() - t0:.0f} s")
    return [rows[(c.name, key)] for c, _, _, key in todo]


class _Eta:
    """Time left: each network's proxy seconds per iteration x the rung's iterations, rescaled
    by how the networks trained so far compared with that prediction (None: nothing known)."""

    def __init__(self, work: Sequence[tuple[Candidate, int]]) -> None:
        known = [c.seconds_per_iteration for c, _ in work if c.seconds_per_iteration]
        fallback = sum(known) / len(known) if known else None
        self.predicted = [None if fallback is None else
                          (c.seconds_per_iteration or fallback) * n for c, n in work]
        self.actual: list[float] = []

    def done(self, seconds: float) -> None:
        self.actual.append(seconds)

    def left(self) -> float | None:
        n = len(self.actual)
        rest = self.predicted[n:]
        if None in rest:
            mean = sum(self.actual) / n if n else None
            return None if mean is None else mean * len(rest)
        past = [p for p in self.predicted[:n] if p]
        scale = sum(self.actual) / sum(past) if n and past else 1.0
        return scale * sum(rest)


def _train_one(c: Candidate, folder: Any, cfg: Mapping[str, Any], key: str,
               seed: int) -> dict[str, Any]:
    from nas.trial import mean_metrics
    from trainers.loop import train

    shutil.rmtree(folder, ignore_errors=True)  # an interrupted try starts again
    folder.mkdir(parents=True)
    config = TrainConfig.from_dict(dict(cfg), source=f"verify {c.name} training config")
    result = train(config)
    if result.stopped:
        raise RuntimeError(f"{c.name}: training stopped ({result.stopped})")
    (folder / "checkpoint.pth").unlink(missing_ok=True)
    means = mean_metrics(result.metrics)
    return {"name": c.name, COL.trial_id: c.trial_id, COL.anchor: c.anchor,
            "is_baseline": c.is_baseline, COL.arch_id: c.spec.arch_id(), "key": key,
            COL.iterations: result.iterations, COL.seed: seed, PSNR_RUNG: means[COL.psnr],
            COL.psnr_set5: means.get(COL.psnr_set5), COL.psnr_set14: means.get(COL.psnr_set14),
            PSNR_RUN: c.psnr_run, COL.psnr_proxy: c.psnr_proxy,
            COL.train_seconds: round(result.train_seconds, 2), COL.finished_at: now_iso()}


# ---------------------------------------------------------------------------- the verdict
def summarise(rows: Sequence[Mapping[str, Any]], *, min_gap_db: float = MIN_GAP_DB
              ) -> dict[str, Any]:
    """Differences to the baseline at both rungs, Kendall tau between the rungs (the run's
    ``psnr`` and the raw ``psnr_proxy`` against the rung's PSNR) and the flipped pairs."""
    base = next((r for r in rows if r["is_baseline"]), None)
    out_rows = []
    for r in rows:
        rung_diff = _diff(r[PSNR_RUNG], base and base[PSNR_RUNG])
        run_diff = _diff(r[PSNR_RUN], base and base[PSNR_RUN])
        out_rows.append({**{k: r[k] for k in ("name", COL.anchor, "is_baseline", COL.arch_id,
                                                PSNR_RUNG, PSNR_RUN, COL.psnr_proxy)},
                         "diff_rung": rung_diff, "diff_run": run_diff})
    ranked = [r for r in rows if r[PSNR_RUN] is not None]
    return {"baseline": base and base["name"],
            COL.iterations: rows[0][COL.iterations] if rows else None, "rows": out_rows,
            "kendall_tau": _tau(ranked, PSNR_RUN), "kendall_tau_raw": _tau(ranked, COL.psnr_proxy),
            "flips": flipped_pairs(ranked, min_gap_db=min_gap_db)}


def _diff(value: float | None, base: float | None) -> float | None:
    return None if value is None or base is None else value - base


def _tau(rows: Sequence[Mapping[str, Any]], column: str) -> float | None:
    rows = [r for r in rows if r[column] is not None]
    if len(rows) < 2:
        return None
    tau = kendall_tau([r[column] for r in rows], [r[PSNR_RUNG] for r in rows])
    return None if math.isnan(tau) else tau


def flipped_pairs(rows: Sequence[Mapping[str, Any]], *,
                  min_gap_db: float = MIN_GAP_DB) -> list[dict[str, Any]]:
    """Pairs the proxy rung (``psnr_run``) orders one way and the rung the other; each with
    both gaps and whether the rung's gap is below ``min_gap_db`` (then read it as a tie)."""
    flips = []
    for i, a in enumerate(rows):
        for b in rows[i + 1:]:
            run_gap, rung_gap = a[PSNR_RUN] - b[PSNR_RUN], a[PSNR_RUNG] - b[PSNR_RUNG]
            if run_gap * rung_gap < 0:
                hi, lo = (a, b) if run_gap > 0 else (b, a)
                flips.append({"proxy_prefers": hi["name"], "over": lo["name"],
                              "gap_run": abs(run_gap), "gap_rung": -abs(rung_gap),
                              "within_noise": abs(rung_gap) < min_gap_db})
    return flips
