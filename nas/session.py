"""One session of ``nas launch`` on a run: the Tune run (trial resources and settings, the
scheduler, the searcher, the recorder) and the budget bookkeeping around it."""

from __future__ import annotations

import importlib.util
import logging
import math
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from analysis.metrics import COL
from analysis.rundir import STATUS, RunDir, TrialsTable, now_iso, read_json, write_json
from nas.budget import Budget
from nas.config import SearchConfig
from nas.progress import Progress
from nas.proxy import device_kind, proxy_preset, proxy_train_base, resolve_predictor
from nas.summary import LaunchSummary, summary_lines
from nas.trial_settings import TrialSettings
from search_space.errors import InputError
from search_space.io import first_line

__all__ = ["Session", "Work", "measured_settings", "rdb_url", "runtime_baseline", "settle_table",
           "storage_url"]


def rdb_url(url: str) -> str:
    """``postgresql://`` with the installed driver: SQLAlchemy 2.1 defaults to psycopg (3);
    use psycopg2 when only that one is installed (the ``test`` extra ships psycopg2-binary)."""
    scheme, sep, rest = url.partition("://")
    if scheme == "postgresql" and importlib.util.find_spec("psycopg") is None \
            and importlib.util.find_spec("psycopg2") is not None:
        return f"postgresql+psycopg2{sep}{rest}"
    return url


def storage_url(run: RunDir, state: Mapping[str, Any]) -> str:
    return rdb_url(state.get("storage") or run.sqlite_url)


def measured_settings(config: SearchConfig, settings: TrialSettings,
                      gpus: float) -> dict[str, Any]:
    """What every trial of this session measures with, resolved (never ``auto``): recorded in
    state.json and the study, and read by plots and the report."""
    h, w = settings.profile.input_hw
    device = settings.train_value("device")
    if device == "auto":  # Ray hides the GPUs from a trial that was given none
        device = "cuda" if gpus > 0 else "cpu"
    return {"profile_hw": f"{int(h)}x{int(w)}", "device": str(device),
            "threads": settings.threads, "preset": proxy_preset(config, gpus)}


def settle_table(run: RunDir) -> TrialsTable:
    """The table of finished trials; trials that never finished (killed) are forgotten with their
    partial folders, so that they are run again."""
    table = TrialsTable.load(run)
    for tid in table.drop_unfinished():
        shutil.rmtree(run.trial_dir(tid), ignore_errors=True)
    _remove_orphan_folders(run, table)
    table.write()
    return table


@dataclass(frozen=True)
class Work:
    """What this session still has to do."""

    anchors: tuple[str, ...]
    sampled: int | None  # None: as many as the wall clock allows
    seconds: float | None

    @classmethod
    def left(cls, config: SearchConfig, budget: Budget, state: Mapping[str, Any],
             table: TrialsTable) -> Work:
        done = {r.get(COL.anchor) for r in table.finished() if r.get(COL.is_anchor)}
        sampled = None if budget.trials is None else max(
            0, budget.trials - table.count(anchors=False))
        seconds = None if budget.seconds is None else max(
            0.0, budget.seconds - float(state.get("elapsed_s", 0.0)))
        return cls(tuple(a for a in config.anchors if a not in done), sampled, seconds)

    @property
    def nothing(self) -> bool:
        return (self.sampled == 0 and not self.anchors) or self.seconds == 0

    @property
    def num_samples(self) -> int:
        return -1 if self.sampled is None else self.sampled + len(self.anchors)


