"""The search adapter: the only code that speaks to Ray Tune's searcher interface and to Optuna.

:class:`AnchorsFirst` is a ``ray.tune.search.Searcher`` that owns an Optuna study through
Optuna's public ask-and-tell API (no ``OptunaSearch``, whose private state the launcher used to
read). It hands out the anchors first (outside the study: their specs are not points of its
space, and an enqueued point would be merged with the define-by-run constants, ray#35319), then
one ``study.ask()`` per trial with the define-by-run space of :mod:`search_space.space`, until the
budget's sampled trials are handed out.

What reaches Optuna: a trial that finished its schedule is COMPLETE with its objective values;
an early-stopped or infeasible trial is PRUNED (the sampler learns it is bad); a failure is FAIL.
Validation PSNR after each evaluation is stored as a COMPLETE trial's intermediate values
(Optuna's ``Trial.report`` refuses multi-objective studies, the storage API does not); a PRUNED
or FAILED trial keeps it as the user attribute ``val_psnr`` instead, because TPE ranks pruned
trials by their last intermediate value with ``study.direction``, which a multi-objective study
does not have.

Supported versions: Ray 2.4x-2.6x (``Searcher``: ``suggest`` / ``on_trial_result`` /
``on_trial_complete`` / ``save`` / ``restore``) and Optuna 4-5 (``ask``/``tell``,
``set_metric_names``, ``BaseStorage.set_trial_intermediate_value``); ``tests/nas/test_searcher.py``
pins the behaviour.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import optuna
from optuna.trial import TrialState
from ray.tune.search import Searcher

from analysis.metrics import COL, study_direction
from analysis.rundir import STATUS, TrialsTable, write_json
from nas.config import SearchConfig
from nas.trial import META_KEY
from search_space.space import suggest_arch

__all__ = ["AnchorsFirst", "direction", "make_sampler", "open_storage", "open_study",
           "reconcile_study"]


direction = study_direction  # the search config's max/min -> Optuna's study direction


def make_sampler(config: SearchConfig, seed: int) -> optuna.samplers.BaseSampler:
    """The config's sampler; TPE is multivariate and, with parallel trials, a constant liar."""
    s = config.sampler
    if s.type == "nsga2":
        return optuna.samplers.NSGAIISampler(population_size=s.population_size, seed=seed)
    if s.type == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(
        seed=seed, n_startup_trials=s.n_startup_trials, multivariate=True, group=True,
        constant_liar=config.resources.max_concurrent > 1)


def open_storage(url: str) -> optuna.storages.RDBStorage:
    return optuna.storages.RDBStorage(url)


