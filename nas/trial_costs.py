"""The costs stage of a trial: counted costs, cheap constraints, measured costs (the runtime timed
paired with the run's runtime baseline, :mod:`trainers.timing`), measured constraints; and the
constraint checks of every stage (a quality floor waits for its anchor's trial)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from analysis.metrics import COL
from analysis.rundir import STATUS, RunDir
from nas.objectives import Constraint, ntire_score
from search_space.anchors import get_anchor

if TYPE_CHECKING:
    from nas.trial_settings import TrialSettings

__all__ = ["Infeasible", "profile_costs", "check_constraints", "profile_anchor"]


class Infeasible(Exception):
    """A constraint failed: the trial is recorded with its costs so far, never trained."""


def _device(device: str | None) -> str:
    from trainers.device import resolve_device

    return resolve_device(device or "auto")


def profile_costs(spec: Any, device: str, constrained: bool, settings: TrialSettings,
                  row: dict[str, Any], extra: dict[str, Any], log: Any) -> None:
    """Counted costs, then cheap constraints, then measured costs, then measured constraints:
    an infeasible sample stops at the first failing stage (costs so far are kept in ``row``)."""
    import torch

    from search_space.factory import build_model
    from trainers.profiling import profile_model

    torch.manual_seed(settings.seed)
    model = build_model(spec)
    row[COL.params_train] = sum(p.numel() for p in model.parameters())
    prof = settings.profile
    common = dict(input_hw=prof.input_hw, device=device,
                  threads=settings.threads, lock_dir=settings.lock_dir)
    cheap = profile_model(model, runtime=False, memory=False, **common)
    _update_costs(row, cheap.to_dict())
    log(f"counted: params {cheap.params}, macs {cheap.macs_g:.3f} G, "
        f"estimated peak memory {cheap.peak_memory_est_mb:.1f} MiB at {common['input_hw']}")
    if constrained:
        check_constraints(settings, row, stage="cheap")
    measured = profile_model(model, runtime=prof.runtime, memory=prof.memory,
                             warmup=prof.warmup, repeats=prof.repeats,
                             baseline=_runtime_baseline(settings), **common)
    _update_costs(row, measured.to_dict())
    if measured.runtime_ratio is not None:
        row[COL.runtime_baseline] = settings.runtime_baseline
    extra["profile"] = measured.to_dict()
    if settings.ntire:
        row[COL.ntire_score] = ntire_score(row, settings.references[settings.ntire["baseline"]],
                                           settings.ntire["weights"])
    paired = "" if measured.runtime_ratio is None else (
        f", {_fmt(measured.runtime_ratio)}x {settings.runtime_baseline} (paired, IQR "
        f"{_fmt(measured.runtime_ratio_iqr)})")
    log(f"measured on {measured.device}: runtime {_fmt(measured.runtime_ms)} ms "
        f"(IQR {_fmt(measured.runtime_iqr_ms)}){paired}, peak memory "
        f"{_fmt(measured.peak_memory_mb)} MiB")
    if constrained:
        check_constraints(settings, row, stage="measured")


def _runtime_baseline(settings: TrialSettings):
    """The baseline anchor's model at the search's scale, or None (no paired timing)."""
    from search_space.factory import build_model

    if settings.runtime_baseline is None:
        return None
    return build_model(get_anchor(settings.runtime_baseline).spec.with_scale(settings.scale))


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _update_costs(row: dict[str, Any], profile: Mapping[str, Any]) -> None:
    """The profiler's figures that are columns of the catalogue, and what they were measured
    with (``profile_hw`` such as ``128x128``, ``device``)."""
    from analysis import metrics as catalogue

    for key, value in profile.items():
        if value is not None and catalogue.field(key) is not None and key != COL.device:
            row[key] = value
    h, w = profile["input_hw"]
    row.update({COL.profile_hw: f"{int(h)}x{int(w)}", COL.device: str(profile["device"])})


def check_constraints(settings: TrialSettings, row: dict[str, Any], *, stage: str) -> None:
    """Raise :class:`Infeasible` with every violated constraint of ``stage``."""
    constraints = [c for c in settings.constraints if c.stage == stage]
    if not constraints:
        return
    references = settings.references
    if stage == "trained":  # a quality floor compares with the anchor's trial in this run
        references = _trained_anchors({c.anchor for c in constraints if c.anchor}, settings)
    reasons = [r for r in (_violation(c, row, references) for c in constraints) if r]
    if reasons:
        raise Infeasible("; ".join(reasons))


def _violation(constraint: Constraint, row: Mapping[str, Any],
               references: Mapping[str, Mapping[str, Any]]) -> str | None:
    """A runtime bound relative to the anchor the trial was timed against reads the paired
    ratio; every other bound compares the row's value with the reference's."""
    paired = (constraint.metric == COL.runtime_ms and constraint.anchor is not None
              and constraint.anchor == row.get(COL.runtime_baseline)
              and row.get(COL.runtime_ratio) is not None)
    if paired:
        return constraint.ratio_violation(row[COL.runtime_ratio], row[COL.runtime_baseline_ms])
    return constraint.violation(row.get(constraint.metric), references)


def _trained_anchors(names: set[str], settings: TrialSettings, *, poll_seconds: float = 2.0,
                     timeout: float = 24 * 3600) -> dict[str, dict[str, Any]]:
    """The finished rows of these anchors' trials in this run (anchors run first; with several
    trials at a time one may still be training: wait for it)."""
    from analysis.rundir import TrialsTable

    deadline = time.monotonic() + timeout
    while True:
        rows = {r[COL.anchor]: r for r in TrialsTable.load(RunDir(settings.run_dir)).finished()
                if r.get(COL.is_anchor) and r.get(COL.anchor) in names}
        if set(rows) >= names:
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"anchor(s) {', '.join(sorted(names - set(rows)))} of the quality "
                               "floor never finished")
        time.sleep(poll_seconds)
    bad = [n for n, r in rows.items() if r.get(COL.status) != STATUS.completed]
    if bad:
        raise RuntimeError(f"quality floor: anchor {', '.join(bad)} did not complete")
    return rows


def profile_anchor(name: str, settings: TrialSettings) -> dict[str, Any]:
    """Costs of an anchor's deploy form, profiled like a trial (reference of relative
    constraints)."""
    import torch

    from search_space.factory import build_model
    from trainers.profiling import profile_model

    if settings.threads:
        torch.set_num_threads(int(settings.threads))
    prof = settings.profile
    model = build_model(get_anchor(name).spec.with_scale(settings.scale))
    return profile_model(model, input_hw=prof.input_hw,
                         device=_device(settings.train_value("device")),
                         threads=settings.threads, warmup=prof.warmup, repeats=prof.repeats,
                         lock_dir=settings.lock_dir, runtime=prof.runtime,
                         memory=prof.memory).to_dict()
