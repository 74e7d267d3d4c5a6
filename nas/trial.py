"""One trial of a search: params -> spec -> build -> profile -> constraints -> proxy training ->
validation -> report. The only Ray-aware trial code is :func:`ray_trainable`; the pipeline itself
(:func:`run_trial`) takes a ``report`` callback, so it runs (and is tested) without Ray.

Every trial ends in one of four states, each with its reason: ``completed``; ``infeasible`` (a
cost constraint failed: recorded with the costs measured so far, never trained); ``failed`` (an
exception, a NaN/inf loss, out of memory); ``pruned`` (stopped early by the scheduler; recorded
by the driver, since a stopped trial does not get to say so). The trial writes its own folder
``trials/<trial_id>/`` (spec.yaml, hparams.json, model_deploy.pth, train.log, metrics.json) and
reports the row of ``trials.csv`` with ``final: True`` as its last result. The costs stage and
the constraint checks are :mod:`nas.trial_costs`.
"""

from __future__ import annotations

import ctypes
import gc
import json
import math
import time
import traceback
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from analysis.metrics import COL
from analysis.rundir import STATUS, RunDir, TrialDir, now_iso, started_row, write_json
from nas.trial_costs import Infeasible, check_constraints, profile_anchor, profile_costs
from nas.trial_settings import TrialSettings, trial_train_config
from search_space.anchors import get_anchor, load
from search_space.io import first_line, write_atomic
from search_space.space import spec_from_params
from trainers.config import TrainConfig

__all__ = ["run_trial", "ray_trainable", "profile_anchor", "META_KEY", "mean_metrics",
           "release_memory"]

# Config key of the driver's bookkeeping (trial number, anchor, Optuna number); not a parameter.
META_KEY = "_meta"

Report = Callable[[dict[str, Any]], None]


def mean_metrics(metrics: Mapping[str, Mapping[str, Any]]) -> dict[str, float | None]:
    """``psnr``/``ssim`` (means over the val sets) and ``psnr_<set>`` per set from evaluate()."""
    def mean(key: str) -> float | None:
        values = [m.get(key) for m in metrics.values()]
        values = [float(v) for v in values if v is not None]
        return sum(values) / len(values) if values else None

    out = {COL.psnr: mean("psnr_y"), COL.ssim: mean("ssim_y")}
    for name, m in metrics.items():
        out[f"psnr_{name.lower()}"] = m.get("psnr_y")
    return out


