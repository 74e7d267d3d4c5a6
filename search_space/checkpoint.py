"""esrnas checkpoints: what is saved, and loading weights onto a spec-built model.

A checkpoint is a dict::

    {"format": "esrnas", "version": 1, "spec": ArchSpec.to_dict(),
     "model": train-form state dict (optional), "model_deploy": deploy-form state dict (optional),
     ...trainer state (iteration, optimizer, scheduler, rng, config)}

``nas export`` writes the deploy-form weights under ``params`` (BasicSR's key) instead of
``model_deploy``. BasicSR's own checkpoints (``{"params": ..., "params_ema": ...}``, no spec) give
their EMA weights when present, else ``params``, in whichever form BasicSR trained. A bare state
dict is accepted too (matched against the deploy or train form by its keys).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from search_space.errors import InputError
from search_space.io import MAX_CHECKPOINT_BYTES, first_line, open_regular, save_torch_atomic, shown
from search_space.spec import ArchSpec

__all__ = ["write_checkpoint", "read_checkpoint", "load_weights", "spec_of_checkpoint",
           "basicsr_state", "CHECKPOINT_FORMAT", "CHECKPOINT_VERSION"]

CHECKPOINT_FORMAT = "esrnas"
CHECKPOINT_VERSION = 1
# BasicSR's parameter keys, the one preferred for inference first
BASICSR_KEYS = ("params_ema", "params")


def write_checkpoint(path: str | Path, spec: ArchSpec, **content: Any) -> Path:
    """Write a checkpoint atomically: the format header and ``spec``, then ``content`` (weights
    under ``model`` / ``model_deploy`` / ``params``, trainer state, provenance)."""
    header = {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "spec": spec.to_dict()}
    return save_torch_atomic({**header, **content}, path)


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not os.path.lexists(path):
        raise InputError(f"{shown(path)}: checkpoint file not found")
    fd = open_regular(path, "checkpoint")  # a pipe or device is refused, not waited on
    try:
        with os.fdopen(fd, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size > MAX_CHECKPOINT_BYTES:
                raise InputError(f"{shown(path)}: checkpoint of {size:,} bytes; at most "
                                 f"{MAX_CHECKPOINT_BYTES:,} are read")
            data = torch.load(f, map_location="cpu", weights_only=True)
    except InputError:
        raise
    except Exception as e:  # noqa: BLE001  (torch raises many types for a bad file)
        raise InputError(
            f"{shown(path)}: not a readable PyTorch checkpoint ({type(e).__name__})") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a checkpoint dict, got {type(data).__name__}")
    return data


def spec_of_checkpoint(ckpt: dict[str, Any], path: str | Path) -> ArchSpec | None:
    if ckpt.get("format") != CHECKPOINT_FORMAT:
        return None
    return ArchSpec.from_dict(ckpt.get("spec"), what=f"spec in checkpoint {path}")


def basicsr_state(ckpt: dict[str, Any]) -> dict[str, Any] | None:
    """The state dict of a BasicSR checkpoint (``params_ema``, else ``params``; a DataParallel
    ``module.`` prefix removed), or None when ``ckpt`` is not one."""
    for key in BASICSR_KEYS:
        state = ckpt.get(key)
        if isinstance(state, dict) and state:
            return {k.removeprefix("module."): v for k, v in state.items()}
    return None


def load_weights(model: nn.Module, path: str | Path, *, deploy: bool) -> None:
    """Load ``path`` onto ``model`` (deploy or train form); one clear error on a mismatch."""
    ckpt = read_checkpoint(path)
    spec = spec_of_checkpoint(ckpt, path)
    model_spec = getattr(model, "spec", None)
    if spec is not None and model_spec is not None and spec.arch_id() != model_spec.arch_id():
        raise InputError(f"{path}: checkpoint is of architecture {spec.arch_id()} "
                         f"({spec.name or 'unnamed'}), not {model_spec.arch_id()} "
                         f"({model_spec.name or 'unnamed'})")
    if spec is not None:
        key = "model_deploy" if deploy else "model"
        state = ckpt.get(key)
        if state is None and deploy:  # an export: deploy form under BasicSR's key
            state = ckpt.get("params")
        if state is None and deploy and ckpt.get("model") is not None:
            raise InputError(f"{path}: has no deploy-form weights; load with deploy=False")
        if state is None:
            raise InputError(f"{path}: checkpoint has no {key!r} weights")
    else:
        state = basicsr_state(ckpt) or ckpt
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise InputError(
            f"{path}: weights do not fit this architecture ({first_line(e)})") from None
