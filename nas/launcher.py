"""The search: Ray Tune runs the trials, Optuna samples them (multi-objective), the run directory
keeps everything (see :mod:`nas.runs`).

Design:

- Sampling: ``ray.tune.search.optuna.OptunaSearch`` with the define-by-run space of
  :mod:`search_space.space`, ``metric=[...]`` / ``mode=[...]`` from the objectives, and an Optuna
  RDB storage (``sqlite:///<run>/study.db`` by default, or ``--storage``) holding a study with a
  unique name, so the study outlives the process and can be inspected with ``optuna.load_study``.
- Anchors are *not* ``points_to_evaluate``. The paper models are fixed specs that the space
  cannot express exactly (FMEN's warm-up conv and mixed ERB/HFAB body, RFDN's aggregation...), and
  Ray's define-by-run OptunaSearch merges the function's returned constants over enqueued points
  (ray-project/ray#35319: a forced point can silently run something else). Instead a thin searcher
  (:class:`_AnchorsFirst`) hands out ``{"_meta": {"anchor": name}}`` configs before delegating to
  OptunaSearch; the same trial function builds the anchor's own spec. Anchor trials never enter
  the Optuna study (their parameters are not in its space), and trials.csv records which spec
  each trial ran (``arch_id``, ``spec``), so this is checkable.
- Pruning: with ASHA, a trial stopped early reaches Optuna as PRUNED (OptunaSearch would tell
  COMPLETE with the half-trained values, or fail on missing ones); infeasible trials are PRUNED
  too (the sampler learns they are bad), failed trials FAIL. Only a trial that finished its
  schedule is COMPLETE.
- Resume: ``trials.csv`` (+ each trial's ``metrics.json``) is the record. A resumed session
  drops unfinished trials, marks their Optuna trials FAIL, reuses the study (the sampler is
  re-seeded with ``seed + session``, so that its random start-up draws do not repeat the first
  session's), and runs only the anchors and the number of sampled trials still missing. One
  process per run directory (an OS file lock). Ctrl-C ends the session cleanly (exit 130): the
  trials it cut short are not kept as results.
- Reproducibility: the sampler is seeded, trials are numbered in suggestion order and every trial
  uses the same training seed. With ``max_concurrent: 1`` the same seed and budget give the same
  sequence of parameter sets as long as the objectives the sampler sees are deterministic (PSNR on
  CPU, params, MACs...). A measured runtime is timing noise: TPE's model-based suggestions (after
  ``n_startup_trials``) can then differ between two runs; the start-up samples cannot.
- Clusters (``--address``): trials run on the cluster's nodes, which need esrnas installed and the
  run directory on a shared filesystem (trial folders are written by the trials); relative-
  constraint references are profiled as a Ray task with a trial's resources. A cluster with Ray's
  token authentication needs ``RAY_AUTH_MODE=token`` and its token in the launching shell.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import time
import uuid
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nas.config import Budget, SearchConfig
from nas.progress import Progress, format_duration, kendall_tau
from nas.proxy import proxy_preset, proxy_train_base, resolve_predictor
from nas.runs import FINISHED, RunDir, TrialsTable, now_iso, read_json, write_json
from nas.signals import sigterm_as_interrupt
from nas.trial import META_KEY, TrialSettings, ray_trainable
from search_space.errors import InputError
from search_space.io import first_line

__all__ = ["launch", "LaunchSummary", "default_run_dir", "reconcile_study", "rdb_url",
           "summary_lines"]

# Quiet, low-overhead Ray: no new-style console tables, no per-trial result loggers. Infeasible
# and failed trials report no PSNR by design (Tune would otherwise reject their results).
_RAY_ENV = {
    "TUNE_DISABLE_STRICT_METRIC_CHECKING": "1",
    "RAY_AIR_NEW_OUTPUT": "0",
    "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1",
    "RAY_DEDUP_LOGS": "0",
    "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": "1000",
    "RAY_TRAIN_V2_ENABLED": "0",
}


@dataclass
class LaunchSummary:
    """What a session did; printed by ``nas launch``."""

    run_dir: Path
    rows: list[dict[str, Any]]
    wall_seconds: float
    trial_seconds: float
    concurrency: int
    budget: Budget
    resumed: bool = False
    interrupted: bool = False  # stopped (Ctrl-C) before the budget was spent
    lines: list[str] = field(default_factory=list)

    @property
    def overhead_seconds(self) -> float:
        """Wall time not explained by trial compute: wall - trial time / concurrency."""
        return self.wall_seconds - self.trial_seconds / max(1, self.concurrency)

    @property
    def overhead_fraction(self) -> float:
        return self.overhead_seconds / self.wall_seconds if self.wall_seconds > 0 else 0.0

    def anchor_tau(self) -> tuple[float | None, int]:
        """Kendall tau between anchors' proxy PSNR and official-weight PSNR, and n."""
        pairs = [(r["psnr_proxy"], r["psnr_official"]) for r in self.rows
                 if r.get("is_anchor") and r.get("status") == "completed"
                 and r.get("psnr_proxy") is not None and r.get("psnr_official") is not None]
        return kendall_tau([p for p, _ in pairs], [o for _, o in pairs]), len(pairs)

    def counts(self) -> dict[str, int]:
        out = {s: 0 for s in FINISHED}
        for r in self.rows:
            if r.get("status") in out:
                out[r["status"]] += 1
        return out


