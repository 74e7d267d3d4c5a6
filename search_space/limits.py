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
from search_space.spec import ArchSpec, split_named
from search_space.validation import Rule, short

__all__ = ["MAX_PARAMS", "MAX_MEMORY_MB", "MAX_INPUT_SIDE", "MAX_INPUT_PIXELS", "PROFILE_RULES",
           "input_hw_problem", "check_profile_settings", "count_params", "check_resources",
           "min_input_problem"]

# Defaults: ~50x the largest anchor (EDSR, 43 M) would not train on any single machine.
MAX_PARAMS = 100_000_000
MAX_MEMORY_MB = 16_384
# LR input of a profile / forward: sides up to 8192, area up to 4096 x 4096 (NTIRE: 256 x 256).
MAX_INPUT_SIDE = 8192
MAX_INPUT_PIXELS = 4096 * 4096
_BYTES = 4  # float32
_HW_TEXT = (f"[height, width] integers from 1 to {MAX_INPUT_SIDE}, at most {MAX_INPUT_PIXELS:,}"
            " pixels")


def input_hw_problem(hw: Any) -> str | None:
    """Why ``hw`` is not an LR input size (a problem line without its path), or None."""
    ok = isinstance(hw, tuple) and len(hw) == 2 and all(
        isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= MAX_INPUT_SIDE for v in hw)
    if ok and hw[0] * hw[1] <= MAX_INPUT_PIXELS:
        return None
    return f"expected {_HW_TEXT}, got {short(hw)}"


def _as_tuple(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


# The profiler's settings, one rule each for ProfileConfig, `nas profile` and profile_model.
PROFILE_RULES = {
    "input_hw": Rule(convert=_as_tuple, check=input_hw_problem, expected=_HW_TEXT),
    "warmup": Rule(kind=int, low=0, high=1000),
    "repeats": Rule(kind=int, low=1, high=10_000),
    "threads": Rule(kind=int, low=1, high=4096, optional=True),
}


def check_profile_settings(**values: Any) -> dict[str, Any]:
    """Check profiler settings (``input_hw=..., repeats=...``) against :data:`PROFILE_RULES`;
    returns them converted, or raises one InputError naming every bad one."""
    out, problems = {}, []
    for name, value in values.items():
        out[name], problem = PROFILE_RULES[name].apply(name, value)
        problems += [problem] if problem else []
    if problems:
        raise InputError("; ".join(problems))
    return out


def _meta_model(spec: ArchSpec, *, deploy: bool = False) -> Any:
    import torch

    from search_space.factory import build_model

    with torch.device("meta"):
        return build_model(spec, deploy=deploy)


def count_params(spec: ArchSpec) -> int:
    """Training-form parameters, counted without allocating them."""
    return sum(p.numel() for p in _meta_model(spec).parameters())


def estimate_memory_mb(spec: ArchSpec, params: int, input_hw: tuple[int, int] | None,
                       batch: int = 1) -> float:
    """Weights, plus a forward's live feature maps: a few maps of the widest stage at the size
    the network works at (the output size for a pre-upsampling tail) and the output (a bound
    that errs high; ``trainers.profiling`` measures the real peak)."""
    from search_space.upsamplers import upsamples_input

    total = params * _BYTES
    if input_hw is not None:
        pixels = input_hw[0] * input_hw[1] * batch
        outputs = pixels * spec.scale ** 2
        working = outputs if upsamples_input(split_named(spec.upsampler)[0]) else pixels
        width = max([spec.channels] + [s.channels for s in spec.body if s.channels])
        total += _BYTES * (4 * width * working + 2 * spec.in_channels * outputs)
    return total / 2**20


def check_resources(spec: ArchSpec, *, input_hw: tuple[int, int] | None = None, batch: int = 1,
                    max_params: int = MAX_PARAMS, max_memory_mb: float = MAX_MEMORY_MB,
                    what: str = "spec") -> int:
    """Refuse a spec above the parameter or memory limit; returns its parameter count.

    ``batch`` inputs of ``input_hw`` are counted (training: a batch of patches); the limits come
    from ``--max-params`` / ``--max-memory-mb``.
    """
    if input_hw is not None:
        check_profile_settings(input_hw=input_hw)
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
