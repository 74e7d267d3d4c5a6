"""Export a chosen architecture of a run for full training and deployment.

``export_trial`` writes ``runs/<name>/exports/<arch_id>/``:

- ``arch.yaml``: the ArchSpec alone (``ArchSpec.from_file`` gives the same spec back);
- ``train.yaml``: a TrainConfig that ``nas train`` accepts unchanged: the spec inline, a full
  training recipe from one of the papers (``trainers.recipes``), a prepared training set (``nas data
  prepare``; :data:`DEFAULT_TRAIN_DATA` unless told otherwise), seed, and
  under ``picked:`` the proxy metrics the trial was picked on;
- ``basicsr.yml``: the same recipe as BasicSR options on the same prepared set; ``network_g``
  builds the deploy form (the form of the weights) through ``analysis.basicsr_plugin``;
- ``model_deploy.pth``: the proxy-trained weights in deploy form under ``params`` (BasicSR's key;
  also an esrnas checkpoint: format, spec);
- ``arch.py``: the deploy network in plain PyTorch (no esrnas import), checked against the model;
- ``model.onnx``: the deploy model with dynamic batch/height/width, checked against PyTorch with
  onnxruntime (when onnx and onnxruntime are installed), the model card's facts in its metadata;
- ``README.md``: the model card (what the weights are, the proxy that made them, input range,
  scale, how to load them).

torch, onnx and onnxruntime are imported inside the functions that need them.
"""

from __future__ import annotations

import contextlib
import copy
import importlib.util
import math
import os
import shutil
import tempfile
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from analysis import metrics, pareto
from analysis.formatting import parse_json
from analysis.metrics import COL
from analysis.run import Run, proxy_train
from analysis.rundir import TrialDir
from search_space.errors import InputError, did_you_mean
from search_space.io import current_umask, make_output_dir, shown, write_atomic
from search_space.limits import check_resources
from search_space.spec import ArchSpec

__all__ = ["PICKS", "ExportResult", "select_trial", "trial_spec", "train_config",
           "basicsr_options", "export_trial", "export_onnx"]

# named picks -> (column, direction) they optimise; "knee" uses the run's objectives
PICKS = {"knee": None, "max-psnr": (COL.psnr, "maximize"), "fastest": (COL.runtime_ms, "minimize"),
         "smallest-memory": (COL.peak_memory_mb, "minimize")}

# Where train.yaml / basicsr.yml look for training data unless told: what the README's
# `nas data prepare DIV2K_train_HR --out datasets/DIV2K_sub` makes.
DEFAULT_TRAIN_DATA = "datasets/DIV2K_sub"
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
    completed = df[df[COL.status] == pareto.ELIGIBLE_STATUS]
    candidates = pareto.filter_where(completed, where) if where else completed
    if where and candidates.empty:
        ranges = _range_text(completed, where)
        raise InputError(f"--where {where!r}: no completed trial satisfies it ("
                         f"{len(completed)} completed{'; ' + ranges if ranges else ''})")
    if not pick.strip():
        raise InputError(f"--pick: expected one of {', '.join(PICKS)}, a trial id, an arch id or "
                         "an anchor, got an empty value")
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
    psnr = pd.to_numeric(rows.get(COL.psnr, pd.Series(np.nan, rows.index)), errors="coerce")
    runtime = pd.to_numeric(rows.get(COL.runtime_ms, pd.Series(np.nan, rows.index)),
                            errors="coerce")
    order = pd.DataFrame({
        "key": values[rows.index] * (-1 if direction == "maximize" else 1),
        # ties: better PSNR, then faster
        "psnr": -psnr.fillna(-np.inf), "runtime": runtime.fillna(np.inf),
    }).sort_values(["key", "psnr", "runtime"], kind="stable")
    return order.index[0], f"{pick} ({column} {direction[:3]}){scope}"


