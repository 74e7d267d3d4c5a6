"""A search run as data: its trials table, resolved search config, state and calibration record,
read from ``runs/<name>/`` as untrusted input, and what the run says about itself (objectives,
protocol, proxy training). The report, the export, ``nas pareto`` and ``nas verify`` read runs
through :func:`load_run`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from analysis import formatting, pareto
from analysis.metrics import COL
from analysis.rundir import STATUSES, RunDir, read_trials
from search_space.errors import InputError
from search_space.io import shown
from search_space.yaml_io import read_yaml

__all__ = ["Run", "DEFAULT_OBJECTIVES", "load_run", "default_objectives", "check_objectives",
           "status_counts", "protocol", "proxy_train"]

DEFAULT_OBJECTIVES = (COL.psnr, COL.runtime_ms, COL.peak_memory_mb)
_REQUIRED_COLUMNS = (COL.trial_id, COL.status)


@dataclass
class Run:
    """A run directory: its trials table and resolved search config (``{}`` when absent).

    ``preset`` and ``proxy_config`` (the proxy's partial TrainConfig: preset merged with
    ``proxy.train``) are filled in by callers that know the presets (``nas``); without them the
    report says "preset default" where the search left a value to its preset.
    """

    path: Path
    trials: pd.DataFrame
    search: dict[str, Any] = field(default_factory=dict)
    state: dict[str, Any] = field(default_factory=dict)
    calibration: dict[str, Any] = field(default_factory=dict)
    preset: str | None = None
    proxy_config: dict[str, Any] | None = None

    @property
    def name(self) -> str:
        return self.path.resolve().name

    @property
    def layout(self) -> RunDir:
        """Where the run's files are (the run-directory module owns the paths)."""
        return RunDir(self.path)

    @property
    def input_hw(self) -> tuple[int, int] | None:
        """LR input size the run profiled at (MACs, activations, runtime, memory): what the
        trials recorded (``profile_hw``), else what the session resolved (``state.json``), else
        an explicit ``profile.input_hw`` of search.yaml; None when none is known (an old run
        with ``auto``): never a guess."""
        sizes = self.trials.get(COL.profile_hw, pd.Series(dtype=str))
        sizes = [v for v in sizes.astype(str).unique() if v]
        text = sizes[0] if len(sizes) == 1 else (self.state.get("measured") or {}).get(
            "profile_hw")
        if isinstance(text, str) and "x" in text:
            h, _, w = text.partition("x")
            return int(h), int(w)
        hw = _section(self.search, "profile").get("input_hw")
        return (int(hw[0]), int(hw[1])) if isinstance(hw, list) and len(hw) == 2 else None

    @property
    def scale(self) -> int | None:
        found = _lookup(self.search, ("scale",))
        if isinstance(found, int):
            return found
        for spec in self.trials.get(COL.spec, []):
            data = formatting.parse_json(spec)
            if isinstance(data, Mapping) and isinstance(data.get("scale"), int):
                return data["scale"]
        return None


