"""What a trial is given (:class:`TrialSettings`, built once by the launcher) and the training
config it derives for one network (:func:`trial_train_config`).

Shared by the search's trials, ``nas fidelity`` (each reference is trained as a trial) and
``nas verify``; imports neither Ray nor torch.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nas.config_sections import ProfileConfig
from nas.objectives import Constraint
from trainers.config import partial_value

__all__ = ["TrialSettings", "deep_merge", "trial_train_config"]


@dataclass(frozen=True)
class TrialSettings:
    """Everything a trial needs besides its parameters; built once by the launcher.

    Args:
        run_dir: The run directory (trial folders go to ``<run_dir>/trials/<trial_id>``).
        scale: Upscaling factor of the search (anchors are built at it).
        train_base: Partial TrainConfig: the proxy preset merged with ``proxy.train``, as
            written (it is the proxy's identity: hashed into its fingerprint and each record's
            key); read a value through :meth:`train_value`, which knows the defaults.
        profile: How the deploy form is profiled, its ``input_hw`` resolved for the device
            (never ``auto``; fidelity and verification, which do not profile, keep the default).
        constraints: Cost constraints (never applied to anchors).
        references: Anchor -> profiled costs, for relative constraints.
        seed: Seed of initialisation and data order, the same for every trial.
        threads: CPU threads for training and timing (None: torch's default).
        lock_dir: Folder of the per-device timing locks (None: the profiler's default).
        objectives: Metrics a completed trial must have (the search's objectives).
        val_sets: Where anchors' official-weight PSNR is measured: the sets ``psnr`` refers to
            (the predictor's target set, or the proxy's validation sets when uncalibrated).
        ntire: ``{"baseline", "weights"}`` when ``ntire_score`` is used: the score is computed
            from the baseline's costs in ``references`` and the paired ``runtime_ratio``.
        runtime_baseline: Anchor every trial's runtime is timed against, interleaved in the
            trial's process (``runtime_ratio``); None: runtime alone.
        predictor: A fitted :class:`analysis.predictor.Predictor` as a dict: ``psnr`` is its
            prediction of converged PSNR from what the proxy observed; None: ``psnr`` is the
            raw proxy PSNR. ``psnr_proxy`` is always the raw end-of-schedule PSNR.
    """

    run_dir: str
    scale: int
    train_base: Mapping[str, Any]
    profile: ProfileConfig = field(default_factory=ProfileConfig)
    constraints: tuple[Constraint, ...] = ()
    references: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    seed: int = 0
    threads: int | None = None
    lock_dir: str | None = None
    objectives: tuple[str, ...] = ()
    val_sets: tuple[str, ...] = ("Set5", "Set14")
    predictor: Mapping[str, Any] | None = None
    ntire: Mapping[str, Any] | None = None
    runtime_baseline: str | None = None

    def train_value(self, path: str) -> Any:
        """``train_base``'s value at ``path`` (``"device"``, ``"data.lr_patch"``), or the
        TrainConfig default where the proxy leaves it out: one home for every default."""
        return partial_value(self.train_base, path)


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """``override`` over ``base``, recursively for nested mappings (copies, inputs untouched)."""
    out = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def trial_train_config(spec: Any, hparams: Mapping[str, Any], settings: TrialSettings,
                       folder: Path) -> dict[str, Any]:
    """The TrainConfig mapping of one trial: preset + proxy overrides + this trial's choices."""
    cfg = deep_merge(settings.train_base, {
        "arch": spec.to_dict(), "scale": None, "out_dir": str(folder), "seed": settings.seed,
        "init": None,
    })
    if settings.threads:
        cfg["threads"] = int(settings.threads)
    if "lr" in hparams:
        cfg = deep_merge(cfg, {"optim": {"lr": float(hparams["lr"])}})
    if "batch_size" in hparams:
        cfg = deep_merge(cfg, {"data": {"batch_size": int(hparams["batch_size"])}})
    if "lr_patch" in hparams:
        cfg = deep_merge(cfg, {"data": {"lr_patch": int(hparams["lr_patch"])}})
    if "distill" in hparams:
        d = hparams["distill"]
        cfg["distill"] = None if d is None else deep_merge(cfg.get("distill") or {}, {
            "teacher": d["teacher"], "weight": float(d["weight"])})
    return cfg