def _select_by_id(df: pd.DataFrame, candidates: pd.DataFrame, pick: str,
                  where: str | None) -> tuple[Any, str]:
    matches = df[df[COL.trial_id] == pick]
    for column in (COL.arch_id, COL.anchor):  # the same architecture may have run more than once
        if matches.empty and column in df.columns:
            matches = df[(df[column] == pick) & (df[COL.status] == pareto.ELIGIBLE_STATUS)]
            matches = matches.sort_values(COL.psnr, ascending=False) if COL.psnr in df else matches
    if matches.empty:
        names = list(df[COL.trial_id]) + [a for a in df.get(COL.anchor, []) if a] + list(PICKS)
        raise InputError(f"--pick: {pick!r} is neither one of {', '.join(PICKS)} nor a trial "
                         f"id, arch id or anchor of this run{did_you_mean(pick, names)}")
    label = matches.index[0]
    row = df.loc[label]
    if row[COL.status] != pareto.ELIGIBLE_STATUS:
        reason = f" ({row[COL.reason]})" if row.get(COL.reason) else ""
        raise InputError(f"--pick {pick}: trial is {row[COL.status]}{reason}; only completed "
                         "trials can be exported")
    if where and label not in candidates.index:
        raise InputError(f"--pick {pick}: trial does not satisfy --where {where!r}")
    return label, f"trial {row[COL.trial_id]}"


# ---------------------------------------------------------------------------- configs
def trial_dir(run: Run, row: Mapping[str, Any]) -> TrialDir:
    folder = run.layout.trial(str(row[COL.trial_id]))
    run.layout.contained(folder.path, f"trial folder of {row[COL.trial_id]}")
    return folder


def trial_spec(run: Run, row: Mapping[str, Any]) -> ArchSpec:
    """The trial's ArchSpec: ``trials/<id>/spec.yaml``, else the ``spec`` JSON of trials.csv;
    refused above the size limits (``search_space.limits``) before anything is built."""
    path = trial_dir(run, row).spec_yaml
    if os.path.lexists(path):
        spec = ArchSpec.from_file(run.layout.contained(path, "spec file"))
    elif row.get(COL.spec):
        spec = ArchSpec.from_yaml(str(row[COL.spec]),
                                  source=f"trials.csv spec of {row[COL.trial_id]}")
    else:
        raise InputError(f"trial {row[COL.trial_id]}: no spec (neither {path} nor a spec column)")
    if row.get(COL.arch_id) and spec.arch_id() != row[COL.arch_id]:
        raise InputError(f"trial {row[COL.trial_id]}: its spec has arch_id {spec.arch_id()}, but "
                         f"trials.csv says {row[COL.arch_id]}")
    check_resources(spec, what=shown(path) if os.path.lexists(path) else
                    f"trials.csv spec of {row[COL.trial_id]}")
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
    data = parse_json(row.get(COL.hparams))
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
        "seed": int(run.search.get("seed") or 0),
        "device": "auto",
        "amp": False,
        "channels_last": "auto",
        "threads": None,
        "init": None,
        "out_dir": f"runs/train/{run.name}_{spec.arch_id()}",
        "picked": dict(picked or {}),
    }


def loader_workers(limit: int = 4) -> int:
    """Loader processes for this machine: ``limit``, or fewer on a machine with fewer cores."""
    return max(1, min(limit, os.cpu_count() or 1))


def basicsr_options(config: Mapping[str, Any], spec: ArchSpec, name: str) -> dict[str, Any]:
    """BasicSR-style options for the same recipe (SRModel, PairedImageDataset).

    The training set is train.yaml's, in the layout ``nas data prepare`` writes; ``num_gpu:
    auto`` uses the GPUs BasicSR finds (none: the CPU) and ``num_worker_per_gpu`` is sized for
    this machine (:func:`loader_workers`).
    """
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
    root = Path(config["data"]["train"])
    return {
        "name": name,
        "model_type": "SRModel",
        "scale": s,
        "num_gpu": "auto",
        "manual_seed": config["seed"],
        "datasets": {
            "train": {"name": root.name, "type": "PairedImageDataset",
                      # the layout of nas data prepare (trainers.prepare), which is BasicSR's
                      "dataroot_gt": str(root / "HR_sub"),
                      "dataroot_lq": str(root / "LR_bicubic" / f"X{s}_sub"),
                      "io_backend": {"type": "disk"}, "gt_size": config["data"]["lr_patch"] * s,
                      "use_hflip": True, "use_rot": True, "use_shuffle": True,
                      "num_worker_per_gpu": loader_workers(6),
                      "batch_size_per_gpu": config["data"]["batch_size"],
                      "dataset_enlarge_ratio": 1, "prefetch_mode": None},
            "val": {"name": "Set5", "type": "PairedImageDataset",
                    "dataroot_gt": "datasets/Set5/GTmod12",
                    "dataroot_lq": f"datasets/Set5/LRbicx{s}", "io_backend": {"type": "disk"}},
        },
        "network_g": {"type": "ESRNASNet", "deploy": True, **spec.to_dict()},
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
                   "use_tb_logger": False, "wandb": {"project": None, "resume_id": None}},
        "dist_params": {"backend": "nccl", "port": 29500},
    }