# ---------------------------------------------------------------------------- loading
def load_run(run_dir: str | Path) -> Run:
    """Read ``trials.csv`` (and ``search.yaml`` if present); InputError for a missing/empty run."""
    path = Path(run_dir)
    if not path.is_dir():
        raise InputError(f"{path}: not a run directory (expected runs/<name>/ with trials.csv)")
    run = RunDir(path)
    df = read_trials(run.contained(run.trials_csv, "trials table"))
    missing = [c for c in _REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise InputError(f"{run.trials_csv}: missing column(s) {', '.join(missing)}; is this an "
                         "esrnas trials table?")
    if df.empty:
        raise InputError(f"{run.trials_csv}: has no trials")
    return Run(path=path, trials=_normalise_columns(df),
               search=_read_mapping(run, run.search_yaml, "search config"),
               state=_read_mapping(run, run.state_json, "run state"),
               calibration=_read_mapping(run, run.calibration_json, "calibration record"))


def _normalise_columns(df: pd.DataFrame) -> pd.DataFrame:
    df = df.copy()
    df[COL.status] = df[COL.status].str.strip().str.lower()
    if COL.is_anchor not in df.columns:
        df[COL.is_anchor] = df.get(COL.anchor, pd.Series("", df.index)).astype(str) != ""
    df[COL.is_anchor] = df[COL.is_anchor].astype(bool)
    if COL.anchor not in df.columns:
        df[COL.anchor] = ""
    return df


def _read_mapping(run: RunDir, path: Path, what: str) -> dict[str, Any]:
    """A mapping from a YAML (or JSON) file of the run, read as untrusted input (inside the run,
    bounded, no duplicate keys); ``{}`` when the file is absent, InputError when it is not a
    mapping."""
    if not os.path.lexists(path):
        return {}
    data = read_yaml(run.contained(path, what), what)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InputError(f"{shown(path)}: {what} is a {type(data).__name__}, expected a mapping")
    return data


def _lookup(data: Any, names: tuple[str, ...], *, leaf: bool = True) -> Any:
    """First value under any of ``names``, searched breadth-first through nested mappings.

    With ``leaf`` only non-mapping values count (``train: {iterations: 600}`` is not a dataset).
    """
    queue = [data]
    while queue:
        current = queue.pop(0)
        if not isinstance(current, Mapping):
            continue
        for name in names:
            value = current.get(name)
            if value is not None and not (leaf and isinstance(value, Mapping)):
                return value
        queue += [v for v in current.values() if isinstance(v, Mapping)]
    return None


# ---------------------------------------------------------------------------- what the run says
def default_objectives(run: Run) -> tuple[dict[str, str], list[str]]:
    """The search's objectives (``search.yaml``) or psnr, runtime_ms, peak_memory_mb.

    Objectives without any value in the table (e.g. a runtime that could not be measured) are
    dropped with a warning. Returns ``(objectives, warnings)``.
    """
    declared = _lookup(run.search, ("objectives",), leaf=False)
    if isinstance(declared, list) and declared and all(isinstance(d, Mapping) for d in declared):
        declared = {d.get("name"): d.get("direction", pareto.direction_of(d.get("name")))
                    for d in declared}
    objectives = pareto.resolve_objectives(declared or list(DEFAULT_OBJECTIVES))
    kept, notes = {}, []
    for name, direction in objectives.items():
        values = pd.to_numeric(run.trials.get(name, pd.Series(dtype=float)), errors="coerce")
        if values.notna().any():
            kept[name] = direction
        else:
            notes.append(f"objective {name} has no value in trials.csv; left out of the front")
    if not kept:
        raise InputError(f"{run.path}: no completed trial has any of the objectives "
                         f"{', '.join(objectives)} yet")
    return kept, notes


def check_objectives(run: Run, objectives: Mapping[str, str]) -> None:
    """InputError unless every objective is a column with at least one completed value."""
    df = run.trials
    for name in objectives:
        if name not in df.columns:
            raise InputError(f"objective {name!r}: trials.csv of {run.path} has no such column")
    if not pareto.eligible_mask(df, objectives).any():
        counts = ", ".join(f"{k} {v}" for k, v in status_counts(df).items() if v)
        raise InputError(f"{run.path}: no completed trial has values for all of "
                         f"{', '.join(objectives)} ({counts})")


def status_counts(df: pd.DataFrame) -> dict[str, int]:
    """Trials per status (the known ones first, zero where absent), anchors counted in."""
    counts = df[COL.status].value_counts()
    out = {status: int(counts.get(status, 0)) for status in STATUSES}
    out.update({str(k): int(v) for k, v in counts.items() if k not in out})
    return out


def _section(data: Mapping[str, Any], *keys: str) -> Mapping[str, Any]:
    for key in keys:
        data = data.get(key) if isinstance(data.get(key), Mapping) else {}
    return data


def proxy_train(run: Run) -> Mapping[str, Any]:
    """The partial TrainConfig the proxies were trained with (``proxy.train`` if the preset is
    unknown)."""
    if run.proxy_config is not None:
        return run.proxy_config
    return _section(run.search, "proxy", "train")


def protocol(run: Run) -> dict[str, Any]:
    """The run's protocol from ``search.yaml`` (SearchConfig layout) and ``state.json``.

    Values the search left to its proxy preset are reported as ``"preset default"``.
    """
    s = run.search
    proxy, train = _section(s, "proxy"), proxy_train(run)
    data = _section(train, "data")
    resources = _section(s, "resources")
    gpus = resources.get("gpus_per_trial")
    device = train.get("device")
    if device in (None, "auto") and gpus is not None:  # what "auto" resolves to in a trial
        device = "cuda" if gpus else "cpu"
    default = "preset default" if proxy and run.proxy_config is None else None
    val = data.get("val") or _lookup(s, ("val",))
    budget = _section(run.state, "budget")
    return {
        "preset": run.preset or proxy.get("preset") or _lookup(s, ("preset",)),
        "scale": run.scale,
        "training data": data.get("train") or default,
        "validation sets": ", ".join(map(str, val)) if isinstance(val, list) else val or default,
        "proxy iterations": train.get("iterations") or default,
        "device": device,
        "seed": s.get("seed", _lookup(s, ("seed",))),
        "anchors": ", ".join(map(str, s.get("anchors") or [])) or None,
        "constraints": ", ".join(f"{k} {v}" for k, v in (s.get("constraints") or {}).items())
        or None,
        "budget": ", ".join(f"{v} {k}" for k, v in budget.items() if v is not None) or None,
    }
