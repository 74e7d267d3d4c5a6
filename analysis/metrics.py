"""The metric catalogue: every column of ``trials.csv`` with its type, and for metrics their
direction, unit, label and the stage that produces them.

This table is the one place a metric is declared. ``trials.csv`` columns and their dtypes
(:mod:`analysis.rundir`), search objectives and constraints (:mod:`nas.objectives`), the
objectives ``nas pareto`` accepts (:mod:`analysis.pareto`), plot axes and hover text
(:mod:`analysis.plots`) and export fields all read it, so adding a metric is one entry here
(appended: the column order of existing runs stays the same).

Stages say when a value is known during a trial: ``cheap`` (counted without running the model),
``measured`` (profiled), ``trained`` (after proxy training), ``trial`` (bookkeeping of the
trial itself). Only metrics whose ``searchable`` is True can be a search objective or constraint
(the rest are known too late or are not properties of an architecture).
"""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

__all__ = ["COL", "Field", "FIELDS", "field", "columns", "metrics", "direction", "label",
           "searchable", "per_input", "DIRECTIONS", "direction_word", "study_direction",
           "is_flag_set"]

# The one direction vocabulary: configs and the CLI say max/min (Optuna's maximize/minimize are
# accepted too); Optuna's study is told maximize/minimize.
DIRECTIONS = ("max", "min")
_DIRECTION_WORDS = {"max": "max", "maximize": "max", "min": "min", "minimize": "min"}


def direction_word(word: object) -> str | None:
    """``max``/``maximize`` -> ``max``, ``min``/``minimize`` -> ``min`` (any case); None for
    anything else."""
    return _DIRECTION_WORDS.get(str(word).lower())


def study_direction(direction: str) -> str:
    """``max``/``min`` -> Optuna's ``maximize``/``minimize``."""
    return "maximize" if direction_word(direction) == "max" else "minimize"


@dataclass(frozen=True)
class Field:
    """One column of ``trials.csv``.

    Args:
        name: Column name (also the key in a trial's report and ``metrics.json`` row).
        dtype: ``str``, ``int`` (nullable), ``float``, ``bool`` or ``json`` (a JSON text cell).
        direction: ``max`` or ``min`` for a metric; None for bookkeeping columns.
        unit: Unit for labels (``dB``, ``ms``...; empty for counts and scores).
        label: Axis title without the unit.
        stage: ``cheap``, ``measured``, ``trained`` or ``trial``.
        searchable: Can be a search objective or constraint.
        per_input: Depends on the profiled input size (axis titles name the size).
    """

    name: str
    dtype: str = "float"
    direction: str | None = None
    unit: str = ""
    label: str = ""
    stage: str = "trial"
    searchable: bool = False
    per_input: bool = False

    @property
    def is_metric(self) -> bool:
        return self.direction is not None

    @property
    def title(self) -> str:
        """``runtime [ms]``: the label with its unit."""
        text = self.label or self.name
        return f"{text} [{self.unit}]" if self.unit else text


def _m(name: str, direction: str, unit: str, label: str, stage: str, *, dtype: str = "float",
       searchable: bool = True, per_input: bool = False) -> Field:
    return Field(name, dtype, direction, unit, label, stage, searchable, per_input)


def _r(name: str, dtype: str = "str") -> Field:
    return Field(name, dtype)


