"""The proxy training a search config implies: preset + overrides, validated once.

Shared by ``nas launch`` (every trial trains with it) and ``nas fidelity`` (every reference is
trained with it), so that fidelity is measured on exactly the proxy a search uses.
"""

from __future__ import annotations

import hashlib
import json
import math
import tempfile
from pathlib import Path
from typing import Any

from nas.config import SearchConfig
from nas.trial_settings import deep_merge
from search_space.anchors import get_anchor
from search_space.errors import InputError
from search_space.space import spec_from_params, suggest_arch
from trainers.config import TrainConfig, partial_value
from trainers.presets import PRESETS

__all__ = ["proxy_train_base", "proxy_preset", "proxy_fingerprint", "resolve_predictor",
           "device_kind", "local_device_kind"]


def proxy_preset(config: SearchConfig, gpus: float = 0.0) -> str:
    """The preset name the config resolves to (``auto``: gpu with GPUs per trial, else cpu)."""
    preset = config.proxy.resolved_preset(gpus)
    if preset not in PRESETS:
        raise InputError(f"proxy.preset: {preset!r} not allowed; allowed: {', '.join(PRESETS)}")
    return preset


def proxy_train_base(config: SearchConfig, gpus: float = 0.0
                     ) -> tuple[dict[str, Any], int, list[str]]:
    """The proxy's partial TrainConfig, validated once here (not in every trial), the number of
    validations per trial (ASHA's max time) and the validation sets."""
    base = deep_merge(PRESETS[proxy_preset(config, gpus)], config.proxy.train)
    if config.anchors:
        probe = get_anchor(config.anchors[0]).spec.with_scale(config.scale)
    else:
        probe, _ = spec_from_params(suggest_arch(_FirstChoice(), config.space))
    with tempfile.TemporaryDirectory() as tmp:
        cfg = TrainConfig.from_dict(deep_merge(base, {"arch": probe.to_dict(), "out_dir": tmp}),
                                    source="proxy.train")
    n_evals = 1 if cfg.eval_every == 0 else math.ceil(cfg.iterations / cfg.eval_every)
    return base, n_evals, [str(v) for v in cfg.data.val]


def proxy_fingerprint(train_base: dict[str, Any], scale: int) -> str:
    """Identity of a proxy (its resolved partial TrainConfig and the scale): a predictor fitted
    for one proxy is only valid for that proxy."""
    text = json.dumps({"train": train_base, "scale": scale}, sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def device_kind(train_base: dict[str, Any], gpus: float) -> str:
    """What a trial's proxy trains on, as far as it changes the numbers: ``cpu``, or
    ``cuda:<GPU name>`` (a predictor calibrated on one GPU model is not assumed to hold on
    another). Asked in a Ray task with a trial's GPU share, where the trials run: the driver
    may have no GPU, and opening CUDA there would take memory the trials need."""
    if gpus <= 0 or partial_value(train_base, "device") == "cpu":
        return "cpu"
    import ray

    return ray.get(ray.remote(num_cpus=0, num_gpus=gpus)(local_device_kind).remote(train_base))


def local_device_kind(train_base: dict[str, Any]) -> str:
    """:func:`device_kind` of a proxy trained in this process (``nas fidelity``)."""
    from trainers.device import resolve_device

    device = resolve_device(partial_value(train_base, "device"))
    if device == "cpu":
        return "cpu"
    import torch

    return f"cuda:{torch.cuda.get_device_name(torch.device(device))}"


def resolve_predictor(config: SearchConfig, train_base: dict[str, Any], device: str,
                      gpus: float = 0.0):
    """``(Predictor or None, why)``: the predictor that turns ``psnr_proxy`` into ``psnr``.

    ``auto`` takes the one shipped for the preset and scale only if it was fitted for exactly
    this proxy (same fingerprint) on the same kind of ``device`` (:func:`device_kind`);
    otherwise None, and ``why`` says so (``nas launch`` then calibrates, unless
    ``proxy.calibrate: off``).
    """
    from analysis.predictor import Predictor, shipped_predictor

    choice = config.proxy.predictor
    fingerprint = proxy_fingerprint(train_base, config.scale)
    if choice == "none":
        return None, "proxy.predictor: none (psnr is the raw proxy PSNR)"
    if choice == "auto":
        preset = proxy_preset(config, gpus)
        predictor = shipped_predictor(preset, config.scale)
        if predictor is None:
            return None, f"no predictor shipped for the {preset} preset at x{config.scale}"
        meta = predictor.meta or {}
        if meta.get("fingerprint") != fingerprint or meta.get("device") != device:
            return None, (f"the shipped {preset} x{config.scale} predictor was fitted for the "
                          f"unmodified preset on {meta.get('device')}; this proxy differs "
                          f"({device})")
        return predictor, f"shipped {preset} x{config.scale} predictor"
    predictor = Predictor.load(Path(choice))
    if (predictor.meta or {}).get("fingerprint") not in (None, fingerprint):
        raise InputError(f"proxy.predictor: {choice} was fitted for another proxy (fingerprint "
                         f"{predictor.meta.get('fingerprint')}, this proxy {fingerprint})")
    return predictor, f"predictor {choice}"


class _FirstChoice:
    """A trial stand-in that takes the first value of every dimension (config validation)."""

    def suggest_categorical(self, name: str, choices: list[Any]) -> Any:
        return choices[0]

    def suggest_int(self, name: str, low: int, high: int, step: int = 1, log: bool = False) -> int:
        return low

    def suggest_float(self, name: str, low: float, high: float, step: float | None = None,
                      log: bool = False) -> float:
        return low
