"""Runtime: one model's forward time, or a model's time *relative to a baseline*, paired.

:func:`measure_runtime` gives the median and IQR of ``repeats`` timed forwards after ``warmup``
untimed ones. On a shared machine that figure drifts with the load (1.3x within an hour here),
so two figures taken in different processes or minutes are not comparable.
:func:`measure_paired_runtime` therefore times the model and a baseline in the same process,
interleaved: pair ``i`` times both forwards back to back, in the order AB for even ``i`` and BA
for odd ``i`` (so that neither always runs second, in caches the other warmed), on the same
threads and the same input pixels (each model's own input range), after warm-ups of both. Each
pair gives a ratio ``t_model / t_baseline``; the result is the median of the ratios and their
IQR. A model timed against itself gives 1 within its IQR; load that slows both forwards of a pair
cancels out of its ratio.

CPU: ``perf_counter`` at a fixed thread count. CUDA: one pair of events per forward, all
recorded on the current stream of the timed device (so the forwards run one after the other),
with a synchronize after each pair; ``cudnn.benchmark`` off. Only one timing runs per device at a
time (:mod:`trainers.device_lock`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from time import perf_counter

import numpy as np
import torch
from torch import nn

from search_space.limits import check_profile_settings
from trainers.device import resolve_device
from trainers.device_lock import timing_lock
from trainers.memory import example_input

__all__ = ["PairedRuntime", "measure_runtime", "measure_paired_runtime", "median_iqr"]


@contextmanager
def num_threads(threads: int) -> Iterator[None]:
    """``torch.set_num_threads(threads)`` inside the block, restored afterwards."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@contextmanager
def cudnn_benchmark_off() -> Iterator[None]:
    # Autotuning would time different kernels on different runs (and tune inside the timed loop).
    previous = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = False
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = previous


def median_iqr(values: Sequence[float]) -> tuple[float, float]:
    """Median and inter-quartile range (q3 - q1)."""
    q1, median, q3 = np.percentile(np.asarray(values, float), [25, 50, 75])
    return float(median), float(q3 - q1)


# ---------------------------------------------------------------------------- timers
# A timer runs forwards and returns their times in ms: ``timer(calls) -> [ms per call]``, where
# ``calls`` is a sequence of zero-argument forwards timed one after the other.
Forward = Callable[[], object]


def _time_cpu(calls: Sequence[Forward]) -> list[float]:
    times = []
    for call in calls:
        start = perf_counter()
        call()
        times.append((perf_counter() - start) * 1e3)
    return times


def _time_cuda(calls: Sequence[Forward]) -> list[float]:
    # Events on the current stream: the forwards of one group run (and are timed) in sequence;
    # one synchronize at the end of the group waits for all of them.
    events = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True))
              for _ in calls]
    for call, (start, end) in zip(calls, events, strict=True):
        start.record()
        call()
        end.record()
    events[-1][1].synchronize()
    return [start.elapsed_time(end) for start, end in events]


@contextmanager
def _timing_context(dev: torch.device, threads: int | None,
                    lock_dir: str | Path | None) -> Iterator[Callable]:
    """Threads fixed, inference mode, cudnn autotuning off, the device current, its lock held;
    yields the device's timer."""
    # CUDA events and synchronisation act on the current device: make it the one being timed.
    current = torch.cuda.device(dev) if dev.type == "cuda" else nullcontext()
    with (num_threads(threads or torch.get_num_threads()), torch.inference_mode(),
          cudnn_benchmark_off(), current, timing_lock(dev, lock_dir)):
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        yield _time_cuda if dev.type == "cuda" else _time_cpu


def _checked(input_hw, warmup: int, repeats: int, threads: int | None) -> tuple[int, int]:
    return check_profile_settings(input_hw=input_hw, warmup=warmup, repeats=repeats,
                                  threads=threads)["input_hw"]


def measure_runtime(model: nn.Module, *, input_hw: tuple[int, int] = (256, 256),
                    device: str | torch.device = "cpu", threads: int | None = None,
                    warmup: int = 5, repeats: int = 20,
                    lock_dir: str | Path | None = None) -> tuple[float, float]:
    """Median and IQR (ms) of ``repeats`` timed forwards after ``warmup`` untimed ones.

    The model is moved to ``device`` (in place) and run in eval mode under inference mode. The
    warm-ups and the timed runs hold the device's timing lock; nothing else does.

    Args:
        model: The model to time (pass the deploy form).
        input_hw: LR input height and width.
        device: Option: cpu | cuda | cuda:N.
        threads: CPU threads for the timing (restored afterwards). Default: the current count.
        warmup: Untimed forwards first (CPU caches, CUDA context and kernels).
        repeats: Timed forwards (>= 20 for reported figures).
        lock_dir: Folder of the inter-process lock files. Default: a per-user temp folder.
    """
    input_hw = _checked(input_hw, warmup, repeats, threads)
    dev = torch.device(resolve_device(device))
    model = model.to(dev).eval()
    x = example_input(model, input_hw, dev)
    with _timing_context(dev, threads, lock_dir) as timer:
        if warmup:
            timer([lambda: model(x)] * warmup)
        times = [t for _ in range(repeats) for t in timer([lambda: model(x)])]
    return median_iqr(times)


@dataclass(frozen=True)
class PairedRuntime:
    """A model timed against a baseline, interleaved in one process.

    Attributes:
        runtime_ms, runtime_iqr_ms: The model's median and IQR [ms].
        baseline_ms, baseline_iqr_ms: The baseline's, from the same pairs [ms].
        ratio, ratio_iqr: Median and IQR of the per-pair ratios model / baseline.
        pairs: Number of timed pairs.
    """

    runtime_ms: float
    runtime_iqr_ms: float
    baseline_ms: float
    baseline_iqr_ms: float
    ratio: float
    ratio_iqr: float
    pairs: int


def measure_paired_runtime(model: nn.Module, baseline: nn.Module, *,
                           input_hw: tuple[int, int] = (256, 256),
                           device: str | torch.device = "cpu", threads: int | None = None,
                           warmup: int = 5, repeats: int = 20,
                           lock_dir: str | Path | None = None) -> PairedRuntime:
    """Time ``model`` and ``baseline`` interleaved (AB, BA, AB, ...) and pair the times.

    Both models are moved to ``device`` (in place) and run in eval mode on the same input
    pixels, each scaled to its own ``input_range``. Arguments as :func:`measure_runtime`;
    ``warmup`` and ``repeats`` count pairs.
    """
    input_hw = _checked(input_hw, warmup, repeats, threads)
    dev = torch.device(resolve_device(device))
    model, baseline = model.to(dev).eval(), baseline.to(dev).eval()
    x_model, x_base = example_input(model, input_hw, dev), example_input(baseline, input_hw, dev)

    def run_model():
        return model(x_model)

    def run_base():
        return baseline(x_base)

    model_ms, base_ms = [], []
    with _timing_context(dev, threads, lock_dir) as timer:
        if warmup:
            timer([run_model, run_base] * warmup)
        for i in range(repeats):
            if i % 2 == 0:
                t_model, t_base = timer([run_model, run_base])
            else:
                t_base, t_model = timer([run_base, run_model])
            model_ms.append(t_model)
            base_ms.append(t_base)
    ratios = [m / b for m, b in zip(model_ms, base_ms, strict=True)]
    (runtime, runtime_iqr), (base, base_iqr) = median_iqr(model_ms), median_iqr(base_ms)
    ratio, ratio_iqr = median_iqr(ratios)
    return PairedRuntime(runtime, runtime_iqr, base, base_iqr, ratio, ratio_iqr, repeats)
