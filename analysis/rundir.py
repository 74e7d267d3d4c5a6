"""The run directory of a search and its results table, ``trials.csv``: the only code that knows
the layout, the columns (from the catalogue, :mod:`analysis.metrics`), the statuses and the trial
folder path. ``nas`` writes through it, ``analysis`` reads through it.

::

    runs/<name>/
      search.yaml        resolved SearchConfig
      state.json         budget, study name and storage, sessions (what --resume needs)
      references.json    anchors' profiled costs for relative constraints (measured once per run)
      calibration.json   what `psnr` is: the PSNR predictor used (and its fidelity), or why none
      study.db           Optuna study (SQLite; absent with --storage)
      tune/              Ray Tune experiments, one per session
      trials.csv         one row per trial, anchors included; rewritten atomically after each trial
      trials/<trial_id>/ spec.yaml, hparams.json, model_deploy.pth, train.log, metrics.json
      report.html, pareto_*.html/png   written by `nas pareto`
      verify.csv, verify/<name>/       written by `nas verify` (the verification rung)

``state.json`` also records what the last session measured with, resolved (``measured``:
``profile_hw`` such as ``"128x128"``, ``device``, ``threads``, ``preset``), and each row of
``trials.csv`` its own ``profile_hw`` and ``device``.

Every file is written atomically (temp file in the same folder, then ``os.replace``), so a
``kill -9`` leaves either the old or the new version. ``metrics.json`` is a trial's own record:
when the driver dies between a trial's end and the table's rewrite, :meth:`TrialsTable.load`
recovers the row from it.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from analysis import metrics as catalogue
from analysis.metrics import COL
from analysis.trials_csv import read_records
from search_space.errors import InputError
from search_space.io import (
    make_output_dir,
    read_json_bounded,
    shown,
    without_password,
    write_atomic,
)

__all__ = [
    "COLUMNS",
    "STATUS",
    "FINISHED",
    "STATUSES",
    "read_trials",
    "started_row",
    "RunDir",
    "TrialDir",
    "TrialsTable",
    "write_atomic",
    "write_json",
    "read_json",
    "now_iso",
]

# the columns as of import; code that writes or reads uses catalogue.columns() (the catalogue)
COLUMNS = catalogue.columns()
STATUSES = ("completed", "running", "failed", "infeasible", "pruned")
STATUS = SimpleNamespace(**{s: s for s in STATUSES})  # STATUS.completed == "completed"
FINISHED = tuple(s for s in STATUSES if s != STATUS.running)
STATE_VERSION = 1


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def write_json(path: str | Path, data: Any) -> None:
    write_atomic(path, json.dumps(data, indent=1, default=_json_default, allow_nan=False) + "\n")


def _json_default(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def read_json(path: str | Path, what: str = "JSON file") -> Any:
    """A JSON file of the run, read as untrusted input (bounded, regular files only)."""
    return read_json_bounded(path, what)


def started_row(trial_id: str, meta: Mapping[str, Any]) -> dict[str, Any]:
    """The row of a trial that has just started; ``meta`` is the searcher's ``_meta`` (trial
    ``number``, ``anchor`` name or None, ``optuna_number``)."""
    anchor = meta.get(COL.anchor)
    return {COL.trial_id: trial_id, COL.number: meta.get(COL.number), COL.status: STATUS.running,
            COL.reason: "", COL.is_anchor: anchor is not None, COL.anchor: anchor or "",
            COL.optuna_number: meta.get(COL.optuna_number), COL.started_at: now_iso()}


def _finite(value: Any) -> Any:
    """NaN/inf become None, so that JSON stays strict and CSV cells empty."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class TrialDir:
    """Paths of one trial folder, ``trials/<trial_id>/``. The proxy training (``trainers.loop``)
    writes ``model_deploy.pth``, ``checkpoint.pth`` and ``config.yaml`` there itself."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    spec_yaml = property(lambda self: self.path / "spec.yaml")
    hparams_json = property(lambda self: self.path / "hparams.json")
    metrics_json = property(lambda self: self.path / "metrics.json")
    train_log = property(lambda self: self.path / "train.log")
    weights = property(lambda self: self.path / "model_deploy.pth")
    checkpoint = property(lambda self: self.path / "checkpoint.pth")  # resumable state


class RunDir:
    """Paths of one run directory, and its ``state.json``."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).resolve()

    @property
    def name(self) -> str:
        return self.path.name

    search_yaml = property(lambda self: self.path / "search.yaml")
    state_json = property(lambda self: self.path / "state.json")
    references_json = property(lambda self: self.path / "references.json")
    calibration_json = property(lambda self: self.path / "calibration.json")
    study_db = property(lambda self: self.path / "study.db")
    tune_dir = property(lambda self: self.path / "tune")
    trials_csv = property(lambda self: self.path / "trials.csv")
    trials_dir = property(lambda self: self.path / "trials")
    report_html = property(lambda self: self.path / "report.html")
    exports_dir = property(lambda self: self.path / "exports")
    launch_lock = property(lambda self: self.path / ".launch.lock")
    verify_csv = property(lambda self: self.path / "verify.csv")  # `nas verify`'s rows
    verify_dir = property(lambda self: self.path / "verify")  # its networks' training folders

    def contained(self, path: Path, what: str) -> Path:
        """``path``, refused when it resolves outside the run folder: a run is often someone
        else's, and a symlink planted in it must not make the tool read or write elsewhere."""
        if not path.resolve().is_relative_to(self.path):
            raise InputError(f"{shown(path)}: {what} points outside the run folder "
                             f"{shown(self.path)}; refused")
        return path

    def figure_file(self, name: str, ext: str) -> Path:
        """Where ``nas pareto`` writes figure ``name`` (``pareto_runtime``...) as ``ext``."""
        return self.path / f"{name}.{ext}"

    def trial(self, trial_id: str) -> TrialDir:
        return TrialDir(self.trials_dir / trial_id)

    def trial_dir(self, trial_id: str) -> Path:
        return self.trial(trial_id).path

    def metrics_json(self, trial_id: str) -> Path:
        return self.trial(trial_id).metrics_json

    def validation_curve(self, trial_id: str) -> list[tuple[int, float]]:
        """``(iteration, validation PSNR-Y)`` of one trial's proxy training, from its
        ``metrics.json`` history (PSNR averaged over the validation sets); [] when absent."""
        try:
            history = read_json(self.metrics_json(trial_id)).get("history") or []
        except (OSError, ValueError, AttributeError):
            return []
        curve = []
        for entry in history:
            sets = entry.get("metrics") if isinstance(entry, Mapping) else None
            values = [m["psnr_y"] for m in (sets or {}).values()
                      if isinstance(m, Mapping) and m.get("psnr_y") is not None]
            if values and entry.get("iteration") is not None:
                curve.append((int(entry["iteration"]), sum(values) / len(values)))
        return curve

    @property
    def sqlite_url(self) -> str:
        return f"sqlite:///{self.study_db}"

    def is_run(self) -> bool:
        return self.state_json.is_file() and self.search_yaml.is_file()

    @classmethod
    def create(cls, path: str | Path, *, config_yaml: str, state: Mapping[str, Any]) -> RunDir:
        """A new run directory; refuses to overwrite an existing run."""
        run = cls(path)
        if run.is_run():
            raise InputError(f"--out: {run.path} already holds a run; continue it with "
                             f"`nas launch --resume {run.path}` or choose another --out")
        make_output_dir(run.path, "--out")
        write_atomic(run.search_yaml, config_yaml)
        run.write_state({"version": STATE_VERSION, **state})
        return run

    @classmethod
    def open(cls, path: str | Path) -> RunDir:
        """An existing run (for --resume); InputError when ``path`` is not one."""
        run = cls(path)
        if not run.path.is_dir():
            raise InputError(f"--resume: {path} is not a directory")
        if not run.is_run():
            raise InputError(f"--resume: {path} is not a run directory of `nas launch` "
                             f"(no state.json and search.yaml)")
        try:
            state = run.read_state()
        except (OSError, ValueError) as e:
            raise InputError(f"--resume: {run.state_json} is unreadable ({e})") from None
        if state.get("version") != STATE_VERSION:
            raise InputError(f"--resume: {run.state_json} has version {state.get('version')!r}, "
                             f"expected {STATE_VERSION}")
        return run

    def read_state(self) -> dict[str, Any]:
        return read_json(self.state_json)

    def write_state(self, state: Mapping[str, Any]) -> None:
        """Write ``state.json``; a storage URL is stored without its password (run folders are
        shared and world-readable)."""
        state = dict(state)
        if state.get("storage"):
            state["storage"] = without_password(state["storage"])
        write_json(self.state_json, state)


