"""Export a chosen architecture of a run for full training and deployment.

``export_trial`` writes ``runs/<name>/exports/<arch_id>/``:

- ``arch.yaml``: the ArchSpec alone (``ArchSpec.from_file`` gives the same spec back);
- ``train.yaml``: a TrainConfig that ``nas train`` accepts unchanged: the spec inline, a full
  training recipe from one of the papers (:data:`RECIPES`), data, seed, and under ``picked:``
  the proxy metrics the trial was picked on;
- ``basicsr.yml``: the same recipe as BasicSR options (``network_g`` needs a small BasicSR arch
  wrapper around ``search_space.builder.SRNet``, given in the file's header);
- ``model_deploy.pth``: the proxy-trained weights in deploy form (esrnas checkpoint);
- ``model.onnx``: the deploy model with dynamic batch/height/width, checked against PyTorch with
  onnxruntime (when onnx and onnxruntime are installed).

torch, onnx and onnxruntime are imported inside the functions that need them.
"""

from __future__ import annotations

import copy
import importlib.util
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from analysis import metrics, pareto
from analysis.plots import parse_json
from analysis.report import Run, proxy_train
from search_space.errors import InputError, did_you_mean
from search_space.io import save_torch_atomic, write_atomic
from search_space.spec import ArchSpec

__all__ = ["PICKS", "RECIPES", "ExportResult", "select_trial", "trial_spec", "train_config",
           "basicsr_options", "export_trial", "export_onnx"]

# named picks -> (column, direction) they optimise; "knee" uses the run's objectives
PICKS = {"knee": None, "max-psnr": ("psnr", "maximize"), "fastest": ("runtime_ms", "minimize"),
         "smallest-memory": ("peak_memory_mb", "minimize")}

# Full training recipes, as the papers state them (the anchors' YAMLs carry the same under
# published.training). lr_patch is in LR pixels.
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
ONNX_TOLERANCE = 1e-4


# ---------------------------------------------------------------------------- picking
def _range_text(df: pd.DataFrame, where: str) -> str:
    parts = []
    for column in pareto.where_columns(where):
        if column in df.columns:
            values = pd.to_numeric(df[column], errors="coerce").dropna()
            if not values.empty:
                parts.append(f"{column} ranges {values.min():.4g}..{values.max():.4g}")
    return "; ".join(parts)


def select_trial(
    df: pd.DataFrame,
    pick: str,
    objectives: Mapping[str, str],
    *,
    where: str | None = None,
) -> tuple[Any, str]:
    """Index label of the picked row, and a one-line description of why it was picked.

    Args:
        df: Trials table.
        pick: ``knee``, ``max-psnr``, ``fastest``, ``smallest-memory``, a trial id, an arch_id
            or an anchor name (then its best completed trial).
        objectives: Objectives of the knee's front.
        where: Conditions the trial must satisfy (``analysis.pareto.filter_where``).
    """
    completed = df[df["status"] == pareto.ELIGIBLE_STATUS]
    candidates = pareto.filter_where(completed, where) if where else completed
    if where and candidates.empty:
        ranges = _range_text(completed, where)
        raise InputError(f"--where {where!r}: no completed trial satisfies it ("
                         f"{len(completed)} completed{'; ' + ranges if ranges else ''})")
    if pick in PICKS:
        return _select_named(candidates, pick, objectives, where)
    return _select_by_id(df, candidates, pick, where)


def _select_named(candidates: pd.DataFrame, pick: str, objectives: Mapping[str, str],
                  where: str | None) -> tuple[Any, str]:
    scope = f" among trials with {where}" if where else ""
    if pick == "knee":
        label = pareto.knee_point(candidates, objectives)
        if label is None:
            raise InputError(f"--pick knee: no completed trial{scope} has values for all of "
                             f"{', '.join(objectives)}")
        return label, f"knee of the front of {', '.join(objectives)}{scope}"
    column, direction = PICKS[pick]
    values = pd.to_numeric(candidates.get(column), errors="coerce")
    rows = candidates[values.notna()]
    if rows.empty:
        raise InputError(f"--pick {pick}: no completed trial{scope} has a {column} value")
    psnr = pd.to_numeric(rows.get("psnr", pd.Series(np.nan, rows.index)), errors="coerce")
    runtime = pd.to_numeric(rows.get("runtime_ms", pd.Series(np.nan, rows.index)),
                            errors="coerce")
    order = pd.DataFrame({
        "key": values[rows.index] * (-1 if direction == "maximize" else 1),
        # ties: better PSNR, then faster
        "psnr": -psnr.fillna(-np.inf), "runtime": runtime.fillna(np.inf),
    }).sort_values(["key", "psnr", "runtime"], kind="stable")
    return order.index[0], f"{pick} ({column} {direction[:3]}){scope}"


