"""Validation: PSNR/SSIM of a model on benchmark sets, under the NTIRE ESR protocol.

Per image: HR modcropped to the scale, LR by the MATLAB-compatible bicubic resize, input
``LR / 255 * input_range`` as float32 NCHW, output clamped to ``[0, input_range]``, scaled to
0..255 and rounded to uint8, then PSNR/SSIM with a ``scale``-pixel border crop
(:mod:`trainers.metrics`). A dataset's figure is the mean over its images.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from search_space.errors import InputError
from search_space.limits import check_resources
from search_space.spec import ArchSpec
from trainers import metrics
from trainers.data import BUNDLED, resolve_dataset, validation_pairs

__all__ = ["evaluate", "dataset_label", "to_uint8", "to_input", "load_deploy_model",
           "model_from_checkpoint"]


def evaluate(model: nn.Module, datasets: Sequence[str | Path], *, scale: int,
             device: str = "cpu", input_range: float | None = None,
             ssim: bool = True) -> dict[str, dict]:
    """Evaluate ``model`` on each dataset (full images, batch 1, fp32, no grad).

    The model is moved to ``device`` and put in eval mode for the duration; its training mode
    is restored afterwards, so the training loop can call this between steps.

    Args:
        model: Maps ``(1, 3, h, w)`` in ``[0, input_range]`` to ``(1, 3, scale*h, scale*w)``.
        datasets: Bundled names (``Set5``, ``Set14``) or folders of HR images.
        scale: Upscaling factor (also the border crop).
        device: ``cpu`` or ``cuda[:i]``.
        input_range: Pixel range of the model's input/output; default ``model.input_range``
            (1 when the model has none).
        ssim: Also compute SSIM (the slowest part); ``ssim_y``/``ssim_rgb`` are None without it.

    Returns:
        ``{label: {"psnr_y", "ssim_y", "psnr_rgb", "ssim_rgb", "images", "per_image"}}``, where
        ``per_image`` maps image name -> PSNR-Y and ``label`` is the bundled name or folder name.
    """
    if input_range is None:
        input_range = float(getattr(model, "input_range", 1.0))
    was_training = model.training
    model.to(device).eval()
    try:
        return {dataset_label(ds): _evaluate_one(model, ds, scale, device, input_range, ssim)
                for ds in datasets}
    finally:
        model.train(was_training)


def _evaluate_one(model: nn.Module, dataset: str | Path, scale: int, device: str,
                  input_range: float, with_ssim: bool) -> dict:
    rows = {"psnr_y": [], "ssim_y": [], "psnr_rgb": [], "ssim_rgb": []}
    per_image = {}
    for name, lr, hr in validation_pairs(dataset, scale):
        with torch.no_grad():
            sr = to_uint8(model(to_input(lr, input_range, device)), input_range)
        if sr.shape != hr.shape:
            raise ValueError(f"model output {sr.shape} does not match HR {hr.shape} for {name} "
                             f"(is the model's scale {scale}?)")
        rows["psnr_y"].append(metrics.psnr_y(sr, hr, scale))
        rows["psnr_rgb"].append(metrics.psnr_rgb(sr, hr, scale))
        if with_ssim:
            rows["ssim_y"].append(metrics.ssim_y(sr, hr, scale))
            rows["ssim_rgb"].append(metrics.ssim_rgb(sr, hr, scale))
        per_image[name] = rows["psnr_y"][-1]
    out = {key: (float(np.mean(values)) if values else None) for key, values in rows.items()}
    return {**out, "images": len(per_image), "per_image": per_image}


def to_input(lr_u8: np.ndarray, input_range: float, device: str = "cpu") -> torch.Tensor:
    """uint8 HxWx3 -> float32 (1, 3, H, W) in ``[0, input_range]``."""
    x = torch.from_numpy(np.array(lr_u8.transpose(2, 0, 1), dtype=np.float32))
    return (x / 255.0 * input_range).unsqueeze(0).to(device)


def to_uint8(sr: torch.Tensor, input_range: float) -> np.ndarray:
    """Model output (1, 3, H, W) in ``[0, input_range]`` -> uint8 HxWx3 (clamp, scale, round)."""
    img = sr.detach().float().squeeze(0).clamp(0, input_range)
    if input_range != 255:
        img = img / input_range * 255.0
    return img.round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()


def dataset_label(dataset: str | Path) -> str:
    """Bundled name as given; a folder by its name (its parent's name for a DIV2K-style ``HR``)."""
    if isinstance(dataset, str) and dataset in BUNDLED:
        return dataset
    folder = resolve_dataset(dataset)
    return folder.parent.name if folder.name == "HR" else folder.name


def model_from_checkpoint(path: str | Path) -> nn.Module:
    """Deploy-form model (eval mode) built from the spec stored in an esrnas checkpoint."""
    from search_space.checkpoint import read_checkpoint, spec_of_checkpoint

    spec = spec_of_checkpoint(read_checkpoint(path), path)
    if spec is None:
        raise InputError(f"{path}: not an esrnas checkpoint (no architecture inside); give the "
                         "architecture (anchor or spec.yaml) and pass this file as its weights")
    return load_deploy_model(spec, path)


def load_deploy_model(spec: ArchSpec, path: str | Path) -> nn.Module:
    """``spec``'s deploy-form model with the weights in ``path`` (eval mode).

    An esrnas checkpoint provides its deploy-form weights, or its training-form weights which are
    then re-parameterised; a bare state dict may fit either form.
    """
    from search_space.checkpoint import load_weights, read_checkpoint, spec_of_checkpoint
    from search_space.factory import build_model
    from search_space.reparam import reparameterize_model

    check_resources(spec, what=f"architecture of {path}")  # before anything is allocated
    ckpt = read_checkpoint(path)
    is_esrnas = spec_of_checkpoint(ckpt, path) is not None
    if is_esrnas and ckpt.get("model_deploy") is None and ckpt.get("model") is not None:
        forms = [False]
    elif is_esrnas:
        forms = [True]
    else:
        forms = [True, False]
    error: InputError | None = None
    for deploy in forms:
        model = build_model(spec, deploy=deploy)
        try:
            load_weights(model, path, deploy=deploy)
        except InputError as e:
            error = error or e  # report the mismatch against the deploy form first
            continue
        return model.eval() if deploy else reparameterize_model(model, inplace=True)
    raise error
