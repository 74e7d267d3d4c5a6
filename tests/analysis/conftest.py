"""A synthetic but real run directory: trials.csv, search.yaml and trial dirs with real weights.

Searched trials are tiny spec-built models (scale 2) whose deploy weights are saved as esrnas
checkpoints; their metrics are drawn from a seeded RNG (the analysis does not care where numbers
come from). Two anchors, and decoys that must never reach a front: a failed and a running trial
with the best metrics of all, a pruned and an infeasible one.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

COLUMNS = ["trial_id", "number", "status", "reason", "is_anchor", "anchor", "arch_id", "spec",
           "hparams", "psnr", "ssim", "psnr_set5", "psnr_set14", "runtime_ms", "runtime_iqr_ms",
           "peak_memory_mb", "peak_memory_est_mb", "params", "params_train", "macs_g",
           "activations_m", "num_conv", "train_seconds", "iterations", "seed", "started_at",
           "finished_at", "psnr_official"]

# the layout of nas.config.SearchConfig.to_dict()
SEARCH = {"objectives": {"psnr": "max", "runtime_ms": "min", "peak_memory_mb": "min"},
          "anchors": ["fmen_s", "rlfn"], "constraints": {"runtime_ms": "<= 50"},
          "proxy": {"preset": "cpu", "train": {"data": {"val": ["Set5"]}}},
          "seed": 0, "resources": {"max_concurrent": 1, "gpus_per_trial": 0},
          "space": {"scale": 2, "channels": {"low": 4, "high": 16}}}
STATE = {"budget": {"trials": 16, "seconds": None}}


def tiny_spec_dict(channels: int, repeat: int, act: str = "lrelu0.1", scale: int = 2) -> dict:
    return {"scale": scale, "channels": channels,
            "body": [{"block": "conv", "repeat": repeat, "args": {"post_act": act}}]}


def hparams(rng: np.random.Generator) -> dict:
    """Training hyperparameters as nas.trial records them (lr, batch size, distillation)."""
    distill = rng.choice([None, {"teacher": "rlfn", "weight": float(rng.choice([0.5, 1.0]))}])
    return {"lr": float(rng.choice([3e-4, 5e-4, 1e-3])), "batch_size": int(rng.choice([8, 16])),
            "distill": distill}


def _save_weights(trial_dir: Path, spec) -> int:
    from search_space.factory import build_model

    model = build_model(spec, deploy=True)
    torch.save({"format": "esrnas", "version": 1, "spec": spec.to_dict(),
                "model_deploy": model.state_dict()}, trial_dir / "model_deploy.pth")
    return sum(p.numel() for p in model.parameters())


def build_run(root: Path, *, n_searched: int = 10, seed: int = 0, weights: bool = True) -> Path:
    """Write a run directory under ``root`` and return its path."""
    from search_space.anchors import get_anchor
    from search_space.spec import ArchSpec

    rng = np.random.default_rng(seed)
    run = root / "demo"
    (run / "trials").mkdir(parents=True)
    rows = []

    def add(status: str, spec: ArchSpec, **metrics) -> dict:
        number = len(rows)
        trial_id = f"{number:05d}"  # digits only: must stay text
        row = {c: None for c in COLUMNS}
        row.update(trial_id=trial_id, number=number, status=status, reason="", is_anchor=False,
                   anchor="", arch_id=spec.arch_id(), spec=json.dumps(spec.to_dict()),
                   hparams=json.dumps(hparams(rng)),
                   seed=0, iterations=600, started_at="2026-01-01T00:00:00",
                   finished_at="2026-01-01T00:01:00")
        row.update(metrics)
        tdir = run / "trials" / trial_id
        tdir.mkdir()
        (tdir / "spec.yaml").write_text(spec.to_yaml())
        rows.append(row)
        return row

    for name, official in (("fmen_s", 33.10), ("rlfn", 33.20)):
        spec = get_anchor(name).spec.with_scale(2)
        row = add("completed", spec, psnr=float(32.6 + rng.normal(0, 0.2)),
                  runtime_ms=float(rng.uniform(20, 40)), peak_memory_mb=float(rng.uniform(50, 90)),
                  params=float(get_anchor(name).reference["params"]["x2"]),
                  macs_g=float(rng.uniform(15, 25)), psnr_official=official)
        row.update(is_anchor=True, anchor=name, hparams="{}")
        if weights:
            _save_weights(run / "trials" / row["trial_id"], spec)

    for _ in range(n_searched):
        spec = ArchSpec.from_dict(tiny_spec_dict(int(rng.choice([4, 6, 8, 12, 16])),
                                                 int(rng.integers(1, 4)),
                                                 str(rng.choice(["lrelu0.1", "relu"]))))
        row = add("completed", spec)
        params = _save_weights(run / "trials" / row["trial_id"], spec) if weights else 1000
        size = np.log(params)
        row.update(psnr=float(31.5 + 0.1 * size + rng.normal(0, 0.15)),
                   ssim=float(rng.uniform(0.88, 0.9)),
                   psnr_set5=float(31.5 + 0.1 * size + rng.normal(0, 0.15)),
                   runtime_ms=float(2 * size + rng.uniform(0, 8)),
                   runtime_iqr_ms=float(rng.uniform(0.1, 1)),
                   peak_memory_mb=float(5 * size + rng.uniform(0, 20)),
                   peak_memory_est_mb=float(5 * size + rng.uniform(0, 20)),
                   params=float(params), params_train=float(params),
                   macs_g=float(params * 65536 / 1e9), activations_m=float(rng.uniform(1, 9)),
                   num_conv=float(spec.num_blocks() + 2), train_seconds=float(rng.uniform(20, 60)))

    decoy = ArchSpec.from_dict(tiny_spec_dict(8, 1))
    best = dict(psnr=40.0, runtime_ms=0.5, peak_memory_mb=1.0, params=10.0, macs_g=0.01)
    add("failed", decoy, reason="nan loss at iteration 37", **best)
    add("running", decoy, **best)
    add("pruned", decoy, reason="pruned at iteration 200", psnr=31.0, runtime_ms=3.0,
        peak_memory_mb=9.0)
    add("infeasible", decoy, reason="runtime_ms 95.0 > 50", runtime_ms=95.0,
        peak_memory_mb=30.0)
    pd.DataFrame(rows, columns=COLUMNS).to_csv(run / "trials.csv", index=False)
    (run / "search.yaml").write_text(yaml.safe_dump(SEARCH, sort_keys=False))
    (run / "state.json").write_text(json.dumps(STATE))
    return run


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """A fresh synthetic run per test module (tests may write reports/exports into it)."""
    return build_run(tmp_path_factory.mktemp("runs"))


def brute_force_front(df: pd.DataFrame, objectives: dict[str, str]) -> set:
    """Index labels of the non-dominated completed rows, by the definition (O(n^2))."""
    ok = df[df["status"] == "completed"].copy()
    for name in objectives:
        ok = ok[np.isfinite(pd.to_numeric(ok[name], errors="coerce").astype(float))]
    losses = {label: [(-1 if d in ("max", "maximize") else 1) * float(ok.loc[label, n])
                      for n, d in objectives.items()] for label in ok.index}
    front = set()
    for a, la in losses.items():
        dominated = any(all(x <= y for x, y in zip(lb, la, strict=True)) and lb != la
                        for b, lb in losses.items() if b != a)
        if not dominated:
            front.add(a)
    return front
