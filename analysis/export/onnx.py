"""``model.onnx`` of an export: the deploy model with dynamic batch, height and width, checked
against PyTorch with onnxruntime.

onnx and onnxruntime are an optional dependency (``esrnas[export]``); they and torch are imported
inside the functions that need them.
"""

from __future__ import annotations

import importlib.util
import os
import warnings
from collections.abc import Mapping
from pathlib import Path

import numpy as np

__all__ = ["ONNX_TOLERANCE", "export_onnx"]

ONNX_TOLERANCE = 1e-4


def _maybe_onnx(model, path: Path, metadata: Mapping[str, str] | None = None,
                ) -> tuple[float | None, list[str]]:
    """``model.onnx`` when onnx and onnxruntime are installed: its max |diff| to PyTorch
    (:func:`export_onnx`; None when not written) and the warnings for the export's result."""
    missing = [m for m in ("onnx", "onnxruntime") if importlib.util.find_spec(m) is None]
    if missing:
        return None, [f"model.onnx not written: {' and '.join(missing)} not installed "
                      "(pip install 'esrnas[export]')"]
    diff = export_onnx(model, path, metadata=metadata)
    if diff > ONNX_TOLERANCE:
        return diff, [f"model.onnx differs from PyTorch by {diff:.2e} (> "
                      f"{ONNX_TOLERANCE:g}, relative to the input range)"]
    return diff, []


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