class Session:
    """One ``nas launch`` process working on a run: the Tuner, then the bookkeeping."""

    def __init__(self, run: RunDir, config: SearchConfig, budget: Budget, state: dict[str, Any],
                 table: TrialsTable, work: Work, t_start: float, elapsed_before: float, *,
                 progress: bool, trainable: Callable[..., None]) -> None:
        self.run_dir, self.config, self.budget, self.state = run, config, budget, state
        self.table, self.work, self.t_start = table, work, t_start
        self.elapsed_before = elapsed_before
        self.trainable = trainable
        self.rows: set[str] = set()  # trials started in this session
        total = None if budget.trials is None else budget.trials + len(config.anchors)
        deadline = None if work.seconds is None else time.monotonic() + work.seconds
        self.progress = Progress(total=total, deadline=deadline,
                                 concurrency=config.resources.max_concurrent,
                                 objectives=config.objectives, enabled=progress)

    def run(self) -> None:
        import ray
        from ray import tune

        from nas.recorder import Recorder
        from nas.searcher import AnchorsFirst, make_sampler, open_storage, open_study

        config, work = self.config, self.work
        session = len(self.state["sessions"]) - 1
        cpus, gpus = _trial_resources(config, ray.cluster_resources())
        settings, n_evals = _trial_settings(self.run_dir, config, cpus, gpus,
                                            self.progress.enabled)
        self._start_clock()  # a wall-clock budget is the search's: calibration is not in it
        self.state["measured"] = measured_settings(config, settings, gpus)
        self.run_dir.write_state(self.state)
        storage = open_storage(storage_url(self.run_dir, self.state))
        # re-seeded per session: a resumed run's random start-up draws do not repeat the first's
        study = open_study(config, storage, self.state["study_name"],
                           sampler=make_sampler(config, config.seed + session),
                           attrs={"run": self.run_dir.name, **self.state["measured"]})
        searcher = AnchorsFirst(study, storage, config, anchors=work.anchors,
                                sampled_left=work.sampled, first_number=self.table.next_number())
        recorder = Recorder(self, asha=config.scheduler.type == "asha")
        tuner = tune.Tuner(
            tune.with_resources(tune.with_parameters(self.trainable, settings=settings),
                                {"cpu": cpus, "gpu": gpus}),
            tune_config=tune.TuneConfig(
                search_alg=searcher, scheduler=_scheduler(config, n_evals),
                num_samples=work.num_samples, max_concurrent_trials=config.resources.max_concurrent,
                time_budget_s=work.seconds, reuse_actors=True,
                trial_dirname_creator=lambda trial: trial.trial_id),
            run_config=tune.RunConfig(
                name=f"session-{len(self.state['sessions']) - 1}",
                storage_path=str(self.run_dir.tune_dir), verbose=0, callbacks=[recorder],
                failure_config=tune.FailureConfig(max_failures=0)),
        )
        # A failed trial is recorded with its reason (trials.csv, train.log, tune/.../error.txt)
        # and listed at the end; Tune's own error lines would break the progress line.
        logging.getLogger("ray.tune.execution.tune_controller").setLevel(logging.CRITICAL)
        tuner.fit()

    def _start_clock(self) -> None:
        """The session's clock and its budget's deadline start now."""
        self.t_start = time.monotonic()
        if self.work.seconds is not None:
            self.progress.deadline = self.t_start + self.work.seconds

    def save(self) -> None:
        """trials.csv, the elapsed time in state.json (a wall-clock budget survives kill -9) and
        the progress line."""
        self.table.write()
        self.state["elapsed_s"] = self.elapsed_before + time.monotonic() - self.t_start
        self.run_dir.write_state(self.state)
        self.progress.update(self.table.sorted_rows())

    def finish(self, study: Any, *, resumed: bool) -> LaunchSummary:
        from nas.recorder import mark_record
        from nas.searcher import reconcile_study

        self.progress.close()
        wall = time.monotonic() - self.t_start
        interrupted = not self._budget_spent(self.elapsed_before + wall)
        for row in list(self.table.rows.values()):
            if row.get(COL.status) != STATUS.running:
                continue
            if interrupted:  # unfinished: forgotten here, run again by --resume
                del self.table.rows[row[COL.trial_id]]
            else:  # still running when the wall clock ran out
                row.update({COL.status: STATUS.pruned, COL.finished_at: now_iso(),
                            COL.reason: "stopped: wall-clock budget reached"})
                mark_record(self.run_dir, row)
        self.table.write()
        reconcile_study(study, self.table, self.config)
        self.state["elapsed_s"] = self.elapsed_before + wall
        self.state["sessions"][-1].update(ended_at=now_iso(), wall_s=round(wall, 3))
        self.run_dir.write_state(self.state)
        rows = self.table.sorted_rows()
        trial_seconds = sum(float(r.get(COL.trial_seconds) or 0.0) for r in rows
                            if r[COL.trial_id] in self.rows)
        summary = LaunchSummary(self.run_dir.path, rows, wall, trial_seconds,
                                self.config.resources.max_concurrent, self.budget,
                                resumed=resumed, interrupted=interrupted)
        summary.lines = summary_lines(summary, self.config)
        return summary

    def _budget_spent(self, elapsed: float) -> bool:
        """Every anchor and the budget's trials finished, or the wall clock ran out."""
        if self.budget.seconds is not None and elapsed >= self.budget.seconds - 1.0:
            return True
        left = Work.left(self.config, self.budget, self.state, self.table)
        return left.sampled == 0 and not left.anchors


def _trial_settings(run: RunDir, config: SearchConfig, cpus: float, gpus: float,
                    progress: bool) -> tuple[TrialSettings, int]:
    """The settings every trial gets, and the number of validations per trial."""
    train_base, n_evals, val_sets = proxy_train_base(config, gpus)
    predictor = _calibration(run, config, train_base, cpus, gpus, progress)
    p = config.profile
    settings = TrialSettings(
        run_dir=str(run.path), scale=config.scale, train_base=train_base,
        profile=replace(p, input_hw=p.resolved_input_hw(gpus)),
        constraints=config.constraints, seed=config.seed, threads=max(1, int(cpus)),
        objectives=tuple(config.objectives),
        # psnr_official is measured on what psnr means: the predictor's Set5, else the proxy's
        val_sets=("Set5",) if predictor is not None else tuple(val_sets),
        predictor=None if predictor is None else predictor.to_dict())
    return _with_references(settings, run, config, cpus, gpus), n_evals


