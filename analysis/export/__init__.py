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

One job per module: ``pick`` (which trial, its spec read safely), ``training``
(train.yaml), ``basicsr`` (basicsr.yml), ``card`` (README.md and the ONNX metadata) and
``onnx`` (model.onnx); this module writes the folder, all or nothing, and re-exports their public
names. torch, onnx and onnxruntime are imported inside the functions that need them.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from analysis.export.basicsr import _BASICSR_HEADER, basicsr_options
from analysis.export.card import _card_text, model_card
from analysis.export.onnx import _maybe_onnx, export_onnx
from analysis.export.pick import PICKS, select_trial, trial_dir, trial_spec
from analysis.export.training import (
    _TRAIN_HEADER,
    DEFAULT_TRAIN_DATA,
    _picked_metrics,
    train_config,
)
from analysis.metrics import COL
from analysis.run import Run
from search_space.errors import InputError
from search_space.io import current_umask, make_output_dir, shown, write_atomic
from search_space.spec import ArchSpec

__all__ = ["PICKS", "DEFAULT_TRAIN_DATA", "ExportResult", "select_trial", "trial_spec",
           "train_config", "basicsr_options", "model_card", "export_trial", "export_onnx"]


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
            diff, notes = _maybe_onnx(model, out / "model.onnx", metadata=card)
            if diff is not None:
                result.onnx_max_abs_diff = diff
                result.files.append(out / "model.onnx")
            result.warnings += notes
    write_atomic(out / "README.md", _card_text(card, has_weights=model is not None))
    result.files.append(out / "README.md")
    result.files = [final / f.name for f in result.files]
    return result


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
