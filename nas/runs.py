"""The run directory and ``trials.csv``: see :mod:`analysis.rundir` (shared with the readers)."""

from analysis.rundir import (  # noqa: F401
    COLUMNS,
    FINISHED,
    STATUSES,
    RunDir,
    TrialDir,
    TrialsTable,
    now_iso,
    read_json,
    read_trials,
    write_atomic,
    write_json,
)

__all__ = ["COLUMNS", "FINISHED", "STATUSES", "RunDir", "TrialDir", "TrialsTable", "now_iso",
           "read_json", "read_trials", "write_atomic", "write_json"]
