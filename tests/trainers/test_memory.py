"""Peak memory: the dispatch-level CPU tracker, the meta-device estimate, and the anchors against
the bytes the reference tracker measured on the official code (``reference.peak_live_bytes_256``)
and the NTIRE 2022 GPU memory ratios."""

from __future__ import annotations

import functools

import pytest
import torch
from torch import nn

from search_space.anchors import get_anchor, list_anchors
from search_space.factory import build_model
from trainers.memory import (
    MIB,
    LiveStorageTracker,
    estimate_peak_live_bytes,
    estimate_peak_memory,
    state_bytes,
    track_peak_live_bytes,
)
from trainers.profiling import measure_peak_memory

FLOAT = 4  # bytes per fp32 element
REFERENCE_ANCHORS = [a for a in list_anchors()
                     if get_anchor(a).reference.get("peak_live_bytes_256")]
# Published NTIRE 2022 GPU memory ratios to FMEN-S (e_rfdn 3.85, imdn_ntire 2.31, rlfn 1.85).
RATIO_ANCHORS = [a for a in ("e_rfdn", "imdn_ntire", "rlfn")
                 if a in list_anchors() and "fmen_s" in list_anchors()]


@pytest.fixture(autouse=True)
def _one_thread():
    # Byte counts do not depend on threads, and one thread is far faster on a shared machine.
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@functools.cache
def _deploy(name: str) -> nn.Module:
    return build_model(name, deploy=True)


def _chain(widths: list[int]) -> nn.Sequential:
    pairs = zip(widths[:-1], widths[1:], strict=True)
    return nn.Sequential(*(nn.Conv2d(a, b, 3, padding=1) for a, b in pairs))


@functools.cache
def _anchor_peak_bytes(name: str, how: str, size: int) -> int:
    model = _deploy(name)
    if how == "tracked":
        return track_peak_live_bytes(model, (size, size))[0]
    return estimate_peak_live_bytes(model, (size, size))


def test_plain_chain_peak_is_params_input_and_two_largest_adjacent_maps():
    # nn.Sequential rebinds its running tensor, so conv i's input and output are the only
    # feature maps alive while it runs; the caller keeps the input alive throughout.
    widths = [3, 8, 24, 16, 4, 20]
    height, width = 17, 23
    model = _chain(widths).eval()
    maps = [c * height * width * FLOAT for c in widths]
    adjacent = max(maps[i - 1] + maps[i] for i in range(2, len(maps)))
    expected_live = maps[0] + adjacent
    params = sum(p.numel() for p in model.parameters()) * FLOAT

    live, op = track_peak_live_bytes(model, (height, width))
    assert live == expected_live
    assert op == "aten.convolution.default"
    assert measure_peak_memory(model, input_hw=(height, width)) * MIB == params + expected_live
    assert estimate_peak_memory(model, (height, width)) * MIB == params + expected_live


class _ViewsAndInPlace(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 5, 1)
        self.gain = nn.Parameter(torch.ones(5))

    def forward(self, x):
        y = self.conv(x)                      # new storage: 5 maps
        y.relu_()                             # in place: same storage
        z = y.view(1, 5, -1).transpose(1, 2)  # views: same storage
        gain = self.gain.view(1, 1, 5)        # a view of a parameter: never counted
        return z * gain                       # new storage: 5 maps


def test_views_in_place_ops_and_parameter_views_add_nothing():
    model = _ViewsAndInPlace().eval()
    hw = (6, 7)
    plane = hw[0] * hw[1] * FLOAT
    live, op = track_peak_live_bytes(model, hw)
    assert live == (3 + 5 + 5) * plane
    assert op == "aten.mul.Tensor"


def test_storages_are_released_when_freed_and_breakdown_sums_to_peak():
    model = _chain([3, 6, 6]).eval()
    x = torch.rand(1, 3, 9, 9)
    tracker = LiveStorageTracker(ignore=list(model.parameters()))
    with torch.no_grad(), tracker:
        tracker.register(x)
        out = model(x)
        del out
    assert tracker.live_bytes == x.numel() * FLOAT  # everything but the caller's input freed
    assert tracker.peak_bytes == (3 + 6 + 6) * 81 * FLOAT
    assert sum(nbytes for _, nbytes in tracker.peak_live) == tracker.peak_bytes
    assert [op for op, _ in tracker.peak_live] == ["input", "aten.convolution.default",
                                                   "aten.convolution.default"]


def test_state_bytes_counts_parameters_and_buffers_once():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    model[1].weight = model[0].bias  # one storage, two names
    conv, bn_bias, running_stats, num_batches_tracked = 3 * 4 * 9 + 4, 4, 4 + 4, 8
    assert state_bytes(model) == (conv + bn_bias + running_stats) * FLOAT + num_batches_tracked


@pytest.mark.parametrize("name", list_anchors())
def test_estimate_within_5_percent_of_tracked_peak(name):
    tracked = _anchor_peak_bytes(name, "tracked", 48)
    estimate = _anchor_peak_bytes(name, "estimate", 48)
    assert abs(estimate - tracked) <= 0.05 * tracked, (name, estimate, tracked)


@pytest.mark.parametrize("name", REFERENCE_ANCHORS[:2])
def test_tracked_peak_is_deterministic(name):
    model = _deploy(name)
    runs = {track_peak_live_bytes(model, (40, 40)) for _ in range(3)}
    assert len(runs) == 1


@pytest.mark.parametrize("how", ["estimate", pytest.param("tracked", marks=pytest.mark.slow)])
@pytest.mark.parametrize("name", REFERENCE_ANCHORS)
def test_peak_live_bytes_match_the_official_code(name, how):
    # The reference tracker ran on the official implementations; the same bytes here mean our
    # blocks keep the same tensors alive (in-place ops, locals held until the block returns).
    expected = get_anchor(name).reference["peak_live_bytes_256"]
    got = _anchor_peak_bytes(name, how, 256)
    assert abs(got - expected) <= 0.01 * expected, (
        f"{name}: {got:,} bytes live at the peak vs {expected:,} in the official code")


@pytest.mark.parametrize("how", ["estimate", pytest.param("tracked", marks=pytest.mark.slow)])
@pytest.mark.parametrize("name", RATIO_ANCHORS)
def test_peak_memory_ratio_to_fmen_s_matches_ntire2022_gpu(name, how):
    def peak_mib(anchor: str) -> float:
        state = state_bytes(_deploy(anchor))
        return (state + _anchor_peak_bytes(anchor, how, 256)) / MIB

    def published_mb(anchor: str) -> float:
        return get_anchor(anchor).published["ntire2022"]["memory_mb"]

    ours = peak_mib(name) / peak_mib("fmen_s")
    theirs = published_mb(name) / published_mb("fmen_s")
    assert abs(ours - theirs) <= 0.10 * theirs, (name, round(ours, 3), round(theirs, 3))