def _calibration(run: RunDir, config: SearchConfig, train_base: dict[str, Any], cpus: float,
                 gpus: float, progress: bool):
    """The PSNR predictor of this run; what it is (and how faithful) goes to calibration.json,
    with the model itself, so that a resumed run scores its trials with the predictor its first
    trials were scored with (not with a newer one shipped since). Without a shipped predictor
    for this proxy the search calibrates one first (``proxy.calibrate``, :mod:`nas.calibration`).
    """
    from analysis.predictor import Predictor
    from nas.calibration import calibrate
    from nas.fidelity import FIDELITY_KEYS, shipped_fidelity

    earlier = read_json(run.calibration_json) if run.calibration_json.exists() else {}
    if "model" in earlier:  # a resumed run (None: it was uncalibrated and stays so)
        try:
            return None if earlier["model"] is None else Predictor.from_dict(earlier["model"])
        except (KeyError, TypeError, ValueError) as e:
            raise InputError(f"{run.calibration_json}: model: not a predictor written by nas "
                             f"launch ({first_line(e)})") from None
    device = device_kind(train_base, gpus)
    predictor, why = resolve_predictor(config, train_base, device, gpus)
    auto = config.proxy.predictor == "auto"
    if predictor is None and auto and config.proxy.calibration_refs is not None:
        predictor, record = calibrate(run, config, train_base, cpus, gpus, device,
                                      progress=progress)
    elif predictor is None:
        record = {"calibrated": False, "predictor": why + (
            "; proxy.calibrate: off, so psnr is the raw proxy PSNR (auto calibrates one)"
            if auto else "")}
    else:
        record = {"calibrated": True, "predictor": why}
        if auto:
            doc = shipped_fidelity(proxy_preset(config, gpus), config.scale)
            record["fidelity"] = {k: doc.get(k) for k in FIDELITY_KEYS}
    record["model"] = None if predictor is None else predictor.to_dict()
    write_json(run.calibration_json, record)
    return predictor


def _trial_resources(config: SearchConfig, cluster: Mapping[str, float]) -> tuple[float, float]:
    res = config.resources
    cpus = res.cpus_per_trial
    if cpus is None:
        cpus = max(1.0, math.floor(float(cluster.get("CPU", 1)) / res.max_concurrent))
    if res.gpus_per_trial > float(cluster.get("GPU", 0)):
        raise InputError(f"--gpus-per-trial: {res.gpus_per_trial:g} requested, but the Ray "
                         f"cluster has {cluster.get('GPU', 0):g} GPUs")
    return float(cpus), float(res.gpus_per_trial)


def _with_references(settings: TrialSettings, run: RunDir, config: SearchConfig,
                     cpus: float, gpus: float) -> TrialSettings:
    """Profile the anchors that relative cost constraints and ``ntire_score`` name, once per run
    (reused on resume), as a Ray task with a trial's resources, so that they are timed like the
    trials."""
    import ray

    from nas.trial import profile_anchor

    names = {c.anchor for c in config.constraints if c.anchor and c.stage != "trained"}
    if config.uses_ntire_score:
        names.add(config.ntire.baseline)
        settings = replace(settings, ntire={"baseline": config.ntire.baseline,
                                            "weights": dict(config.ntire.weights)})
    settings = replace(settings, runtime_baseline=runtime_baseline(config))
    names = sorted(names)
    if not names:
        return settings
    refs = read_json(run.references_json) if run.references_json.is_file() else {}
    missing = [n for n in names if n not in refs]
    if missing:
        task = ray.remote(num_cpus=cpus, num_gpus=gpus)(profile_anchor)
        profiles = ray.get([task.remote(n, settings) for n in missing])
        refs.update(zip(missing, profiles, strict=True))
        write_json(run.references_json, refs)
    return replace(settings, references=refs)


def runtime_baseline(config: SearchConfig) -> str | None:
    """The anchor every trial's runtime is timed against, paired (docs/measurement.md): the
    NTIRE score's baseline, else the anchor of the first relative runtime constraint; None when
    the search compares runtimes with no anchor (the config refuses both without
    ``profile.runtime``)."""
    if config.uses_ntire_score:
        return config.ntire.baseline
    return next((c.anchor for c in config.constraints
                 if c.metric == COL.runtime_ms and c.anchor), None)


def _remove_orphan_folders(run: RunDir, table: TrialsTable) -> None:
    """Trial folders of trials that never finished (killed) are partial: remove them."""
    if not run.trials_dir.is_dir():
        return
    for folder in run.trials_dir.iterdir():
        if folder.is_dir() and folder.name not in table.rows:
            shutil.rmtree(folder, ignore_errors=True)


def _scheduler(config: SearchConfig, n_evals: int):
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

    sched = config.scheduler
    if sched.type == "none":
        return FIFOScheduler()
    # time = validation round; the final report comes at n_evals + 1 (see nas.trial)
    return ASHAScheduler(time_attr="eval_round", metric="val_psnr", mode="max",
                         max_t=n_evals + 1, grace_period=min(sched.grace_period, n_evals),
                         reduction_factor=sched.reduction_factor)

