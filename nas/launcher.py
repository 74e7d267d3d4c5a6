"""The search: Ray Tune runs the trials, Optuna samples them (multi-objective), the run directory
keeps everything (see :mod:`analysis.rundir`).

Design:

- Modules: this one opens (or resumes) the run and starts Ray; :mod:`nas.session` runs the
  Tuner and keeps the budget; :mod:`nas.searcher` is the adapter to Ray's searcher interface and
  Optuna; :mod:`nas.recorder` keeps trials.csv current; :mod:`nas.summary` says what happened.
- Sampling: an Optuna study driven by ask-and-tell with the define-by-run space of
  :mod:`search_space.space`, directions from the objectives, and an Optuna RDB storage
  (``sqlite:///<run>/study.db`` by default, or ``--storage``) holding a study with a unique name,
  so the study outlives the process and can be inspected with ``optuna.load_study`` or
  optuna-dashboard (metric names, the measurement settings as study attributes, validation PSNR
  as intermediate values).
- Anchors are *not* ``points_to_evaluate``. The paper models are fixed specs that the space
  cannot express exactly (FMEN's warm-up conv and mixed ERB/HFAB body, RFDN's aggregation...), and
  Ray's define-by-run OptunaSearch merges the function's returned constants over enqueued points
  (ray-project/ray#35319: a forced point can silently run something else). Instead the searcher
  (:class:`nas.searcher.AnchorsFirst`) hands out ``{"_meta": {"anchor": name}}`` configs before
  asking Optuna; the same trial function builds the anchor's own spec. Anchor trials never enter
  the Optuna study (their parameters are not in its space), and trials.csv records which spec
  each trial ran (``arch_id``, ``spec``), so this is checkable.
- Pruning: with ASHA, a trial stopped early reaches Optuna as PRUNED (not COMPLETE with its
  half-trained values); infeasible trials are PRUNED too (the sampler learns they are bad),
  failed trials FAIL. Only a trial that finished its schedule is COMPLETE.
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
import os
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from analysis.rundir import RunDir, now_iso
from nas.budget import Budget
from nas.config import SearchConfig
from nas.session import rdb_url
from nas.signals import sigterm_as_interrupt
from nas.summary import LaunchSummary, summary_lines
from nas.trial import ray_trainable
from search_space.errors import InputError
from search_space.io import first_line, mask_secrets, without_password

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
    lock = FileLock(str(run.launch_lock))
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
    from nas.searcher import open_storage, open_study, reconcile_study
    from nas.session import Session, Work, settle_table, storage_url

    table = settle_table(run)
    study = open_study(config, open_storage(storage_url(run, state)), state["study_name"])
    reconcile_study(study, table, config)
    work = Work.left(config, budget, state, table)
    elapsed_before = float(state.get("elapsed_s", 0.0))
    state.setdefault("sessions", []).append({"started_at": now_iso(), "resumed": resumed})
    run.write_state(state)
    session = Session(run, config, budget, state, table, work, t_start, elapsed_before,
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
        storage = _password_to_environment(storage)
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
    storage = _password_to_environment(storage)
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


def _password_to_environment(url: str | None) -> str | None:
    """``url`` without its password, which goes to libpq's ``PGPASSWORD`` of this process: no
    object then holds it, so neither the run folder nor Ray's pickled tuner state can (and a
    resumed run finds it the same way, in ``PGPASSWORD`` or ``~/.pgpass``)."""
    if url is None or without_password(url) == url:
        return url
    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(url)
    except Exception:  # noqa: BLE001  (SQLAlchemy raises several types for a bad URL)
        raise InputError(f"--storage: {mask_secrets(url)!r} is not a database URL") from None
    if not parsed.drivername.startswith("postgresql"):
        raise InputError(f"--storage: a password in a {parsed.drivername} URL would be kept "
                         "in the run's state; give it to the database driver another way")
    os.environ["PGPASSWORD"] = parsed.password
    return without_password(url)


def _check_storage(url: str) -> None:
    import optuna

    try:
        optuna.storages.RDBStorage(rdb_url(url))
    except Exception as e:  # noqa: BLE001  (SQLAlchemy/driver errors of many kinds)
        raise InputError(f"--storage: cannot open {mask_secrets(url)!r} "
                         f"({mask_secrets(first_line(e))})") from None


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


def reconcile_study(study: Any, table: Any, config: SearchConfig) -> None:
    """See :func:`nas.searcher.reconcile_study` (kept here for callers of the launcher)."""
    from nas.searcher import reconcile_study as reconcile

    reconcile(study, table, config)
