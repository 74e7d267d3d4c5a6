"""Proxy-training presets for the search: partial TrainConfig mappings.

The search merges ``PRESETS[name]`` with its ``proxy.train`` overrides and each trial's spec,
seed and output folder (``nas/trial.py``). What a short proxy can and cannot show is discussed in
``../shared/reference/proxy_pilot.md``; the lessons applied here: decay the learning rate to about
zero by the end (cosine), compare candidates at the end of their schedules only, keep the seed
fixed across candidates.

``cpu``: sized for the default search (``nas launch --budget 8``: 5 anchors + 8 trials) on 2 CPU
cores. Early in training the number of Adam steps matters far more than the pixels per step: for
FMEN-S (seed 0, Set5 PSNR-Y at the end of a cosine schedule from 1e-3) 600 steps gave 28.83 dB at
batch 8 x 24x24, 28.81 at 16 x 16x16; 1200 steps gave 29.10 at 8 x 16x16 and 29.06 at 4 x 24x24;
2000 steps at 4 x 16x16 gave 29.26 (seed 1: 29.36). Hence many cheap steps: batch 4, 16x16 LR
patches (the smallest that ESA's stride-2 conv + 7x7 pool accepts), 1500 iterations.

Measured with this preset (x4, Set5 PSNR-Y; bicubic 28.42 dB)::

    .venv/bin/python -c "from trainers.presets import PRESETS; \\
      from trainers.config import TrainConfig; from trainers.loop import train; \\
      [print(s, train(TrainConfig.from_dict({**PRESETS['cpu'], 'arch': 'fmen_s', 'seed': s, \\
      'threads': 1, 'out_dir': f'/tmp/noise{s}'})).metrics['Set5']['psnr_y']) for s in (0, 1, 2)]"

- FMEN-S (training form) seeds 0/1/2: 29.136 / 29.177 / 29.073 dB: mean 29.129, **seed-to-seed sd
  0.052 dB**, +0.66 to +0.76 dB over bicubic. (1200 iterations, 2 threads: 29.049 / 29.082 /
  28.954, sd 0.066.) Differences between candidates below ~0.1-0.15 dB are within the noise.
- Distillation from the official RLFN (``distill: {teacher: rlfn, weight: 1.0}``), seed 0:
  FMEN-S 29.136 -> 29.211 (+0.076), SRN-S (NTIRE 2023) 28.934 -> 29.040 (+0.106).
- Wall time on 2 otherwise idle cores, 2 threads (training steps, 60-iteration sample):
  RLFN 0.017 s/it, SRN-S 0.013, E-RFDN 0.024, IMDN 0.026, FMEN-S 0.048, i.e. 20-72 s per anchor
  for 1500 iterations (~190 s for the 5 anchors); validation on Set5 adds ~1 s per trial.
  Lower ``iterations`` in ``proxy.train`` for a faster, noisier search.

``gpu``: close to the papers' proxy settings (64x64 LR patches, batch 64, L1, Adam, cosine),
not measured here (no GPU available when it was written).
"""

from __future__ import annotations

from typing import Any

__all__ = ["PRESETS"]

PRESETS: dict[str, dict[str, Any]] = {
    "cpu": {
        "data": {"train": "SunHays80", "val": ["Set5"], "lr_patch": 16, "batch_size": 4,
                 "workers": 0, "augment": True},
        "optim": {"lr": 1.0e-3},
        "schedule": {"type": "cosine", "eta_min": 1.0e-7, "warmup_iters": 10},
        "iterations": 1500,
        "eval_every": 500,
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