def default_run_dir(root: str | Path = "runs") -> Path:
    return Path(root) / time.strftime("search-%Y%m%d-%H%M%S")


# ---------------------------------------------------------------------------- entry point
def launch(config: SearchConfig | None, *, budget: Budget | None, out: str | Path | None = None,
           resume: str | Path | None = None, address: str | None = None,
           storage: str | None = None, progress: bool = True,
           trainable: Callable[..., None] | None = None) -> LaunchSummary:
    """Run (or continue) a search until its budget is spent.

    Args:
        config: The search config (ignored with ``resume``: the run's own ``search.yaml``).
        budget: Trials or wall clock; with ``resume``, None keeps the run's budget.
        out: Run directory of a new search (default ``runs/search-<time>``).
        resume: Run directory to continue.
        address: Address of an existing Ray cluster (default: a local Ray instance).
        storage: Optuna RDB URL (default: SQLite in the run directory).
        progress: Print the live progress line on stderr.
        trainable: Trial function ``fn(config, settings)`` (default :func:`ray_trainable`).
    """
    t_start = time.monotonic()
    run, config, budget, state = _open_run(config, budget, out, resume, storage)
    with _exclusive(run):
        return _launch(run, config, budget, state, t_start, resumed=resume is not None,
                       address=address, progress=progress,
                       trainable=trainable or ray_trainable)