class TrialsTable:
    """Rows of ``trials.csv`` keyed by trial id, in trial-number order."""

    def __init__(self, run: RunDir) -> None:
        self.run = run
        self.rows: dict[str, dict[str, Any]] = {}

    # ------------------------------------------------------------------ reading
    @classmethod
    def load(cls, run: RunDir) -> TrialsTable:
        """The table from ``trials.csv``, completed by finished ``trials/*/metrics.json`` records
        the table missed (driver killed between a trial's end and the rewrite)."""
        table = cls(run)
        known = set(catalogue.columns())
        if os.path.lexists(run.trials_csv):
            for raw in read_records(run.trials_csv)[1]:
                row = {k: _parse_cell(k, v) for k, v in raw.items() if k in known}
                table.rows[row[COL.trial_id]] = row
        if run.trials_dir.is_dir():
            for metrics in sorted(run.trials_dir.glob("*/metrics.json")):
                try:
                    record = read_json(metrics)
                except (OSError, ValueError):
                    continue  # a torn file cannot exist (atomic writes); unreadable: skip
                row = record.get("row") if isinstance(record, Mapping) else None
                if not isinstance(row, Mapping) or row.get(COL.trial_id) != metrics.parent.name:
                    continue  # not this folder's own record
                known = table.rows.get(row.get(COL.trial_id))
                if row.get(COL.status) in FINISHED and (
                        known is None or known.get(COL.status) not in FINISHED):
                    table.upsert(row)
        return table

    def finished(self) -> list[dict[str, Any]]:
        return [r for r in self.sorted_rows() if r.get(COL.status) in FINISHED]

    def sorted_rows(self) -> list[dict[str, Any]]:
        return sorted(self.rows.values(), key=lambda r: (_num(r.get(COL.number)), r[COL.trial_id]))

    def count(self, *, status: Iterable[str] = FINISHED, anchors: bool | None = None) -> int:
        status = tuple(status)
        return sum(1 for r in self.rows.values() if r.get(COL.status) in status
                   and (anchors is None or bool(r.get(COL.is_anchor)) == anchors))

    def next_number(self) -> int:
        numbers = [int(r[COL.number]) for r in self.rows.values() if r.get(COL.number) is not None]
        return max(numbers, default=-1) + 1

    # ------------------------------------------------------------------ writing
    def upsert(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """Insert or update a row (unknown keys dropped, NaN -> empty)."""
        tid = row[COL.trial_id]
        columns = catalogue.columns()
        current = self.rows.setdefault(tid, {**{c: None for c in columns},
                                             COL.is_anchor: False, COL.anchor: "", COL.reason: ""})
        for key, value in row.items():
            if key in columns:
                current[key] = _finite(value)
        return current

    def drop_unfinished(self) -> list[str]:
        """Forget rows of trials that never finished (killed with the driver); their ids."""
        gone = [tid for tid, r in self.rows.items() if r.get(COL.status) not in FINISHED]
        for tid in gone:
            del self.rows[tid]
        return gone

    def write(self) -> None:
        columns = catalogue.columns()
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        for row in self.sorted_rows():
            writer.writerow({c: _cell(row.get(c)) for c in columns})
        write_atomic(self.run.trials_csv, buf.getvalue())


def _num(value: Any) -> float:
    return float(value) if value is not None else math.inf


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    if isinstance(value, float):
        return repr(value)
    return value


def _parse_cell(column: str, text: str) -> Any:
    if text == "":
        return "" if column == COL.anchor else None
    f = catalogue.field(column)
    dtype = f.dtype if f is not None else "float"
    if dtype == "bool":
        return text == "True"
    if dtype in ("str", "json"):
        return text
    if dtype == "int":
        return int(float(text))
    return float(text)


_PANDAS_DTYPES = {"str": "string", "json": "string", "int": "Int64", "float": "float64",
                  "bool": "boolean"}


def read_trials(path: str | Path) -> Any:
    """``trials.csv`` as a pandas DataFrame with the catalogue's dtypes: text columns as
    strings (empty -> ""), bookkeeping integers as nullable ``Int64`` (``optuna_number`` of an
    anchor is <NA>, not a float), ``is_anchor`` boolean, metrics float. Columns the catalogue
    does not know (a newer or older writer) are kept, as numbers when they all parse as numbers.

    Raises InputError for a missing, empty or unreadable table."""
    import pandas as pd

    table = Path(path)
    if table.is_dir():
        table = RunDir(table).trials_csv
    if not os.path.lexists(table):
        raise InputError(f"{shown(table.parent)}: no trials.csv (no trial has been recorded in "
                         "this run yet)")
    header, records = read_records(table)
    df = pd.DataFrame(records, columns=header, dtype=str)
    for column in df.columns:
        f = catalogue.field(column)
        df[column] = _typed(df[column], f.dtype if f is not None else None,
                            f is not None and f.is_metric)
    return df


def _typed(col: Any, dtype: str | None, metric: bool = False) -> Any:
    """Metrics stay float64 (counts included), so that numpy code sees NaN, not <NA>."""
    import pandas as pd

    text = col.fillna("").astype(str).str.strip()
    if dtype in ("str", "json"):
        return text
    if dtype == "bool":
        return text.str.lower().isin(("true", "1", "1.0", "yes"))
    numbers = pd.to_numeric(text.replace("", None), errors="coerce")
    if dtype is None and numbers.notna().sum() < (text != "").sum():
        return text  # an unknown text column
    if dtype == "int" and not metric:
        return numbers.round().astype("Int64")
    return numbers.astype(float)
