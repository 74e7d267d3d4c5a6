"""Full training recipes, as the papers state them, for ``nas export``'s ``train.yaml``.

The anchors' YAMLs carry the same figures under ``published.training``. ``lr_patch`` is in LR
pixels; ``iterations`` None means the paper does not give one (the user passes ``--iterations``).
"""

from __future__ import annotations

from typing import Any

from search_space.errors import InputError, did_you_mean

__all__ = ["RECIPES", "DEFAULT_RECIPE", "get_recipe"]

RECIPES: dict[str, dict[str, Any]] = {
    "fmen": {
        "source": "FMEN (Du et al., 'Fast and Memory-Efficient Network Towards Efficient Image "
                  "Super-Resolution', CVPRW 2022, Sec. 4.1): Adam (0.9, 0.999, 1e-8), lr 5e-4 "
                  "halved every 600k iterations, 3M iterations, LR patch 64, batch 64, L1, "
                  "DIV2K+Flickr2K",
        "optim": {"lr": 5.0e-4, "betas": [0.9, 0.999], "eps": 1.0e-8, "weight_decay": 0.0},
        "schedule": {"type": "step", "step_iters": 600000, "gamma": 0.5, "eta_min": 1.0e-7,
                     "warmup_iters": 0},
        "iterations": 3000000,
        "lr_patch": 64,
        "batch_size": 64,
        "loss": "l1",
        "eval_every": 5000,
    },
    "srn": {
        "source": "SRN (Wang & Cai, 'A Single Residual Network with ESA Modules and "
                  "Distillation', CVPRW 2023): Adam, lr 2e-4 cosine-annealed to 1e-7, HR patch "
                  "256 at x4 / 128 at x2 (LR 64), batch 32, L1; the paper counts epochs (80k) "
                  "without defining them, so the number of iterations is yours to choose; Adam "
                  "betas/eps are not stated (PyTorch defaults used)",
        "optim": {"lr": 2.0e-4, "betas": [0.9, 0.999], "eps": 1.0e-8, "weight_decay": 0.0},
        "schedule": {"type": "cosine", "eta_min": 1.0e-7, "step_iters": 200000, "gamma": 0.5,
                     "warmup_iters": 0},
        "iterations": None,
        "lr_patch": 64,
        "batch_size": 32,
        "loss": "l1",
        "eval_every": 5000,
    },
}
DEFAULT_RECIPE = "fmen"


def get_recipe(name: str) -> dict[str, Any]:
    """The recipe ``name`` (its entry plus ``name``); InputError naming ``--recipe`` and the
    known ones otherwise."""
    if name not in RECIPES:
        raise InputError(f"--recipe: {name!r} not allowed; allowed: {', '.join(RECIPES)}"
                         f"{did_you_mean(name, RECIPES)}")
    return {"name": name, **RECIPES[name]}
