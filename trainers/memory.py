"""Peak memory of one forward pass: tracked on CPU at the dispatch level, or estimated on meta.

Both functions count *tensor storage*, the memory a caching allocator such as CUDA's has to hand
out; allocator slack, kernel workspaces (im2col, cuDNN) and the Python heap are not included.

- :class:`LiveStorageTracker` is a ``TorchDispatchMode``: every aten op's output storage is counted
  once, from the op that created it until Python frees it (``weakref.finalize`` on the storage),
  so views and in-place ops add nothing and the result is deterministic. The anchors' reference
  figures were measured this way on the official code (docs/measurement.md); on CPU it stands in for
  ``torch.cuda.max_memory_allocated``, which counts the same storages.
- :func:`estimate_peak_memory` replays the forward on the ``meta`` device with the same tracker:
  shapes propagate but nothing is computed, and Python releases each tensor after its last
  reference exactly as in a real run, so the liveness (input + output + the features still held
  at each op, the FMEN paper's view of memory) is the real run's, at a few milliseconds per op.
  It is what a search can afford at sampling time, before anything is trained or measured.
"""

from __future__ import annotations

import copy
import gc
import weakref
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

__all__ = [
    "LiveStorageTracker",
    "MIB",
    "example_input",
    "state_bytes",
    "track_peak_live_bytes",
    "estimate_peak_live_bytes",
    "estimate_peak_memory",
    "meta_copy",
    "tracked_forward",
]

MIB = 2**20


class LiveStorageTracker(TorchDispatchMode):
    """Counts live tensor storages (bytes) created by aten ops and remembers the peak.

    Args:
        ignore: Tensors whose storages must never be counted (parameters and buffers, which the
            caller adds separately), even if an op returns a view of them.
    """

    def __init__(self, ignore: Iterable[torch.Tensor] = ()) -> None:
        super().__init__()
        self.live_bytes = 0
        self.peak_bytes = 0
        self.peak_op: str | None = None
        # (creating op, bytes) of every storage live at the peak: what to slim down.
        self.peak_live: list[tuple[str, int]] = []
        self._ignored = {_storage_key(t) for t in ignore}
        self._live: dict[int, tuple[str, int]] = {}

    def register(self, tensor: torch.Tensor, op: str = "input") -> None:
        """Count ``tensor``'s storage if it is new; it stops counting when the storage is freed."""
        storage = tensor.untyped_storage()
        key = storage._cdata
        if key in self._live or key in self._ignored:
            return
        nbytes = storage.nbytes()
        self._live[key] = (op, nbytes)
        self.live_bytes += nbytes
        # The storage's Python object lives exactly as long as the C++ storage (PyObject
        # preservation), so the finalizer fires when the memory is released.
        weakref.finalize(storage, self._release, key)
        if self.live_bytes > self.peak_bytes:
            self.peak_bytes, self.peak_op = self.live_bytes, op
            self.peak_live = list(self._live.values())

    def _release(self, key: int) -> None:
        self.live_bytes -= self._live.pop(key)[1]

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for leaf in tree_leaves(out):
            if isinstance(leaf, torch.Tensor):
                self.register(leaf, str(func))
        return out


def _storage_key(tensor: torch.Tensor) -> int:
    return tensor.untyped_storage()._cdata


def state_bytes(model: nn.Module) -> int:
    """Bytes of the parameters and buffers (each storage once)."""
    storages = {}
    for t in list(model.parameters()) + list(model.buffers()):
        storages[_storage_key(t)] = t.untyped_storage().nbytes()
    return sum(storages.values())


def example_input(model: nn.Module, input_hw: tuple[int, int], device: str | torch.device = "cpu",
                  *, seed: int = 0) -> torch.Tensor:
    """A fixed 1x3xHxW input in ``[0, model.input_range]`` (1 when the model has none)."""
    height, width = input_hw
    scale = float(getattr(model, "input_range", 1.0) or 1.0)
    if torch.device(device).type == "meta":
        return torch.empty(1, 3, height, width, device="meta")
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(1, 3, height, width, generator=g) * scale).to(device)


@contextmanager
def _no_gc() -> Iterator[None]:
    # A collection in the middle of the forward would free cyclic garbage at a random op and make
    # the peak depend on allocation history. (No collection before either: it costs ~0.5 s with
    # torch loaded, and garbage from before the forward is never counted anyway.)
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def tracked_forward(model: nn.Module, x: torch.Tensor) -> LiveStorageTracker:
    """One no-grad forward under a :class:`LiveStorageTracker` (parameters/buffers ignored)."""
    # The first op under a dispatch mode imports torch._dynamo lazily, and that import leaves
    # reference cycles holding the frames then on the stack, so with the collector off the
    # caller's locals (e.g. temporaries of the model's first function) would stay counted.
    import torch._dynamo  # noqa: F401

    tracker = LiveStorageTracker(ignore=list(model.parameters()) + list(model.buffers()))
    with _no_gc(), torch.no_grad(), tracker:
        tracker.register(x)  # the input is live before the first op, as in the reference
        out = model(x)
        del out
    return tracker


def track_peak_live_bytes(model: nn.Module, input_hw: tuple[int, int]) -> tuple[int, str | None]:
    """Peak live storage bytes (parameters excluded, input included) of one CPU forward.

    ``model`` must be on the CPU and in eval mode. Returns ``(bytes, op at the peak)``.
    """
    x = example_input(model, input_hw, "cpu")
    tracker = tracked_forward(model, x)
    return tracker.peak_bytes, tracker.peak_op


def meta_copy(model: nn.Module) -> nn.Module:
    """A copy of ``model`` whose parameters and buffers are meta tensors (no data)."""
    # Deep-copying onto meta would allocate the real weights first; copy the module tree with
    # its tensors swapped for meta tensors instead.
    memo = {}
    for t in list(model.parameters()) + list(model.buffers()):
        meta = t.detach().to("meta")
        memo[id(t)] = nn.Parameter(meta, t.requires_grad) if isinstance(t, nn.Parameter) else meta
    return copy.deepcopy(model, memo)


def estimate_peak_live_bytes(model: nn.Module, input_hw: tuple[int, int]) -> int:
    """Peak live storage bytes of one forward replayed on the meta device (nothing computed)."""
    meta_model = meta_copy(model).eval()
    x = example_input(meta_model, input_hw, "meta")
    return tracked_forward(meta_model, x).peak_bytes


def estimate_peak_memory(model: nn.Module, input_hw: tuple[int, int]) -> float:
    """Static peak-memory estimate in MiB: parameters and buffers plus the meta-run peak.

    Cheap enough for constraint pruning at sampling time (milliseconds to a few hundred
    milliseconds for the anchors; see ``benchmarks/profile_cost.py``). Pass the deploy form.
    """
    return (state_bytes(model) + estimate_peak_live_bytes(model, input_hw)) / MIB