def _select_by_id(df: pd.DataFrame, candidates: pd.DataFrame, pick: str,
                  where: str | None) -> tuple[Any, str]:
    matches = df[df["trial_id"] == pick]
    for column in ("arch_id", "anchor"):  # the same architecture may have run more than once
        if matches.empty and column in df.columns:
            matches = df[(df[column] == pick) & (df["status"] == pareto.ELIGIBLE_STATUS)]
            matches = matches.sort_values("psnr", ascending=False) if "psnr" in df else matches
    if matches.empty:
        names = list(df["trial_id"]) + [a for a in df.get("anchor", []) if a] + list(PICKS)
        raise InputError(f"--pick: {pick!r} is neither one of {', '.join(PICKS)} nor a trial "
                         f"id, arch id or anchor of this run{did_you_mean(pick, names)}")
    label = matches.index[0]
    row = df.loc[label]
    if row["status"] != pareto.ELIGIBLE_STATUS:
        reason = f" ({row['reason']})" if row.get("reason") else ""
        raise InputError(f"--pick {pick}: trial is {row['status']}{reason}; only completed trials "
                         "can be exported")
    if where and label not in candidates.index:
        raise InputError(f"--pick {pick}: trial does not satisfy --where {where!r}")
    return label, f"trial {row['trial_id']}"


# ---------------------------------------------------------------------------- configs
def trial_dir(run: Run, row: Mapping[str, Any]) -> Path:
    return run.path / "trials" / str(row["trial_id"])


def trial_spec(run: Run, row: Mapping[str, Any]) -> ArchSpec:
    """The trial's ArchSpec: ``trials/<id>/spec.yaml``, else the ``spec`` JSON of trials.csv."""
    path = trial_dir(run, row) / "spec.yaml"
    if path.is_file():
        spec = ArchSpec.from_file(path)
    elif row.get("spec"):
        spec = ArchSpec.from_yaml(str(row["spec"]), source=f"trials.csv spec of {row['trial_id']}")
    else:
        raise InputError(f"trial {row['trial_id']}: no spec (neither {path} nor a spec column)")
    if row.get("arch_id") and spec.arch_id() != row["arch_id"]:
        raise InputError(f"trial {row['trial_id']}: its spec has arch_id {spec.arch_id()}, but "
                         f"trials.csv says {row['arch_id']}")
    return spec


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
    data = parse_json(row.get("hparams"))
    return dict(data) if isinstance(data, Mapping) else {}


def _list(value: Any) -> list[str] | None:
    if isinstance(value, str) and value:
        return [value]
    if isinstance(value, list) and value:
        return [str(v) for v in value]
    return None


