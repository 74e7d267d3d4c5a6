"""``train.yaml`` of an export: a TrainConfig that ``nas train`` accepts unchanged.

The spec inline, a full training recipe from one of the papers (``trainers.recipes``), a prepared
training set (``nas data prepare``; :data:`DEFAULT_TRAIN_DATA` unless told otherwise), the
search's seed, and under ``picked:`` the proxy metrics the trial was picked on.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from analysis import metrics
from analysis.export.basicsr import loader_workers
from analysis.formatting import parse_json
from analysis.metrics import COL
from analysis.run import Run, protocol, proxy_train
from search_space.errors import InputError
from search_space.io import shown
from search_space.spec import ArchSpec
from search_space.validation import Rule, check_value

__all__ = ["DEFAULT_TRAIN_DATA", "train_config"]

# Where train.yaml / basicsr.yml look for training data unless told: what the README's
# `nas data prepare DIV2K_train_HR --out datasets/DIV2K_sub` makes.
DEFAULT_TRAIN_DATA = "datasets/DIV2K_sub"


def _picked_metrics(row: Mapping[str, Any]) -> dict[str, Any]:
    out = {}
    # every metric of the catalogue (analysis.metrics), then per-set PSNRs it does not list
    names = dict.fromkeys([*metrics.metrics(),
                           *sorted(k for k in row if str(k).startswith("psnr_set"))])
    for name in names:
        value = row.get(name)
        if isinstance(value, (int, float, np.integer, np.floating)) and math.isfinite(value):
            value = float(value)
            out[name] = int(value) if value.is_integer() else round(value, 6)
    return out


def _distill(hparams: Mapping[str, Any]) -> dict[str, Any] | None:
    """The trial's distillation setting, if its hyperparameters name a teacher."""
    distill = hparams.get("distill")
    if isinstance(distill, Mapping) and distill.get("teacher"):
        return dict(distill)
    teacher = hparams.get("distill_teacher") or hparams.get("teacher") or (
        distill if isinstance(distill, str) and distill not in ("", "none") else None)
    if not teacher or teacher == "none":
        return None
    out = {"teacher": teacher}
    weight = hparams.get("distill_weight")
    if isinstance(weight, (int, float)):
        out["weight"] = float(weight)
    return out


def _hparams(row: Mapping[str, Any]) -> dict[str, Any]:
    data = parse_json(row.get(COL.hparams))
    return dict(data) if isinstance(data, Mapping) else {}


def _list(value: Any) -> list[str] | None:
    if isinstance(value, str) and value:
        return [value]
    if isinstance(value, list) and value:
        return [str(v) for v in value]
    return None


def _seed(run: Run) -> int:
    """The search's seed, which every trial trained with, read as the report reads it
    (:func:`analysis.run.protocol`) and checked with SearchConfig's rule: search.yaml is the
    resolved SearchConfig, so a run of ``nas launch`` holds it. A run folder that records none
    (no search.yaml) gets TrainConfig's default, 0 (analysis imports neither ``nas`` nor
    ``trainers``)."""
    seed = check_value(f"{shown(run.layout.search_yaml)}: seed", protocol(run)["seed"],
                       Rule(kind=int, low=0))
    return 0 if seed is None else seed


def train_config(
    run: Run,
    row: Mapping[str, Any],
    spec: ArchSpec,
    *,
    recipe: Mapping[str, Any],
    iterations: int | None = None,
    train_data: str | None = None,
    picked: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The TrainConfig mapping of ``train.yaml`` (see the module docstring); ``recipe`` is one
    of ``trainers.recipes``."""
    r = recipe
    iterations = iterations or r["iterations"]
    if not iterations:
        raise InputError(f"--recipe {r['name']}: the paper gives no number of iterations; pass "
                         "--iterations N")
    data = proxy_train(run).get("data") or {}
    val = _list(data.get("val")) or ["Set5", "Set14"]
    hparams = _hparams(row)
    eval_every = min(r["eval_every"], iterations)
    return {
        "arch": spec.to_dict(),
        "scale": None,
        "data": {"train": train_data or DEFAULT_TRAIN_DATA,
                 "val": val, "lr_patch": r["lr_patch"], "batch_size": r["batch_size"],
                 "workers": loader_workers(), "augment": True, "lr_dir": None},
        "optim": copy.deepcopy(r["optim"]),
        "schedule": copy.deepcopy(r["schedule"]),
        "iterations": int(iterations),
        "eval_every": eval_every,
        "checkpoint_every": eval_every,
        "loss": r["loss"],
        "distill": _distill(hparams),
        "seed": _seed(run),
        "device": "auto",
        "amp": False,
        "channels_last": "auto",
        "threads": None,
        "init": None,
        "out_dir": f"runs/train/{run.name}_{spec.arch_id()}",
        "picked": dict(picked or {}),
    }


_TRAIN_HEADER = """\
# esrnas training config for architecture {arch_id}, exported from run {run} ({why}).
# Recipe as the paper states it (its data included): {source}.
# Training data here (data.train): {data}.
# data.workers is sized for the machine that exported this file; set it to your cores.
# Train with: nas train {path}
"""
