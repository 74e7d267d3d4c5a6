"""Proxy-training presets for the search: partial TrainConfig mappings.

The search merges ``PRESETS[name]`` with its ``proxy.train`` overrides and each trial's spec,
seed and output folder (``nas/trial.py``); ``nas fidelity`` trains its reference networks the
same way. What a short proxy can and cannot show, and how each choice here was measured, is in
``docs/proxy.md``: the learning rate decays to about zero by the end (cosine), candidates are
compared only at the end of their schedules, the seed is the same for every candidate.

``cpu``: sized for the default search on 2 CPU cores. Many cheap Adam steps (batch 4 of 16x16 LR
patches, the smallest that ESA's stride-2 conv + 7x7 pool accepts) rank better per CPU-minute than
fewer large ones; validation on Set5 and Set14 (19 images) at the middle and the end of the
schedule, so that the PSNR predictor also sees how fast PSNR still rises. Predictors fitted for
exactly this preset ship in ``analysis/predictors/cpu_x4.json`` and ``cpu_x2.json``; changing the
preset (or overriding it in ``proxy.train``) makes ``nas launch`` calibrate its own first
(``proxy.calibrate``, ``nas/calibration.py``).

``gpu``: close to the papers' proxy settings (64x64 LR patches, batch 64, L1, Adam, cosine); the
training set is prepared into the cache on first use (``data.prepare: true``), so that the
loader workers share one memory-mapped store instead of decoding PNGs each.
"""

from __future__ import annotations

from typing import Any

__all__ = ["PRESETS"]

PRESETS: dict[str, dict[str, Any]] = {
    "cpu": {
        "data": {"train": "SunHays80", "val": ["Set5", "Set14"], "lr_patch": 16,
                 "batch_size": 4, "workers": 0, "augment": True},
        "optim": {"lr": 1.0e-3},
        "schedule": {"type": "cosine", "eta_min": 1.0e-7, "warmup_iters": 10},
        "iterations": 750,
        "eval_every": 375,
        "checkpoint_every": 0,
        "loss": "l1",
        "device": "auto",
        "channels_last": "auto",
    },
    "gpu": {
        "data": {"train": "SunHays80", "val": ["Set5", "Set14"], "lr_patch": 64,
                 "batch_size": 64, "workers": 4, "augment": True, "prepare": True},
        "optim": {"lr": 5.0e-4},
        "schedule": {"type": "cosine", "eta_min": 1.0e-7, "warmup_iters": 0},
        "iterations": 5000,
        "eval_every": 1000,
        "checkpoint_every": 1000,
        "loss": "l1",
        "device": "auto",
        "amp": False,
        "channels_last": "auto",
    },
}
