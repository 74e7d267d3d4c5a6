"""The profiler: params, MACs, activations, conv count, runtime and peak memory of one model.

Protocol (NTIRE ESR conventions, DESIGN.md "Measurement protocol"): always the deploy form
(:func:`search_space.reparam.reparameterize_model` on a copy), eval mode, no grad, fp32, one LR
input of 1x3xHxW (default 256x256) scaled by the model's ``input_range``. One small function per
metric; :func:`profile_model` runs each once and returns a :class:`Profile`.

- ``params``: number of parameters.
- ``macs_g``: multiply-accumulates in G, counted by ``torch.utils.flop_counter.FlopCounterMode``,
  which counts 2 FLOPs per MAC for convolutions (bias not counted) and nothing for element-wise
  ops, pooling or interpolation: ``macs = flops / 2``. This is the quantity the NTIRE ESR tables
  call "FLOPs" in their text, but the NTIRE counter (``utils/model_summary.py`` of
  ofsoundof/NTIRE2022_ESR) also adds the output elements of every ``nn.ReLU``/``nn.LeakyReLU``/
  ``nn.PReLU`` *module* and 2x the elements of every ``nn.BatchNorm2d``. Its figure therefore
  depends on how a model is written: activations applied as functions (or as one module-level
  global, as in the FMEN-S submission) count zero, the same activation held as a submodule counts
  its elements. ``macs_g`` counts only the convolution arithmetic and is independent of coding
  style; it equals the NTIRE figure exactly only for models like FMEN-S (22.28 G) and is below
  it otherwise (RLFN: 19.66 G MACs vs 19.70 G NTIRE "FLOPs").
- ``activations_m`` / ``num_conv``: output elements of all ``nn.Conv2d`` calls (in M) and their
  number, as NTIRE's ``get_model_activation``.
- ``runtime_ms`` / ``runtime_iqr_ms``: median and inter-quartile range of ``repeats`` timed
  forwards after ``warmup`` untimed ones; CUDA events with ``cudnn.benchmark`` off on a GPU,
  ``perf_counter`` at a fixed thread count on a CPU. Only one timing runs per device at a time
  (:mod:`trainers.device_lock`), so concurrent trials do not disturb each other's timings.
- ``runtime_ratio`` / ``runtime_ratio_iqr`` / ``runtime_baseline_ms``: with a ``baseline`` model,
  the runtime is measured paired (:func:`trainers.timing.measure_paired_runtime`): both timed in
  this process, interleaved; the ratio is the median of the per-pair ratios model / baseline,
  comparable across processes and minutes where ``runtime_ms`` is not.
- ``peak_memory_mb`` (MiB): CUDA: ``max_memory_allocated`` around one forward (parameters,
  input, activations and workspaces). CPU: parameter and buffer bytes plus the peak of live
  tensor storage during one forward, tracked at the dispatch level (:mod:`trainers.memory`).
- ``peak_memory_est_mb`` (MiB): the static estimate (:func:`estimate_peak_memory`), from a
  forward replayed on the meta device; cheap enough for constraint pruning at sampling time.

MACs, activations, conv count and the estimate come from one forward on the meta device, so they
cost no arithmetic even at 256x256.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from search_space.limits import check_profile_settings
from search_space.reparam import reparameterize_model
from trainers.device import resolve_device
from trainers.memory import (
    MIB,
    estimate_peak_memory,
    example_input,
    meta_copy,
    state_bytes,
    track_peak_live_bytes,
    tracked_forward,
)
from trainers.timing import PairedRuntime, measure_paired_runtime, measure_runtime

__all__ = [
    "Profile",
    "profile_model",
    "count_params",
    "count_macs",
    "count_activations",
    "estimate_peak_memory",
    "measure_runtime",
    "measure_paired_runtime",
    "measure_peak_memory",
]

DEFAULT_INPUT_HW = (256, 256)


@dataclass(frozen=True)
class Profile:
    """Costs of one model in deploy form; ``None`` where a figure was not measured.

    Attributes:
        params: Parameters. macs_g: multiply-accumulates [G]. activations_m: Conv2d output
            elements [M]. num_conv: Conv2d calls.
        runtime_ms, runtime_iqr_ms: Median and inter-quartile range of the timed forwards [ms].
        peak_memory_mb: Measured peak [MiB], weights included. peak_memory_est_mb: the static
            estimate [MiB], weights included.
        device: Where runtime and peak memory were measured. input_hw: LR input (H, W).
        threads: CPU threads used for the timing (None on CUDA unless set).
        runtime_ratio, runtime_ratio_iqr: Median and IQR of the paired ratios runtime /
            baseline's runtime (None without a baseline).
        runtime_baseline_ms: The baseline's median in the same pairs [ms].
    """

    params: int
    macs_g: float
    activations_m: float
    num_conv: int
    runtime_ms: float | None
    runtime_iqr_ms: float | None
    peak_memory_mb: float | None
    peak_memory_est_mb: float | None
    device: str
    input_hw: tuple[int, int]
    threads: int | None
    runtime_ratio: float | None = None
    runtime_ratio_iqr: float | None = None
    runtime_baseline_ms: float | None = None

    def to_dict(self) -> dict:
        out = asdict(self)
        out["input_hw"] = list(self.input_hw)
        return out


def _device(device: str | torch.device) -> torch.device:
    return torch.device(resolve_device(device))


def _check_input_hw(input_hw) -> tuple[int, int]:
    return check_profile_settings(input_hw=input_hw)["input_hw"]


def count_params(model: nn.Module) -> int:
    """Number of parameters (``profile_model`` passes the deploy form)."""
    return sum(p.numel() for p in model.parameters())


@dataclass(frozen=True)
class _StaticCounts:
    macs_g: float
    activations_m: float
    num_conv: int
    peak_live_est_bytes: int


@contextmanager
def _conv_outputs(model: nn.Module) -> Iterator[list[int]]:
    """Collects the number of output elements of every ``nn.Conv2d`` call inside the block."""
    sizes: list[int] = []

    def hook(_module, _inputs, output):
        sizes.append(output.numel())

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.Conv2d)]
    try:
        yield sizes
    finally:
        for handle in handles:
            handle.remove()


def _static_counts(model: nn.Module, input_hw: tuple[int, int]) -> _StaticCounts:
    # One forward on the meta device gives MACs, conv outputs and the memory estimate together:
    # all three depend on shapes only.
    meta_model = meta_copy(model).eval()
    x = example_input(meta_model, input_hw, "meta")
    with _conv_outputs(meta_model) as sizes, FlopCounterMode(display=False) as flops:
        tracker = tracked_forward(meta_model, x)
    return _StaticCounts(
        macs_g=flops.get_total_flops() / 2 / 1e9,
        activations_m=sum(sizes) / 1e6,
        num_conv=len(sizes),
        peak_live_est_bytes=tracker.peak_bytes,
    )


def count_macs(model: nn.Module, input_hw: tuple[int, int] = DEFAULT_INPUT_HW) -> float:
    """Multiply-accumulates of one forward, in G (FlopCounterMode FLOPs / 2)."""
    return _static_counts(model, _check_input_hw(input_hw)).macs_g


def count_activations(model: nn.Module,
                      input_hw: tuple[int, int] = DEFAULT_INPUT_HW) -> tuple[float, int]:
    """(Output elements of all Conv2d calls in M, number of Conv2d calls) for one forward."""
    counts = _static_counts(model, _check_input_hw(input_hw))
    return counts.activations_m, counts.num_conv


def measure_peak_memory(model: nn.Module, *, input_hw: tuple[int, int] = DEFAULT_INPUT_HW,
                        device: str | torch.device = "cpu") -> float:
    """Peak memory (MiB) of one forward on ``device``, parameters and buffers included.

    CUDA: ``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats`` (model and input
    already on the device). CPU: parameter/buffer bytes plus the peak of live tensor storage
    tracked at the dispatch level; deterministic. The model is moved to ``device`` in place.
    """
    input_hw = _check_input_hw(input_hw)
    dev = _device(device)
    model = model.to(dev).eval()
    if dev.type == "cpu":
        peak_live, _ = track_peak_live_bytes(model, input_hw)
        return (state_bytes(model) + peak_live) / MIB
    x = example_input(model, input_hw, dev)
    torch.cuda.synchronize(dev)
    torch.cuda.reset_peak_memory_stats(dev)
    with torch.inference_mode():
        out = model(x)
        torch.cuda.synchronize(dev)
    peak = torch.cuda.max_memory_allocated(dev)
    del out
    return peak / MIB


def profile_model(model: nn.Module, *, input_hw: tuple[int, int] = DEFAULT_INPUT_HW,
                  device: str | torch.device = "cpu", threads: int | None = None,
                  warmup: int = 5, repeats: int = 20, lock_dir: str | Path | None = None,
                  runtime: bool = True, memory: bool = True,
                  baseline: nn.Module | None = None) -> Profile:
    """Profile the deploy form of ``model`` (the caller's model is left untouched).

    Args:
        model: Training or deploy form; a re-parameterised fp32 copy is profiled.
        input_hw: LR input height and width. Default: 256x256 (NTIRE ESR).
        device: Option: cpu | cuda | cuda:N. Runtime and measured memory are taken there.
        threads: CPU threads for the timing. Default: the current ``torch.get_num_threads()``.
        warmup: Untimed forwards before timing.
        repeats: Timed forwards.
        lock_dir: Folder of the per-device timing locks. Default: a per-user temp folder.
        runtime: Measure the runtime (else ``runtime_ms`` is None).
        memory: Measure the peak memory (else ``peak_memory_mb`` is None; the static estimate
            is always given).
        baseline: Time the runtime paired against this model (its deploy form, interleaved in
            this process): fills ``runtime_ratio``, ``runtime_ratio_iqr`` and
            ``runtime_baseline_ms``. Counts and memory never involve it.
    """
    input_hw = check_profile_settings(input_hw=input_hw, warmup=warmup, repeats=repeats,
                                      threads=threads)["input_hw"]
    dev = _device(device)
    deploy = reparameterize_model(copy.deepcopy(model).float(), inplace=True)
    counts = _static_counts(deploy, input_hw)
    params = count_params(deploy)
    peak_est_mb = (state_bytes(deploy) + counts.peak_live_est_bytes) / MIB
    peak_mb = measure_peak_memory(deploy, input_hw=input_hw, device=dev) if memory else None
    used_threads = (threads or torch.get_num_threads()) if dev.type == "cpu" else threads
    timing = dict(input_hw=input_hw, device=dev, threads=used_threads, warmup=warmup,
                  repeats=repeats, lock_dir=lock_dir)
    runtime_ms = runtime_iqr_ms = None
    paired: PairedRuntime | None = None
    if runtime and baseline is not None:
        base = reparameterize_model(copy.deepcopy(baseline).float(), inplace=True)
        paired = measure_paired_runtime(deploy, base, **timing)
        runtime_ms, runtime_iqr_ms = paired.runtime_ms, paired.runtime_iqr_ms
    elif runtime:
        runtime_ms, runtime_iqr_ms = measure_runtime(deploy, **timing)
    return Profile(
        params=params,
        macs_g=counts.macs_g,
        activations_m=counts.activations_m,
        num_conv=counts.num_conv,
        runtime_ms=runtime_ms,
        runtime_iqr_ms=runtime_iqr_ms,
        peak_memory_mb=peak_mb,
        peak_memory_est_mb=peak_est_mb,
        device=str(dev),
        input_hw=input_hw,
        threads=used_threads,
        runtime_ratio=None if paired is None else paired.ratio,
        runtime_ratio_iqr=None if paired is None else paired.ratio_iqr,
        runtime_baseline_ms=None if paired is None else paired.baseline_ms,
    )