# In trials.csv column order. New entries go at the end.
FIELDS: dict[str, Field] = {f.name: f for f in (
    _r("trial_id"), _r("number", "int"), _r("status"), _r("reason"), _r("is_anchor", "bool"),
    _r("anchor"), _r("arch_id"), _r("spec", "json"), _r("hparams", "json"),
    _m("psnr", "max", "dB", "PSNR-Y (predicted converged; raw proxy if uncalibrated)",
       "trained"),
    _m("psnr_proxy", "max", "dB", "raw proxy validation PSNR-Y", "trained"),
    _m("ssim", "max", "", "validation SSIM-Y", "trained"),
    _m("psnr_set5", "max", "dB", "Set5 PSNR-Y", "trained"),
    _m("psnr_set14", "max", "dB", "Set14 PSNR-Y", "trained"),
    _m("runtime_ms", "min", "ms", "runtime", "measured", per_input=True),
    _m("runtime_iqr_ms", "min", "ms", "runtime IQR", "measured", searchable=False,
       per_input=True),
    _m("peak_memory_mb", "min", "MiB", "peak memory", "measured", per_input=True),
    _m("peak_memory_est_mb", "min", "MiB", "estimated peak memory", "cheap", per_input=True),
    _m("params", "min", "", "parameters (deploy form)", "cheap", dtype="int"),
    _m("params_train", "min", "", "parameters (training form)", "cheap", dtype="int",
       searchable=False),
    _m("macs_g", "min", "G", "MACs", "cheap", per_input=True),
    _m("activations_m", "min", "M", "activations", "cheap", per_input=True),
    _m("num_conv", "min", "", "convolutions", "cheap", dtype="int"),
    _m("train_seconds", "min", "s", "proxy training time", "trained", searchable=False),
    _m("iterations", "max", "", "proxy iterations", "trained", dtype="int", searchable=False),
    _r("seed", "int"), _r("started_at"), _r("finished_at"),
    _m("psnr_official", "max", "dB", "PSNR-Y, official weights", "trained", searchable=False),
    _r("optuna_number", "int"),
    _m("trial_seconds", "min", "s", "trial wall time", "trial", searchable=False),
    _m("ntire_score", "min", "", "NTIRE score (baseline = e^2 = 7.389)", "measured"),
    _m("synflow", "max", "", "SynFlow zero-cost score (log)", "trained", searchable=False),
    # what the trial measured with: the profiled LR input ("128x128") and the device
    _r("profile_hw"), _r("device"),
    # runtime paired with the run's runtime baseline (the NTIRE baseline, or the anchor of a
    # relative runtime constraint), timed interleaved in the trial's process
    _m("runtime_ratio", "min", "", "runtime / baseline's runtime (paired)", "measured",
       searchable=False, per_input=True),
    _m("runtime_ratio_iqr", "min", "", "runtime ratio IQR", "measured", searchable=False,
       per_input=True),
    _m("runtime_baseline_ms", "min", "ms", "baseline's runtime in the same pairs", "measured",
       searchable=False, per_input=True),
    _r("runtime_baseline"),
    # how far psnr (a prediction) can be trusted: the predictor's sd at this point, and whether
    # a feature lies outside the references the predictor was fitted on
    _m("psnr_sd", "min", "dB", "sd of the predicted PSNR", "trained", searchable=False),
    _r("extrapolated", "bool"),
)}


# Column names as attributes, ``COL.runtime_ms == "runtime_ms"``: code names a column through
# the catalogue (a typo fails loudly, a rename is one edit here), never as a bare string.
COL = SimpleNamespace(**{name: name for name in FIELDS})


def is_flag_set(value: Any) -> bool:
    """A bool cell of trials.csv (``True``, ``"True"``, ``"true"``) as a bool; NaN is False."""
    return str(value).strip().lower() == "true"


def field(name: str) -> Field | None:
    return FIELDS.get(name)


def columns() -> tuple[str, ...]:
    """The columns of ``trials.csv``, in order."""
    return tuple(FIELDS)


def metrics(*, searchable: bool | None = None, stage: str | None = None) -> tuple[str, ...]:
    """Metric names (columns with a direction), optionally only searchable ones or one stage."""
    return tuple(f.name for f in FIELDS.values() if f.is_metric
                 and (searchable is None or f.searchable == searchable)
                 and (stage is None or f.stage == stage))


def direction(name: str) -> str | None:
    """``max``/``min`` of a metric; per-dataset ``psnr_<set>``/``ssim_<set>`` are ``max``."""
    f = FIELDS.get(name)
    if f is not None:
        return f.direction
    if name.startswith(("psnr_", "ssim_")) and len(name) > 5:
        return "max"
    return None


def label(name: str) -> str:
    """Axis title of a column (the name itself for unknown columns)."""
    f = FIELDS.get(name)
    return f.title if f is not None else name


def searchable(name: str) -> bool:
    f = FIELDS.get(name)
    return f is not None and f.searchable


def per_input(name: str) -> bool:
    f = FIELDS.get(name)
    return f is not None and f.per_input