class _Log:
    """train.log: one timestamped line per stage, flushed as it happens."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.t0 = time.perf_counter()

    def __call__(self, message: str) -> None:
        with self.path.open("a") as f:
            f.write(f"[{time.perf_counter() - self.t0:8.2f}s] {message}\n")


def run_trial(config: Mapping[str, Any], settings: TrialSettings, *, trial_id: str,
              report: Report) -> dict[str, Any]:
    """Run one trial to its end and report its row (``final: True``); returns the row.

    Args:
        config: Sampled parameters (``search_space.space`` names) plus ``_meta`` with
            ``number``, ``anchor`` (name or None) and ``optuna_number``.
        settings: The search-wide settings.
        trial_id: Unique id (the folder name under ``trials/``).
        report: Receives intermediate results (after each validation) and the final row.
    """
    meta = dict(config.get(META_KEY) or {})
    params = {k: v for k, v in config.items() if k != META_KEY}
    anchor = meta.get(COL.anchor)
    folder = RunDir(settings.run_dir).trial_dir(trial_id)
    folder.mkdir(parents=True, exist_ok=True)
    log = _Log(TrialDir(folder).train_log)
    t0, cpu0 = time.perf_counter(), time.process_time()
    row = {**started_row(trial_id, meta), COL.seed: settings.seed, COL.hparams: json.dumps({})}
    extra: dict[str, Any] = {"params": params}  # the sampled configuration
    _write_record(folder, row, extra)
    try:
        _pipeline(params, anchor, settings, folder, row, extra, log, report)
        row[COL.status] = STATUS.completed
    except Infeasible as e:
        row.update({COL.status: STATUS.infeasible, COL.reason: str(e)})
        log(f"infeasible: {e}")
    except Exception as e:  # noqa: BLE001  (any failure of one trial must not stop the search)
        row.update({COL.status: STATUS.failed, COL.reason: _failure_reason(e)})
        log(f"failed: {row[COL.reason]}\n{traceback.format_exc()}")
    row[COL.finished_at] = now_iso()
    row[COL.trial_seconds] = round(time.perf_counter() - t0, 3)
    # CPU time of all threads: on a shared machine, cpu_seconds / threads estimates the wall
    # time the trial would take alone
    extra["cpu_seconds"] = round(time.process_time() - cpu0, 3)
    _write_record(folder, row, extra)
    report(_present({**row, "final": True, "eval_round": extra.get("eval_rounds", 0) + 1}))
    return row


def _present(result: Mapping[str, Any]) -> dict[str, Any]:
    """Without None/NaN values: schedulers read a missing metric as 'nothing to decide'."""
    return {k: v for k, v in result.items()
            if v is not None and not (isinstance(v, float) and not math.isfinite(v))}


def _pipeline(params: dict[str, Any], anchor: str | None, settings: TrialSettings,
              folder: Path, row: dict[str, Any], extra: dict[str, Any], log: _Log,
              report: Report) -> None:
    import torch

    if settings.threads:
        torch.set_num_threads(int(settings.threads))
    spec, hparams = _resolve_spec(params, anchor, settings, row)
    write_atomic(TrialDir(folder).spec_yaml, spec.to_yaml())
    write_json(TrialDir(folder).hparams_json, hparams)
    row.update({COL.arch_id: spec.arch_id(), COL.spec: json.dumps(spec.to_dict(), sort_keys=True),
                COL.hparams: json.dumps(hparams, sort_keys=True)})
    log(f"{'anchor ' + anchor if anchor else 'sample'}: arch {spec.arch_id()}, hparams {hparams}")

    device = _device(settings.train_value("device"))
    profile_costs(spec, device, anchor is None, settings, row, extra, log)
    result = _train(spec, hparams, settings, folder, row, extra, log, report)
    _update_metrics(row, result.metrics)
    row.update({COL.iterations: result.iterations,
                COL.train_seconds: round(result.train_seconds, 3)})
    extra["history"] = result.history
    _calibrate(row, spec, result.history, settings)
    if result.stopped:
        raise RuntimeError(f"training stopped: {result.stopped}")
    if anchor is None:
        check_constraints(settings, row, stage="trained")
    missing = [m for m in settings.objectives if row.get(m) is None]
    if missing:
        raise RuntimeError(f"objective {', '.join(missing)} not measured")
    if anchor is not None:
        row[COL.psnr_official] = _official_psnr(anchor, settings, device, log)
    TrialDir(folder).checkpoint.unlink(missing_ok=True)  # optimizer state: not needed any more


def _resolve_spec(params: dict[str, Any], anchor: str | None, settings: TrialSettings,
                  row: dict[str, Any]):
    if anchor is not None:
        return get_anchor(anchor).spec.with_scale(settings.scale), {}
    name = f"trial-{row[COL.number]}" if row.get(COL.number) is not None else ""
    return spec_from_params(params, name=name)


def _device(device: str | None) -> str:
    from trainers.device import resolve_device

    return resolve_device(device or "auto")


def _update_metrics(row: dict[str, Any], metrics: Mapping[str, Mapping[str, Any]]) -> None:
    for key, value in mean_metrics(metrics).items():
        row[key] = value
    row[COL.psnr_proxy] = row[COL.psnr]


def _calibrate(row: dict[str, Any], spec: Any, history: list, settings: TrialSettings) -> None:
    """``psnr`` = the predictor's converged-PSNR estimate (raw ``psnr_proxy`` without one),
    with its sd and whether it extrapolates beyond the references."""
    from analysis.predictor import Predictor, features_of, proxy_record

    if settings.predictor is None or row.get(COL.psnr_proxy) is None:
        return
    predictor = Predictor.from_dict(settings.predictor)
    if "synflow" in predictor.features:
        from trainers.zero_cost import synflow_score

        row[COL.synflow] = synflow_score(spec, seed=settings.seed,
                                         lr_patch=int(settings.train_value("data.lr_patch")))
    record = proxy_record(spec, psnr_proxy=row[COL.psnr_proxy], params=row.get(COL.params),
                          macs_g=row.get(COL.macs_g), history=history,
                          input_hw=settings.profile.input_hw, synflow=row.get(COL.synflow))
    features = features_of(record)
    predicted = predictor.predict(features)
    if predicted is None:
        raise RuntimeError("the PSNR predictor is missing a feature of this trial")
    row[COL.psnr] = predicted
    row[COL.psnr_sd] = predictor.sd(features)
    row[COL.extrapolated] = bool(predictor.extrapolated(features))


def _train(spec: Any, hparams: Mapping[str, Any], settings: TrialSettings, folder: Path,
           row: dict[str, Any], extra: dict[str, Any], log: _Log, report: Report):
    from trainers.loop import train

    cfg = TrainConfig.from_dict(trial_train_config(spec, hparams, settings, folder),
                                source=f"trial {row[COL.trial_id]} training config")
    extra["eval_rounds"] = 0

    def on_eval(iteration: int, metrics: dict) -> None:
        extra["eval_rounds"] += 1
        means = mean_metrics(metrics)
        log(f"iteration {iteration}: " + ", ".join(
            f"{k} {v:.4f}" for k, v in means.items() if v is not None))
        if iteration >= cfg.iterations:
            return  # the end of the schedule: the final row reports it (never pruned there)
        # the calibrated psnr exists only at the end: intermediate rows carry the raw figure
        means[COL.psnr_proxy] = means.pop(COL.psnr)
        intermediate = {**row, **means, COL.iterations: iteration, "final": False,
                        "eval_round": extra["eval_rounds"]}
        if not row[COL.is_anchor]:  # ASHA ranks sampled trials only; anchors always finish
            intermediate["val_psnr"] = means[COL.psnr_proxy]
        report(_present(intermediate))

    log(f"proxy training: {cfg.iterations} iterations")
    result = train(cfg, on_eval=on_eval)
    log(f"trained {result.iterations} iterations in {result.train_seconds:.1f} s "
        f"(+ {result.eval_seconds:.1f} s validation)")
    return result


def _official_psnr(anchor: str, settings: TrialSettings, device: str, log: _Log) -> float | None:
    """The anchor's official-weight PSNR on the proxy's val sets (None without official weights
    at this scale)."""
    from trainers.evaluate import evaluate

    info = get_anchor(anchor)
    if info.official_scale != settings.scale:
        return None
    val = list(settings.val_sets)
    model = load(anchor, scale=settings.scale, weights="official")
    psnr = mean_metrics(evaluate(model, val, scale=settings.scale, device=device,
                                 ssim=False))[COL.psnr]
    log(f"official weights: psnr {psnr:.4f} dB on {', '.join(map(str, val))}")
    return psnr


def _failure_reason(e: BaseException) -> str:
    name = type(e).__name__
    text = first_line(e) if str(e).strip() else ""
    if name == "NonFiniteLossError":
        iteration = getattr(e, "iteration", None)
        return f"nan/inf loss at iteration {iteration}" if iteration is not None else \
            f"nan/inf loss ({text})"
    if isinstance(e, MemoryError) or "OutOfMemoryError" in name:
        return f"out of memory ({text or name})"
    return f"{name}: {text}" if text else name


def _write_record(folder: Path, row: Mapping[str, Any], extra: Mapping[str, Any]) -> None:
    clean = {k: (None if isinstance(v, float) and not math.isfinite(v) else v)
             for k, v in row.items()}
    write_json(TrialDir(folder).metrics_json, {"row": clean, **_json_safe(extra)})


def _json_safe(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def ray_trainable(config: dict[str, Any], settings: TrialSettings) -> None:
    """Ray Tune function trainable: :func:`run_trial` with ``tune.report`` and Ray's trial id."""
    from ray import tune

    trial_id = tune.get_context().get_trial_id()
    try:
        run_trial(config, settings, trial_id=trial_id, report=tune.report)
    finally:
        release_memory()


def release_memory() -> None:
    """Give what a finished trial freed back to the OS. Ray reuses the worker process for the
    next trial, and glibc keeps freed heap pages (a trial's tensors, its model's cached kernels)
    mapped unless asked: ``malloc_trim`` returns them, so the worker's RSS stays flat."""
    gc.collect()
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):
        pass  # not glibc (macOS, musl): nothing to trim
