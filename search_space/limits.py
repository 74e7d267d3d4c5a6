"""Resource bounds of a spec, checked before any weight or activation is allocated.

The model is built on PyTorch's ``meta`` device (shapes only, no memory), so a spec with ten
billion parameters is counted, and refused, in milliseconds. Limits are documented in
``docs/validation.md``; commands that build models take ``--max-params`` / ``--max-memory-mb``.
"""

from __future__ import annotations

import functools
from typing import Any

from search_space.errors import InputError
from search_space.io import first_line
from search_space.spec import ArchSpec

__all__ = ["MAX_PARAMS", "MAX_MEMORY_MB", "MAX_INPUT_PIXELS", "count_params", "check_resources",
           "min_input_problem"]

# Defaults: ~50x the largest anchor (EDSR, 43 M) would not train on any single machine.
MAX_PARAMS = 100_000_000
MAX_MEMORY_MB = 16_384
# LR input of a profile / forward: 4096 x 4096 (the NTIRE input is 256 x 256).
MAX_INPUT_PIXELS = 4096 * 4096
_BYTES = 4  # float32


def _meta_model(spec: ArchSpec, *, deploy: bool = False) -> Any:
    import torch

    from search_space.builder import build_model

    with torch.device("meta"):
        return build_model(spec, deploy=deploy)


def count_params(spec: ArchSpec) -> int:
    """Training-form parameters, counted without allocating them."""
    return sum(p.numel() for p in _meta_model(spec).parameters())


def estimate_memory_mb(spec: ArchSpec, params: int, input_hw: tuple[int, int] | None,
                       batch: int = 1) -> float:
    """Weights, plus a forward's live feature maps: a few trunk-width maps at the input size and
    the output (a bound that errs high; ``trainers.profiling`` measures the real peak)."""
    total = params * _BYTES
    if input_hw is not None:
        pixels = input_hw[0] * input_hw[1] * batch
        total += pixels * _BYTES * (4 * spec.channels + 2 * spec.in_channels * spec.scale ** 2)
    return total / 2**20


def check_resources(spec: ArchSpec, *, input_hw: tuple[int, int] | None = None, batch: int = 1,
                    max_params: int = MAX_PARAMS, max_memory_mb: float = MAX_MEMORY_MB,
                    what: str = "spec") -> int:
    """Refuse a spec above the parameter or memory limit; returns its parameter count.

    ``batch`` inputs of ``input_hw`` are counted (training: a batch of patches); the limits come
    from ``--max-params`` / ``--max-memory-mb``.
    """
    if input_hw is not None and input_hw[0] * input_hw[1] > MAX_INPUT_PIXELS:
        raise InputError(f"--input: {input_hw[0]}x{input_hw[1]} is {input_hw[0] * input_hw[1]:,}"
                         f" pixels; at most {MAX_INPUT_PIXELS:,} (4096x4096)")
    params = count_params(spec)
    if params > max_params:
        raise InputError(f"{what}: {params:,} parameters; the limit is {max_params:,} (raise it "
                         "with --max-params)")
    memory = estimate_memory_mb(spec, params, input_hw, batch)
    if memory > max_memory_mb:
        size = "" if input_hw is None else f" at {input_hw[0]}x{input_hw[1]}"
        raise InputError(f"{what}: needs about {memory:,.0f} MiB{size}; the limit is "
                         f"{max_memory_mb:,.0f} MiB (raise it with --max-memory-mb)")
    return params


@functools.lru_cache(maxsize=256)
def min_input_problem(spec: ArchSpec, input_hw: tuple[int, int]) -> str | None:
    """Why an LR input of ``input_hw`` is too small for ``spec`` (a shape-only forward), or None."""
    import torch

    model = _meta_model(spec)
    x = torch.empty(1, spec.in_channels if not spec.y_only else 3, *input_hw, device="meta")
    try:
        with torch.no_grad():
            model(x)
    except InputError as e:
        return first_line(e)
    except (NotImplementedError, RuntimeError):
        return None  # an op without a meta kernel: the real forward checks it
    return None