def open_study(config: SearchConfig, storage: optuna.storages.BaseStorage, study_name: str, *,
               sampler: optuna.samplers.BaseSampler | None = None,
               attrs: Mapping[str, Any] | None = None) -> optuna.Study:
    """The run's study (created on first use), with its metric names and ``attrs`` as study
    user attributes, so that optuna-dashboard shows what each objective is and how it was
    measured."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    study = optuna.create_study(
        study_name=study_name, storage=storage, sampler=sampler,
        pruner=optuna.pruners.NopPruner(), directions=[direction(m) for m in config.modes],
        load_if_exists=True)
    if list(study.metric_names or ()) != list(config.metric_names):
        study.set_metric_names(list(config.metric_names))
    for key, value in (attrs or {}).items():
        study.set_user_attr(key, value)
    return study


def reconcile_study(study: optuna.Study, table: TrialsTable, config: SearchConfig) -> None:
    """Finish Optuna trials left RUNNING (driver killed, wall-clock stop) from the table:
    completed -> COMPLETE with the objective values, infeasible/pruned -> PRUNED, failed or
    lost -> FAIL."""
    by_number = {r.get(COL.optuna_number): r for r in table.rows.values()
                 if r.get(COL.optuna_number) is not None}
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        row = by_number.get(trial.number)
        status = row.get(COL.status) if row else None
        values = None
        if status == STATUS.completed:
            values = [row.get(m) for m in config.objectives]
            if any(v is None for v in values):
                status, values = STATUS.failed, None
        state = {STATUS.completed: TrialState.COMPLETE, STATUS.pruned: TrialState.PRUNED,
                 STATUS.infeasible: TrialState.PRUNED}.get(status, TrialState.FAIL)
        study.tell(trial.number, values, state=state, skip_if_finished=True)


class AnchorsFirst(Searcher):
    """Anchors first (outside Optuna), then Optuna's samples until the budget is used.

    Args:
        study: The run's study (with this session's sampler).
        storage: The study's storage (intermediate values are written through it).
        config: The search config (space, objectives and their directions).
        anchors: Anchors still to run.
        sampled_left: Sampled trials still to hand out (None: until Tune stops asking).
        first_number: Trial number of the first suggestion (numbers continue across sessions).
    """

    def __init__(self, study: optuna.Study, storage: optuna.storages.BaseStorage,
                 config: SearchConfig, *, anchors: Sequence[str],
                 sampled_left: int | None, first_number: int) -> None:
        super().__init__(metric=list(config.metric_names), mode=list(config.modes))
        self.study, self.storage = study, storage
        self.study_id = storage.get_study_id_from_name(study.study_name)
        self.space = dict(config.space)
        self.objectives = tuple(config.objectives)
        self.anchors = list(anchors)
        self.sampled_left = sampled_left
        self.next_number = first_number
        self.asked: dict[str, optuna.Trial] = {}  # Tune trial id -> its running Optuna trial
        self.curves: dict[str, dict[int, float]] = {}  # Tune trial id -> iteration -> val PSNR

    def set_search_properties(self, metric, mode, config, **spec) -> bool:
        return True  # metric, mode and space are fixed at construction

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        if self.anchors:
            return {META_KEY: self._meta(anchor=self.anchors.pop(0))}
        if self.sampled_left is not None and self.sampled_left <= 0:
            return Searcher.FINISHED
        trial = self.study.ask()
        suggest_arch(trial, self.space)
        self.asked[trial_id] = trial
        if self.sampled_left is not None:
            self.sampled_left -= 1
        return {**trial.params, META_KEY: self._meta(optuna_number=trial.number)}

    def _meta(self, *, anchor: str | None = None, optuna_number: int | None = None):
        meta = {COL.number: self.next_number, COL.anchor: anchor, COL.optuna_number: optuna_number}
        self.next_number += 1
        return meta

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        if trial_id in self.asked and not result.get("final"):
            self._intermediate(trial_id, result)

    def on_trial_complete(self, trial_id: str, result: dict | None = None,
                          error: bool = False) -> None:
        trial = self.asked.pop(trial_id, None)
        if trial is None:  # an anchor
            return
        result = result or {}
        status = result.get(COL.status) if result.get("final") else (
            STATUS.failed if error else STATUS.pruned)
        for key in (COL.status, COL.reason, COL.arch_id):
            if result.get(key) is not None:
                trial.set_user_attr(key, result[key])
        trial.set_user_attr(COL.trial_id, trial_id)
        self._intermediate(trial_id, result)
        curve = self.curves.pop(trial_id, {})
        values = [result.get(m) for m in self.objectives]
        if status == STATUS.completed and all(v is not None for v in values):
            tid = self.storage.get_trial_id_from_study_id_trial_number(self.study_id,
                                                                       trial.number)
            for step, value in sorted(curve.items()):
                self.storage.set_trial_intermediate_value(tid, step, value)
            self.study.tell(trial, values, skip_if_finished=True)
        else:
            if curve:
                trial.set_user_attr("val_psnr", [[k, v] for k, v in sorted(curve.items())])
            state = (TrialState.PRUNED if status in (STATUS.pruned, STATUS.infeasible)
                     else TrialState.FAIL)
            self.study.tell(trial, state=state, skip_if_finished=True)

    def _intermediate(self, trial_id: str, result: Mapping[str, Any]) -> None:
        """Validation PSNR (raw proxy figure) at the iteration it was measured."""
        value, step = result.get(COL.psnr_proxy), result.get(COL.iterations)
        if value is not None and step is not None:
            self.curves.setdefault(trial_id, {})[int(step)] = float(value)

    def save(self, checkpoint_path: str) -> None:
        write_json(checkpoint_path, {"resume": "use `nas launch --resume <run dir>`"})

    def restore(self, checkpoint_path: str) -> None:
        pass  # a run resumes from its directory (trials.csv and the study), not from Tune