@contextmanager
def _exclusive(run: RunDir) -> Iterator[None]:
    """One ``nas launch`` per run directory (an OS lock: released even on kill -9)."""
    from filelock import FileLock, Timeout

    lock = FileLock(str(run.path / ".launch.lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise InputError(f"{run.path}: another `nas launch` is working on this run; let it "
                         f"finish or stop it first") from None
    try:
        yield
    finally:
        lock.release()


def _launch(run: RunDir, config: SearchConfig, budget: Budget, state: dict[str, Any],
            t_start: float, *, resumed: bool, address: str | None, progress: bool,
            trainable: Callable[..., None]) -> LaunchSummary:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    table = _settle_table(run)
    study = optuna.create_study(study_name=state["study_name"], storage=_storage_url(run, state),
                                directions=[_direction(m) for m in config.modes],
                                load_if_exists=True)
    reconcile_study(study, table, config)
    work = _Work.left(config, budget, state, table)
    elapsed_before = float(state.get("elapsed_s", 0.0))
    state.setdefault("sessions", []).append({"started_at": now_iso(), "resumed": resumed})
    run.write_state(state)
    session = _Session(run, config, budget, state, table, work, t_start, elapsed_before,
                       progress=progress, trainable=trainable)
    if not work.nothing:
        for key, value in _RAY_ENV.items():
            os.environ.setdefault(key, value)
        import ray

        started_ray = _init_ray(address)
        try:
            session.run()
        finally:
            if started_ray:
                ray.shutdown()
    return session.finish(study, resumed=resumed)


def _open_run(config: SearchConfig | None, budget: Budget | None, out: str | Path | None,
              resume: str | Path | None, storage: str | None):
    if resume is not None:
        run = RunDir.open(resume)
        state = run.read_state()
        config = SearchConfig.from_file(run.search_yaml) if config is None else config
        if storage is not None and storage != state.get("storage"):
            raise InputError(f"--storage: the run uses {state.get('storage') or run.sqlite_url}; "
                             f"a resumed run keeps its storage")
        if budget is not None:
            state["budget"] = budget.to_dict()
        budget = Budget.from_dict(state["budget"])
        return run, config, budget, state
    if budget is None:
        raise InputError("--budget: required for a new search (e.g. --budget 8 or --budget 45m)")
    config = config or SearchConfig.defaults()
    out_path = Path(out) if out is not None else default_run_dir()
    if storage is not None:
        _check_storage(storage)
    state = {
        "name": out_path.name,
        "study_name": f"{out_path.name}-{uuid.uuid4().hex[:8]}",
        "storage": storage,
        "budget": budget.to_dict(),
        "seed": config.seed,
        "created_at": now_iso(),
        "sessions": [],
    }
    run = RunDir.create(out_path, config_yaml=config.to_yaml(), state=state)
    return run, config, budget, run.read_state()


def rdb_url(url: str) -> str:
    """``postgresql://`` with the installed driver: SQLAlchemy 2.1 defaults to psycopg (3);
    use psycopg2 when only that one is installed (the ``test`` extra ships psycopg2-binary)."""
    import importlib.util

    scheme, sep, rest = url.partition("://")
    if scheme == "postgresql" and importlib.util.find_spec("psycopg") is None \
            and importlib.util.find_spec("psycopg2") is not None:
        return f"postgresql+psycopg2{sep}{rest}"
    return url


def _check_storage(url: str) -> None:
    import optuna

    try:
        optuna.storages.RDBStorage(rdb_url(url))
    except Exception as e:  # noqa: BLE001  (SQLAlchemy/driver errors of many kinds)
        raise InputError(f"--storage: cannot open {url!r} ({first_line(e)})") from None


def _init_ray(address: str | None) -> bool:
    import ray

    if ray.is_initialized():
        return False
    kwargs: dict[str, Any] = dict(include_dashboard=False, log_to_driver=False,
                                  logging_level=logging.ERROR, configure_logging=True)
    if address:
        try:
            ray.init(address=address, **kwargs)
        except (ConnectionError, RuntimeError) as e:
            raise InputError(f"--address: cannot connect to the Ray cluster at {address!r} "
                             f"({_connection_problem(e)})") from None
    else:
        ray.init(num_cpus=os.cpu_count() or 1, **kwargs)
    sigterm_as_interrupt()  # ray.init replaced it: SIGTERM is Ctrl-C again (nas/signals.py)
    return True


def _connection_problem(e: Exception) -> str:
    text = str(e)
    if "InvalidAuthToken" in text or "Authentication token" in text:
        return ("the cluster uses token authentication: set RAY_AUTH_MODE=token and its token "
                "(RAY_AUTH_TOKEN or ~/.ray/auth_token)")
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[0][:200] if lines else type(e).__name__


# ---------------------------------------------------------------------------- the session
def _storage_url(run: RunDir, state: Mapping[str, Any]) -> str:
    return rdb_url(state.get("storage") or run.sqlite_url)


def _settle_table(run: RunDir) -> TrialsTable:
    """The table of finished trials; trials that never finished (killed) are forgotten with their
    partial folders, so that they are run again."""
    table = TrialsTable.load(run)
    for tid in table.drop_unfinished():
        shutil.rmtree(run.trial_dir(tid), ignore_errors=True)
    _remove_orphan_folders(run, table)
    table.write()
    return table


@dataclass(frozen=True)
class _Work:
    """What this session still has to do."""

    anchors: tuple[str, ...]
    sampled: int | None  # None: as many as the wall clock allows
    seconds: float | None

    @classmethod
    def left(cls, config: SearchConfig, budget: Budget, state: Mapping[str, Any],
             table: TrialsTable) -> _Work:
        done = {r.get("anchor") for r in table.finished() if r.get("is_anchor")}
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


class _Session:
    """One ``nas launch`` process working on a run: the Tuner, then the bookkeeping."""

    def __init__(self, run: RunDir, config: SearchConfig, budget: Budget, state: dict[str, Any],
                 table: TrialsTable, work: _Work, t_start: float, elapsed_before: float, *,
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

        config, work = self.config, self.work
        cpus, gpus = _trial_resources(config, ray.cluster_resources())
        settings, n_evals = _trial_settings(self.run_dir, config, cpus, gpus)
        searcher = _make_searcher(config, _storage_url(self.run_dir, self.state),
                                  self.state["study_name"], list(work.anchors), work.sampled,
                                  self.table.next_number(), len(self.state["sessions"]) - 1)
        recorder = _make_recorder(self, asha=config.scheduler.type == "asha")
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

    def save(self) -> None:
        """trials.csv, the elapsed time in state.json (a wall-clock budget survives kill -9) and
        the progress line."""
        self.table.write()
        self.state["elapsed_s"] = self.elapsed_before + time.monotonic() - self.t_start
        self.run_dir.write_state(self.state)
        self.progress.update(self.table.sorted_rows())

    def finish(self, study: Any, *, resumed: bool) -> LaunchSummary:
        self.progress.close()
        wall = time.monotonic() - self.t_start
        interrupted = not self._budget_spent(self.elapsed_before + wall)
        for row in list(self.table.rows.values()):
            if row.get("status") != "running":
                continue
            if interrupted:  # unfinished: forgotten here, run again by --resume
                del self.table.rows[row["trial_id"]]
            else:  # still running when the wall clock ran out
                row.update(status="pruned", reason="stopped: wall-clock budget reached",
                           finished_at=now_iso())
                _mark_record(self.run_dir, row)
        self.table.write()
        reconcile_study(study, self.table, self.config)
        self.state["elapsed_s"] = self.elapsed_before + wall
        self.state["sessions"][-1].update(ended_at=now_iso(), wall_s=round(wall, 3))
        self.run_dir.write_state(self.state)
        rows = self.table.sorted_rows()
        trial_seconds = sum(float(r.get("trial_seconds") or 0.0) for r in rows
                            if r["trial_id"] in self.rows)
        summary = LaunchSummary(self.run_dir.path, rows, wall, trial_seconds,
                                self.config.resources.max_concurrent, self.budget,
                                resumed=resumed, interrupted=interrupted)
        summary.lines = summary_lines(summary, self.config)
        return summary

    def _budget_spent(self, elapsed: float) -> bool:
        """Every anchor and the budget's trials finished, or the wall clock ran out."""
        if self.budget.seconds is not None and elapsed >= self.budget.seconds - 1.0:
            return True
        left = _Work.left(self.config, self.budget, self.state, self.table)
        return left.sampled == 0 and not left.anchors


def _trial_settings(run: RunDir, config: SearchConfig, cpus: float,
                    gpus: float) -> tuple[TrialSettings, int]:
    """The settings every trial gets, and the number of validations per trial."""
    train_base, n_evals, val_sets = proxy_train_base(config, gpus)
    predictor = _calibration(run, config, train_base, gpus)
    p = config.profile
    settings = TrialSettings(
        run_dir=str(run.path), scale=config.scale, train_base=train_base,
        profile={"input_hw": list(p.resolved_input_hw(gpus)), "warmup": p.warmup,
                 "repeats": p.repeats, "runtime": p.runtime, "memory": p.memory},
        constraints=config.constraints, seed=config.seed, threads=max(1, int(cpus)),
        objectives=tuple(config.objectives),
        # psnr_official is measured on what psnr means: the predictor's Set5, else the proxy's
        val_sets=("Set5",) if predictor is not None else tuple(val_sets),
        predictor=None if predictor is None else predictor.to_dict())
    return _with_references(settings, run, config, cpus, gpus), n_evals


def _calibration(run: RunDir, config: SearchConfig, train_base: dict[str, Any], gpus: float):
    """The PSNR predictor of this run; what it is (and how faithful) goes to calibration.json."""
    from nas.fidelity import shipped_fidelity

    predictor, why = resolve_predictor(config, train_base, gpus)
    record: dict[str, Any] = {"calibrated": predictor is not None, "predictor": why}
    if predictor is not None and config.proxy.predictor == "auto":
        doc = shipped_fidelity(proxy_preset(config, gpus))
        record["fidelity"] = {k: doc[k] for k in ("preset", "n", "pairs", "min_gap_db",
                                                   "predictor_beats_baselines", "scores")}
    write_json(run.calibration_json, record)
    return predictor


def _direction(mode: str) -> str:
    return "maximize" if mode == "max" else "minimize"


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
    from dataclasses import replace

    import ray

    from nas.trial import profile_anchor

    names = {c.anchor for c in config.constraints if c.anchor and c.stage != "trained"}
    if config.uses_ntire_score:
        names.add(config.ntire.baseline)
        settings = replace(settings, ntire={"baseline": config.ntire.baseline,
                                            "weights": dict(config.ntire.weights)})
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


def _sampler(config: SearchConfig, seed: int):
    import optuna

    s = config.sampler
    if s.type == "nsga2":
        return optuna.samplers.NSGAIISampler(population_size=s.population_size, seed=seed)
    if s.type == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(
        seed=seed, n_startup_trials=s.n_startup_trials, multivariate=True, group=True,
        constant_liar=config.resources.max_concurrent > 1)


# ---------------------------------------------------------------------------- Optuna bookkeeping
def reconcile_study(study: Any, table: TrialsTable, config: SearchConfig) -> None:
    """Finish Optuna trials left RUNNING (driver killed, wall-clock stop) from the table:
    completed -> COMPLETE with the objective values, infeasible/pruned -> PRUNED, failed or
    lost -> FAIL."""
    from optuna.trial import TrialState

    by_number = {r.get("optuna_number"): r for r in table.rows.values()
                 if r.get("optuna_number") is not None}
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        row = by_number.get(trial.number)
        status = row.get("status") if row else None
        values = None
        if status == "completed":
            values = [row.get(m) for m in config.objectives]
            if any(v is None for v in values):
                status, values = "failed", None
        state = {"completed": TrialState.COMPLETE, "pruned": TrialState.PRUNED,
                 "infeasible": TrialState.PRUNED}.get(status, TrialState.FAIL)
        study.tell(trial.number, values, state=state, skip_if_finished=True)


def _make_searcher(config: SearchConfig, storage_url: str, study_name: str, anchors: list[str],
                   sampled_left: int | None, first_number: int, session: int):
    import optuna
    from ray.tune.search import Searcher
    from ray.tune.search.optuna import OptunaSearch

    from search_space.space import suggest_arch

    space = dict(config.space)

    def define_by_run(trial: Any) -> None:
        suggest_arch(trial, space)
        return None  # no constants: they would override enqueued values (ray#35319)

    optuna_search = OptunaSearch(
        space=define_by_run, metric=config.metric_names, mode=config.modes,
        sampler=_sampler(config, config.seed + session), study_name=study_name,
        storage=optuna.storages.RDBStorage(storage_url))

    class _AnchorsFirst(Searcher):
        """Anchors first (outside Optuna), then Optuna's samples until the budget is used."""

        def __init__(self) -> None:
            super().__init__(metric=config.metric_names, mode=config.modes)
            self.anchors = list(anchors)
            self.sampled_left = sampled_left
            self.next_number = first_number
            self.anchor_trials: set[str] = set()

        def set_search_properties(self, metric, mode, config, **spec) -> bool:
            return True  # metric, mode and space are fixed at construction

        def suggest(self, trial_id: str):
            if self.anchors:
                name = self.anchors.pop(0)
                self.anchor_trials.add(trial_id)
                return {META_KEY: self._meta(anchor=name)}
            if self.sampled_left is not None and self.sampled_left <= 0:
                return Searcher.FINISHED
            params = optuna_search.suggest(trial_id)
            if self.sampled_left is not None:
                self.sampled_left -= 1
            number = optuna_search._ot_trials[trial_id].number
            return {**params, META_KEY: self._meta(optuna_number=number)}

        def _meta(self, *, anchor: str | None = None, optuna_number: int | None = None):
            meta = {"number": self.next_number, "anchor": anchor, "optuna_number": optuna_number}
            self.next_number += 1
            return meta

        def on_trial_result(self, trial_id: str, result: dict) -> None:
            pass  # multi-objective Optuna takes no intermediate values

        def on_trial_complete(self, trial_id: str, result: dict | None = None,
                              error: bool = False) -> None:
            if trial_id in self.anchor_trials or trial_id not in optuna_search._ot_trials:
                return
            _tell(optuna_search, trial_id, result, error, config)

        def save(self, checkpoint_path: str) -> None:
            write_json(checkpoint_path, {"resume": "use `nas launch --resume <run dir>`"})

        def restore(self, checkpoint_path: str) -> None:
            pass

    return _AnchorsFirst()


def _tell(optuna_search: Any, trial_id: str, result: dict | None, error: bool,
          config: SearchConfig) -> None:
    """COMPLETE only for a trial that finished its schedule; PRUNED for early-stopped and
    infeasible trials; FAIL for failures."""
    from optuna.trial import TrialState

    ot_trial = optuna_search._ot_trials[trial_id]
    result = result or {}
    status = result.get("status") if result.get("final") else ("failed" if error else "pruned")
    for key in ("status", "reason", "arch_id"):
        if result.get(key) is not None:
            ot_trial.set_user_attr(key, result[key])
    ot_trial.set_user_attr("trial_id", trial_id)
    values = [result.get(m) for m in config.objectives]
    if status == "completed" and all(v is not None for v in values):
        optuna_search._ot_study.tell(ot_trial, values, skip_if_finished=True)
    else:
        state = TrialState.PRUNED if status in ("pruned", "infeasible") else TrialState.FAIL
        optuna_search._ot_study.tell(ot_trial, state=state, skip_if_finished=True)
    optuna_search._completed_trials.add(trial_id)


# ---------------------------------------------------------------------------- driver callback
def _make_recorder(session: _Session, *, asha: bool):
    from ray import tune

    table = session.table

    class _Recorder(tune.Callback):
        """Keeps trials.csv current: a row when a trial starts, its final values when it ends."""

        def on_trial_start(self, iteration, trials, trial, **info) -> None:
            meta = trial.config.get(META_KEY) or {}
            anchor = meta.get("anchor")
            table.upsert({"trial_id": trial.trial_id, "number": meta.get("number"),
                          "status": "running", "reason": "", "is_anchor": anchor is not None,
                          "anchor": anchor or "", "optuna_number": meta.get("optuna_number"),
                          "started_at": now_iso()})
            session.rows.add(trial.trial_id)
            session.save()

        def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
            if result.get("final"):
                table.upsert({k: v for k, v in result.items() if k != "final"})
                session.progress.trial_done(result.get("trial_seconds"))
                session.save()
            elif "iterations" in result:  # how far it got, should it be stopped here
                table.upsert({"trial_id": trial.trial_id, "iterations": result["iterations"]})

        def on_trial_complete(self, iteration, trials, trial, **info) -> None:
            row = table.rows.get(trial.trial_id)
            if row is not None and row.get("status") == "running":
                last = trial.last_result or {}
                why = (f"stopped early by ASHA after validation {last.get('eval_round', '?')}"
                       if asha else "stopped before the end of its schedule")
                row.update(status="pruned", reason=why, finished_at=now_iso())
                _mark_record(session.run_dir, row)
                session.save()

        def on_trial_error(self, iteration, trials, trial, **info) -> None:
            row = table.upsert({"trial_id": trial.trial_id})
            if row.get("status") in (None, "running"):
                row.update(status="failed", reason=_error_reason(trial), finished_at=now_iso())
                session.save()

    return _Recorder()


def _mark_record(run: RunDir, row: Mapping[str, Any]) -> None:
    """Bring a stopped trial's own metrics.json in line with its row (it could not say so)."""
    path = run.trial_dir(row["trial_id"]) / "metrics.json"
    try:
        record = read_json(path)
    except (OSError, ValueError):
        return
    record["row"] = {**record.get("row", {}), **{k: row.get(k) for k in (
        "status", "reason", "finished_at")}}
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


# ---------------------------------------------------------------------------- summary
def _calibration_line(run_dir: Path) -> str:
    try:
        record = read_json(RunDir(run_dir).calibration_json)
    except (OSError, ValueError):
        return "psnr: raw proxy PSNR (no calibration record)"
    if not record.get("calibrated"):
        return f"psnr: raw proxy PSNR; {record.get('predictor')}"
    fid = record.get("fidelity")
    if not fid:
        return f"psnr: predicted converged PSNR ({record['predictor']})"
    p = fid["scores"]["predictor"]
    return (f"psnr: predicted converged PSNR ({record['predictor']}; leave-one-out over "
            f"{fid['n']} references: Kendall tau {p['kendall_tau']:+.2f}, pairwise accuracy "
            f"{p['pairwise_accuracy']:.2f}; `nas fidelity --shipped`)")


def summary_lines(summary: LaunchSummary, config: SearchConfig) -> list[str]:
    c = summary.counts()
    lines = [
        f"run: {summary.run_dir}",
        "trials: " + ", ".join(f"{v} {k}" for k, v in c.items()) +
        f" ({sum(1 for r in summary.rows if r.get('is_anchor'))} anchors; "
        f"budget {summary.budget.describe()})",
        f"wall time {format_duration(summary.wall_seconds)}; harness overhead "
        f"{summary.overhead_seconds:.1f} s = {100 * summary.overhead_fraction:.1f}% "
        f"(wall - trial compute / {summary.concurrency})",
    ]
    best = [r for r in summary.rows if r.get("status") == "completed" and r.get("psnr") is not None
            and not r.get("is_anchor")]
    if best:
        top = max(best, key=lambda r: r["psnr"])
        lines.append(f"best sampled psnr {top['psnr']:.3f} dB (trial {top['number']}, "
                     f"arch {top['arch_id']}, {top.get('params')} params, "
                     f"{top.get('runtime_ms') or float('nan'):.1f} ms)")
    failed = [r for r in summary.rows if r.get("status") == "failed"]
    for r in failed[:5]:
        lines.append(f"trial {r['number']} failed: {r.get('reason') or '?'} "
                     f"(see trials/{r['trial_id']}/train.log)")
    if len(failed) > 5:
        lines.append(f"... and {len(failed) - 5} more failed trials (trials.csv)")
    lines.append(_calibration_line(summary.run_dir))
    tau, n = summary.anchor_tau()
    if n >= 2 and tau is not None:
        lines.append(f"proxy fidelity: Kendall tau {tau:+.2f} between anchors' proxy psnr and "
                     f"official-weight psnr (n={n}; with n < 10 only a rough indication)")
    else:
        lines.append(f"proxy fidelity: not computed ({n} anchors with official weights completed;"
                     f" needs >= 2)")
    if summary.interrupted:
        lines.append(f"interrupted before the budget was spent; continue with "
                     f"`nas launch --resume {summary.run_dir}`")
    else:
        lines.append(f"next: nas pareto {summary.run_dir}")
    return lines