_BASICSR_HEADER = """\
# BasicSR (1.4.2) options for an esrnas architecture ({arch_id}), recipe: {recipe}.
# Train with BasicSR's train pipeline and the ESRNASNet arch registered (esrnas installed):
#
#   python -m analysis.basicsr_plugin -opt basicsr.yml
#
# network_g builds the deploy form, the form of model_deploy.pth (key params): set
# path.pretrain_network_g to it to start from the proxy weights. deploy: false builds the
# re-parameterisable training form instead (its weights do not load into the deploy form).
# Training data: {train}, as nas data prepare lays it out (HR_sub, LR_bicubic/X{scale}_sub).
# datasets.val is Set5 in BasicSR's layout (GTmod12, LRbicx{scale}): point it at yours, or
# remove it and the val section.
# Keys that follow the machine: num_gpu (auto: the GPUs found, none -> CPU) and
# datasets.train.num_worker_per_gpu (set to this machine's cores, at most 6).
"""

_TRAIN_HEADER = """\
# esrnas training config for architecture {arch_id}, exported from run {run} ({why}).
# Recipe as the paper states it (its data included): {source}.
# Training data here (data.train): {data}.
# data.workers is sized for the machine that exported this file; set it to your cores.
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
    recipe: Mapping[str, Any],
    iterations: int | None = None,
    train_data: str | None = None,
    data_note: str = "",
    onnx: bool = True,
    force: bool = False,
) -> ExportResult:
    """Write ``exports/<arch_id>/`` for row ``label`` of ``run.trials``, with a full-training
    ``recipe`` (one of ``trainers.recipes``: the caller picks it, the export only writes it).

    The folder is written whole into a temporary folder beside it and renamed into place, so a
    failure leaves no half-export; an existing export is replaced only with ``force``."""
    row = run.trials.loc[label].to_dict()
    spec = trial_spec(run, row)
    final = _export_folder(run, spec, force=force)
    with _staging(final) as out:
        result = _write_export(run, row, spec, out, final, why=why, objectives=objectives,
                               where=where, recipe=recipe, iterations=iterations,
                               train_data=train_data, data_note=data_note, onnx=onnx)
    return result


def _export_folder(run: Run, spec: ArchSpec, *, force: bool) -> Path:
    """``exports/<arch_id>``, checked: inside the run, ``exports`` a folder, and no earlier export
    there unless ``force``."""
    exports = run.layout.contained(run.layout.exports_dir, "exports folder")
    if os.path.lexists(exports) and not exports.is_dir():
        raise InputError(f"{shown(exports)}: exists and is not a folder; move it away to export")
    final = run.layout.contained(exports / spec.arch_id(), "export folder")
    if os.path.lexists(final) and not force:
        raise InputError(f"{shown(final)}: already exported (files there may have been edited); "
                         "pass --force to replace it")
    return final


@contextlib.contextmanager
def _staging(final: Path):
    """A temporary folder in the run folder that becomes ``final`` when the block succeeds, and
    is removed when it fails: an export is all or nothing (not even ``exports/`` is left)."""
    try:
        staging = Path(tempfile.mkdtemp(prefix=f".export-{final.name}.", suffix=".tmp",
                                        dir=final.parent.parent))
    except OSError as e:
        raise InputError(f"{shown(final.parent.parent)}: cannot write an export there "
                         f"({e.strerror})") from None
    try:
        yield staging
        os.chmod(staging, 0o777 & ~current_umask())
        make_output_dir(final.parent, "exports folder")
        if os.path.lexists(final):  # --force: the old export goes only once the new one exists
            old = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".old", dir=final.parent))
            os.replace(final, old / final.name)
            os.replace(staging, final)
            shutil.rmtree(old)
        else:
            os.replace(staging, final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _write_export(run: Run, row: Mapping[str, Any], spec: ArchSpec, out: Path, final: Path, *,
                  why: str, objectives: Mapping[str, str] | None, where: str | None,
                  recipe: Mapping[str, Any], iterations: int | None, train_data: str | None,
                  data_note: str, onnx: bool) -> ExportResult:
    """Every file of the export, written into ``out``; the result names them in ``final``."""
    metrics = _picked_metrics(row)
    picked = {"run": str(run.path), COL.trial_id: str(row[COL.trial_id]),
              COL.anchor: row.get(COL.anchor) or None, "pick": why, "where": where,
              "objectives": dict(objectives or {}), "recipe": recipe["name"], "metrics": metrics}
    config = train_config(run, row, spec, recipe=recipe, iterations=iterations,
                          train_data=train_data, picked=picked)
    result = ExportResult(directory=final, trial_id=str(row[COL.trial_id]),
                          arch_id=spec.arch_id(), why=why, files=[], metrics=metrics)

    _write_yaml(out / "arch.yaml", spec.to_dict())
    train_yaml = out / "train.yaml"
    _write_yaml(train_yaml, config, _TRAIN_HEADER.format(
        arch_id=spec.arch_id(), run=run.name, why=why or "picked by hand",
        source=recipe["source"], data=data_note or config["data"]["train"],
        path=final / train_yaml.name))
    _write_yaml(out / "basicsr.yml", basicsr_options(config, spec, f"{spec.arch_id()}_x"
                                                                   f"{spec.scale}_{recipe['name']}"),
                _BASICSR_HEADER.format(arch_id=spec.arch_id(), recipe=recipe["name"],
                                       train=config["data"]["train"], scale=spec.scale))
    result.files += [out / "arch.yaml", train_yaml, out / "basicsr.yml"]

    card = model_card(run, row, spec, why=why, recipe=recipe["name"])
    model = _deploy_model(run, row, spec, result)
    if model is not None:
        _save_checkpoint(out / "model_deploy.pth", spec, model, row)
        result.files.append(out / "model_deploy.pth")
        _write_arch_source(model, spec, out / "arch.py", result)
        if onnx:
            _maybe_onnx(model, out / "model.onnx", result, metadata=card)
    write_atomic(out / "README.md", _card_text(card, has_weights=model is not None))
    result.files.append(out / "README.md")
    result.files = [final / f.name for f in result.files]
    return result


def model_card(run: Run, row: Mapping[str, Any], spec: ArchSpec, *, why: str,
               recipe: str) -> dict[str, str]:
    """The facts of the model card (README.md) and of the ONNX metadata, as strings."""
    from analysis.run import protocol

    proxy = protocol(run)
    metrics = _picked_metrics(row)
    return {
        COL.arch_id: spec.arch_id(),
        "name": spec.name or "",
        "scale": str(spec.scale),
        "input_range": f"{spec.input_range:g}",
        "input": f"RGB, float32 NCHW in [0, {spec.input_range:g}]",
        "output": f"RGB, {spec.scale}x the input's height and width, in [0, {spec.input_range:g}]",
        "form": "deploy (re-parameterised, inference only)",
        "weights": "proxy-trained: the short training of the search, not a full training",
        "run": run.name,
        COL.trial_id: str(row[COL.trial_id]),
        "pick": why or "picked by hand",
        "proxy": ", ".join(f"{k} {v}" for k, v in proxy.items() if v not in (None, "")),
        "proxy_metrics": ", ".join(f"{k} {v}" for k, v in metrics.items()),
        "recipe": recipe,
        "producer": "esrnas",
    }


def _card_text(card: Mapping[str, str], *, has_weights: bool) -> str:
    weights = ("model_deploy.pth holds them (key params)" if has_weights else
               "not exported: the trial left no weights")
    return f"""# {card['name'] or 'esrnas network'} {card[COL.arch_id]} (x{card['scale']})

