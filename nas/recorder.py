"""The driver's Tune callback: keeps ``trials.csv`` current as trials start and end."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ray import tune

from analysis.metrics import COL
from analysis.rundir import STATUS, RunDir, now_iso, read_json, started_row, write_json
from nas.trial import META_KEY

__all__ = ["Recorder", "mark_record"]


class Recorder(tune.Callback):
    """A row when a trial starts, its final values when it ends, the reason when it is stopped
    or fails. ``session`` is the :class:`nas.session.Session` (its table, progress and save)."""

    def __init__(self, session: Any, *, asha: bool) -> None:
        self.session, self.table, self.asha = session, session.table, asha

    def on_trial_start(self, iteration, trials, trial, **info) -> None:
        self.table.upsert(started_row(trial.trial_id, trial.config.get(META_KEY) or {}))
        self.session.rows.add(trial.trial_id)
        self.session.save()

    def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
        if result.get("final"):
            self.table.upsert({k: v for k, v in result.items() if k != "final"})
            self.session.progress.trial_done(result.get(COL.trial_seconds))
            self.session.save()
        elif COL.iterations in result:  # how far it got, should it be stopped here
            self.table.upsert({COL.trial_id: trial.trial_id,
                               COL.iterations: result[COL.iterations]})

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        row = self.table.rows.get(trial.trial_id)
        if row is not None and row.get(COL.status) == STATUS.running:
            last = trial.last_result or {}
            why = (f"stopped early by ASHA after validation {last.get('eval_round', '?')}"
                   if self.asha else "stopped before the end of its schedule")
            row.update({COL.status: STATUS.pruned, COL.reason: why, COL.finished_at: now_iso()})
            mark_record(self.session.run_dir, row)
            self.session.save()

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        row = self.table.upsert({COL.trial_id: trial.trial_id})
        if row.get(COL.status) in (None, STATUS.running):
            row.update({COL.status: STATUS.failed, COL.reason: _error_reason(trial),
                        COL.finished_at: now_iso()})
            self.session.save()


def mark_record(run: RunDir, row: Mapping[str, Any]) -> None:
    """Bring a stopped trial's own metrics.json in line with its row (it could not say so)."""
    path = run.metrics_json(row[COL.trial_id])
    try:
        record = read_json(path)
    except (OSError, ValueError):
        return
    record["row"] = {**record.get("row", {}), **{k: row.get(k) for k in (
        COL.status, COL.reason, COL.finished_at)}}
    write_json(path, record)


def _error_reason(trial: Any) -> str:
    """Last line of the trial's error trace (e.g. a worker killed by the OOM killer)."""
    text = None
    try:  # the driver-local copy (written by Tune before this callback); else from storage
        local = trial.error_file
        text = Path(local).read_text() if local and Path(local).is_file() else trial.get_error()
    except Exception:  # noqa: BLE001  (no reason is better than a crashed driver)
        pass
    lines = [ln.strip() for ln in str(text or "").splitlines() if ln.strip()]
    return lines[-1][:300] if lines else "the trial's worker failed"

