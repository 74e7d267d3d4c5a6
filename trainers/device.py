"""Which device a command runs on: one resolution for training, evaluation and profiling."""

from __future__ import annotations

import torch

from search_space.errors import InputError

__all__ = ["resolve_device"]


def resolve_device(choice: str | torch.device = "auto") -> str:
    """``auto`` -> ``cuda`` when available, else ``cpu``; ``cpu``, ``cuda`` and ``cuda:N`` are
    returned as given once they are usable here. InputError otherwise: another device type, CUDA
    requested where it is absent, an index past the device count."""
    if str(choice) == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(choice)
    except (RuntimeError, TypeError):
        dev = None
    if dev is None or dev.type not in ("cpu", "cuda"):
        raise InputError(f"device: {str(choice)!r} not allowed; allowed: auto, cpu, cuda, cuda:N")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"device: {str(choice)!r} requested but CUDA is not available "
                         "(torch.cuda.is_available() is False); use cpu or auto")
    if dev.index is not None and dev.index >= torch.cuda.device_count():
        raise InputError(f"device: {str(choice)!r} requested but only "
                         f"{torch.cuda.device_count()} CUDA device(s) exist")
    return str(dev)