def train_config(
    run: Run,
    row: Mapping[str, Any],
    spec: ArchSpec,
    *,
    recipe: str = DEFAULT_RECIPE,
    iterations: int | None = None,
    train_data: str | None = None,
    picked: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The TrainConfig mapping of ``train.yaml`` (see the module docstring)."""
    if recipe not in RECIPES:
        raise InputError(f"--recipe: {recipe!r} not allowed; allowed: {', '.join(RECIPES)}"
                         f"{did_you_mean(recipe, RECIPES)}")
    r = RECIPES[recipe]
    iterations = iterations or r["iterations"]
    if not iterations:
        raise InputError(f"--recipe {recipe}: the paper gives no number of iterations; pass "
                         "--iterations N")
    data = proxy_train(run).get("data") or {}
    val = _list(data.get("val")) or ["Set5", "Set14"]
    hparams = _hparams(row)
    eval_every = min(r["eval_every"], iterations)
    return {
        "arch": spec.to_dict(),
        "scale": None,
        "data": {"train": train_data or (data.get("train") if isinstance(data.get("train"), str)
                                         else None) or "SunHays80",
                 "val": val, "lr_patch": r["lr_patch"], "batch_size": r["batch_size"],
                 "workers": 4, "augment": True, "lr_dir": None},
        "optim": copy.deepcopy(r["optim"]),
        "schedule": copy.deepcopy(r["schedule"]),
        "iterations": int(iterations),
        "eval_every": eval_every,
        "checkpoint_every": eval_every,
        "loss": r["loss"],
        "distill": _distill(hparams),
        "seed": int(run.search.get("seed") or 0),
        "device": "auto",
        "amp": False,
        "channels_last": "auto",
        "threads": None,
        "init": None,
        "out_dir": f"runs/train/{run.name}_{spec.arch_id()}",
        "picked": dict(picked or {}),
    }


def basicsr_options(config: Mapping[str, Any], spec: ArchSpec, name: str) -> dict[str, Any]:
    """BasicSR-style options for the same recipe (SRModel, PairedImageDataset)."""
    schedule, total = config["schedule"], config["iterations"]
    if schedule["type"] == "step":
        milestones = list(range(schedule["step_iters"], total, schedule["step_iters"]))
        scheduler = {"type": "MultiStepLR", "milestones": milestones, "gamma": schedule["gamma"]}
    elif schedule["type"] == "cosine":
        scheduler = {"type": "CosineAnnealingRestartLR", "periods": [total],
                     "restart_weights": [1], "eta_min": schedule["eta_min"]}
    else:
        scheduler = {"type": "MultiStepLR", "milestones": [total], "gamma": 1.0}
    s = spec.scale
    loss = "L1Loss" if config["loss"] == "l1" else "MSELoss"
    return {
        "name": name,
        "model_type": "SRModel",
        "scale": s,
        "num_gpu": 1,
        "manual_seed": config["seed"],
        "datasets": {
            "train": {"name": "DIV2K", "type": "PairedImageDataset",
                      "dataroot_gt": "datasets/DIV2K/DIV2K_train_HR_sub",
                      "dataroot_lq": f"datasets/DIV2K/DIV2K_train_LR_bicubic/X{s}_sub",
                      "io_backend": {"type": "disk"}, "gt_size": config["data"]["lr_patch"] * s,
                      "use_hflip": True, "use_rot": True, "use_shuffle": True,
                      "num_worker_per_gpu": 6,
                      "batch_size_per_gpu": config["data"]["batch_size"],
                      "dataset_enlarge_ratio": 1, "prefetch_mode": None},
            "val": {"name": "Set5", "type": "PairedImageDataset",
                    "dataroot_gt": "datasets/Set5/GTmod12",
                    "dataroot_lq": f"datasets/Set5/LRbicx{s}", "io_backend": {"type": "disk"}},
        },
        "network_g": {"type": "ESRNASNet", **spec.to_dict()},
        "path": {"pretrain_network_g": None, "strict_load_g": True, "resume_state": None},
        "train": {
            "ema_decay": 0,
            "optim_g": {"type": "Adam", "lr": config["optim"]["lr"],
                        "weight_decay": config["optim"]["weight_decay"],
                        "betas": list(config["optim"]["betas"])},
            "scheduler": scheduler,
            "total_iter": total,
            "warmup_iter": -1,
            "pixel_opt": {"type": loss, "loss_weight": 1.0, "reduction": "mean"},
        },
        "val": {"val_freq": config["eval_every"], "save_img": False,
                "metrics": {"psnr": {"type": "calculate_psnr", "crop_border": s,
                                     "test_y_channel": True},
                            "ssim": {"type": "calculate_ssim", "crop_border": s,
                                     "test_y_channel": True}}},
        "logger": {"print_freq": 100, "save_checkpoint_freq": config["checkpoint_every"],
                   "use_tb_logger": True, "wandb": {"project": None, "resume_id": None}},
        "dist_params": {"backend": "nccl", "port": 29500},
    }


_BASICSR_HEADER = """\
# BasicSR options for an esrnas architecture ({arch_id}), recipe: {recipe}.
# network_g needs this arch registered with BasicSR (e.g. in basicsr/archs/esrnas_arch.py):
#
#   from basicsr.utils.registry import ARCH_REGISTRY
#   from search_space.builder import SRNet
#   from search_space.spec import ArchSpec
#
#   @ARCH_REGISTRY.register()
#   class ESRNASNet(SRNet):
#       def __init__(self, **spec):
#           super().__init__(ArchSpec.from_dict(spec))
#
#       def forward(self, x):  # BasicSR feeds [0, 1]; the spec expects [0, input_range]
#           return super().forward(x * self.input_range) / self.input_range
#
# Dataset paths follow BasicSR's DIV2K layout; change them to yours.
"""

_TRAIN_HEADER = """\
# esrnas training config for architecture {arch_id}, exported from run {run} ({why}).
# Recipe: {source}.
# Train with: nas train {path}
"""


# ---------------------------------------------------------------------------- writing
@dataclass
class ExportResult:
    directory: Path
    trial_id: str
    arch_id: str
    why: str
    files: list[Path]
    metrics: dict[str, Any]
    onnx_max_abs_diff: float | None = None
    warnings: list[str] = field(default_factory=list)


def _write_yaml(path: Path, data: Any, header: str = "") -> None:
    write_atomic(path, header + yaml.safe_dump(data, sort_keys=False, default_flow_style=None,
                                              width=100))


def export_trial(
    run: Run,
    label: Any,
    *,
    why: str = "",
    objectives: Mapping[str, str] | None = None,
    where: str | None = None,
    recipe: str = DEFAULT_RECIPE,
    iterations: int | None = None,
    train_data: str | None = None,
    onnx: bool = True,
) -> ExportResult:
    """Write ``exports/<arch_id>/`` for row ``label`` of ``run.trials``."""
    row = run.trials.loc[label].to_dict()
    spec = trial_spec(run, row)
    out = run.path / "exports" / spec.arch_id()
    out.mkdir(parents=True, exist_ok=True)
    metrics = _picked_metrics(row)
    picked = {"run": str(run.path), "trial_id": str(row["trial_id"]),
              "anchor": row.get("anchor") or None, "pick": why, "where": where,
              "objectives": dict(objectives or {}), "recipe": recipe, "metrics": metrics}
    config = train_config(run, row, spec, recipe=recipe, iterations=iterations,
                          train_data=train_data, picked=picked)
    result = ExportResult(directory=out, trial_id=str(row["trial_id"]), arch_id=spec.arch_id(),
                          why=why, files=[], metrics=metrics)

    _write_yaml(out / "arch.yaml", spec.to_dict())
    train_yaml = out / "train.yaml"
    _write_yaml(train_yaml, config, _TRAIN_HEADER.format(
        arch_id=spec.arch_id(), run=run.name, why=why or "picked by hand",
        source=RECIPES[recipe]["source"], path=train_yaml))
    _write_yaml(out / "basicsr.yml", basicsr_options(config, spec, f"{spec.arch_id()}_x"
                                                                   f"{spec.scale}_{recipe}"),
                _BASICSR_HEADER.format(arch_id=spec.arch_id(), recipe=recipe))
    result.files += [out / "arch.yaml", train_yaml, out / "basicsr.yml"]

    model = _deploy_model(run, row, spec, result)
    if model is not None:
        _save_checkpoint(out / "model_deploy.pth", spec, model, row)
        result.files.append(out / "model_deploy.pth")
        if onnx:
            _maybe_onnx(model, out / "model.onnx", result)
    return result


def _deploy_model(run: Run, row: Mapping[str, Any], spec: ArchSpec, result: ExportResult):
    from search_space.builder import build_model
    from search_space.checkpoint import load_weights

    weights = trial_dir(run, row) / "model_deploy.pth"
    if not weights.is_file():
        result.warnings.append(f"no proxy weights at {weights}: model_deploy.pth and model.onnx "
                               "not written")
        return None
    model = build_model(spec, deploy=True)
    load_weights(model, weights, deploy=True)
    return model.eval()


def _save_checkpoint(path: Path, spec: ArchSpec, model, row: Mapping[str, Any]) -> None:

    checkpoint = {"format": "esrnas", "version": 1, "spec": spec.to_dict(),
                  "model_deploy": model.state_dict(),
                  "source": {"trial_id": str(row["trial_id"]), "kind": "proxy training"}}
    save_torch_atomic(checkpoint, path)


def _maybe_onnx(model, path: Path, result: ExportResult) -> None:
    missing = [m for m in ("onnx", "onnxruntime") if importlib.util.find_spec(m) is None]
    if missing:
        result.warnings.append(f"model.onnx not written: {' and '.join(missing)} not installed "
                               "(pip install 'esrnas[export]')")
        return
    diff = export_onnx(model, path)
    result.onnx_max_abs_diff = diff
    result.files.append(path)
    if diff > ONNX_TOLERANCE:
        result.warnings.append(f"model.onnx differs from PyTorch by {diff:.2e} (> "
                               f"{ONNX_TOLERANCE:g}, relative to the input range)")


def export_onnx(model, path: Path, *, check_hw: tuple[int, int] = (23, 37)) -> float:
    """Export the deploy ``model`` to ONNX with dynamic batch, height and width.

    The file is checked with onnxruntime on an input of another size than the traced one.

    Returns:
        Max absolute difference between onnxruntime and PyTorch outputs, divided by the
        model's ``input_range`` (so that 1e-4 means the same for 0..1 and 0..255 models).
    """
    import warnings

    import onnxruntime
    import torch

    value_range = float(getattr(model, "input_range", 1.0))
    dummy = torch.rand(1, 3, 32, 32) * value_range
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.onnx")
    with warnings.catch_warnings(), torch.no_grad():
        # the TorchScript exporter needs no onnxscript; its deprecation warning is not news
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model, (dummy,), str(tmp), dynamo=False, opset_version=17,
            input_names=["lr"], output_names=["sr"],
            dynamic_axes={"lr": {0: "batch", 2: "height", 3: "width"},
                          "sr": {0: "batch", 2: "sr_height", 3: "sr_width"}})
    os.replace(tmp, path)
    x = torch.rand(2, 3, *check_hw, generator=torch.Generator().manual_seed(0)) * value_range
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {"lr": x.numpy()})[0]
    with torch.no_grad():
        expected = model(x).numpy()
    if got.shape != expected.shape:
        raise RuntimeError(f"ONNX output shape {got.shape} != PyTorch {expected.shape}")
    return float(np.abs(got - expected).max() / value_range)