Super-resolution network found by an esrnas search (run `{card['run']}`, trial
`{card[COL.trial_id]}`, {card['pick']}).

- **Weights**: {card['weights']}; {weights}, in the {card['form']} form. Train the network
  fully with `nas train train.yaml` (or BasicSR with `basicsr.yml`) before comparing it with
  published models.
- **Proxy that produced them**: {card['proxy']}.
- **Proxy metrics**: {card['proxy_metrics'] or 'none recorded'}.
- **Scale**: x{card['scale']}.
- **Input**: {card['input']}. **Output**: {card['output']}.

Files: `arch.yaml` (spec), `train.yaml` (`nas train`, recipe {card['recipe']}), `basicsr.yml`
(BasicSR 1.4.2: `python -m analysis.basicsr_plugin -opt basicsr.yml`), `arch.py` (the network in
plain PyTorch), `model_deploy.pth`, `model.onnx` (the same facts in its metadata).

    import torch
    from arch import ESRNASDeployNet
    net = ESRNASDeployNet().eval()
    net.load_state_dict(torch.load("model_deploy.pth", weights_only=True)["params"])
"""


def _write_arch_source(model, spec: ArchSpec, path: Path, result: ExportResult) -> None:
    from analysis.arch_source import check_source, deploy_source

    try:
        source = deploy_source(model, arch_id=spec.arch_id())
        diff = check_source(source, model)
    except ValueError as e:
        result.warnings.append(f"arch.py not written: {e}")
        return
    if diff > 1e-6:
        result.warnings.append(f"arch.py not written: it differs from the model by {diff:.2e}")
        return
    write_atomic(path, source)
    result.files.append(path)


def _deploy_model(run: Run, row: Mapping[str, Any], spec: ArchSpec, result: ExportResult):
    from search_space.checkpoint import load_weights
    from search_space.factory import build_model

    weights = trial_dir(run, row).weights
    if not os.path.lexists(weights):
        result.warnings.append(f"no proxy weights at {weights}: model_deploy.pth and model.onnx "
                               "not written")
        return None
    model = build_model(spec, deploy=True)  # trial_spec checked its size
    load_weights(model, run.layout.contained(weights, "weights file"), deploy=True)
    return model.eval()


def _save_checkpoint(path: Path, spec: ArchSpec, model, row: Mapping[str, Any]) -> None:
    from search_space.checkpoint import write_checkpoint

    write_checkpoint(path, spec, params=model.state_dict(),  # BasicSR's key; the deploy form
                     source={COL.trial_id: str(row[COL.trial_id]), "kind": "proxy training"})


def _maybe_onnx(model, path: Path, result: ExportResult,
                metadata: Mapping[str, str] | None = None) -> None:
    missing = [m for m in ("onnx", "onnxruntime") if importlib.util.find_spec(m) is None]
    if missing:
        result.warnings.append(f"model.onnx not written: {' and '.join(missing)} not installed "
                               "(pip install 'esrnas[export]')")
        return
    diff = export_onnx(model, path, metadata=metadata)
    result.onnx_max_abs_diff = diff
    result.files.append(path)
    if diff > ONNX_TOLERANCE:
        result.warnings.append(f"model.onnx differs from PyTorch by {diff:.2e} (> "
                               f"{ONNX_TOLERANCE:g}, relative to the input range)")


def export_onnx(model, path: Path, *, check_hw: tuple[int, int] = (23, 37),
                metadata: Mapping[str, str] | None = None) -> float:
    """Export the deploy ``model`` to ONNX with dynamic batch, height and width.

    ``metadata`` goes into the model's ``metadata_props``. The file is checked with
    onnxruntime on an input of another size than the traced one.

    Returns:
        Max absolute difference between onnxruntime and PyTorch outputs, divided by the
        model's ``input_range`` (so that 1e-4 means the same for 0..1 and 0..255 models).
    """
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
    if metadata:
        import onnx

        proto = onnx.load(str(tmp))
        for key, value in metadata.items():
            proto.metadata_props.add(key=str(key), value=str(value))
        onnx.save(proto, str(tmp))
    os.replace(tmp, path)
    x = torch.rand(2, 3, *check_hw, generator=torch.Generator().manual_seed(0)) * value_range
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {"lr": x.numpy()})[0]
    with torch.no_grad():
        expected = model(x).numpy()
    if got.shape != expected.shape:
        raise RuntimeError(f"ONNX output shape {got.shape} != PyTorch {expected.shape}")
    return float(np.abs(got - expected).max() / value_range)
