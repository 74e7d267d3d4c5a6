"""The paired runtime: a model timed against a baseline, interleaved in one process."""

from __future__ import annotations

import copy
import time

import pytest
import torch
from torch import nn

from search_space.errors import InputError
from trainers.profiling import profile_model
from trainers.timing import measure_paired_runtime, median_iqr


class _Sleepy(nn.Module):
    """A forward that sleeps ``ms`` and logs its name: its time is known, its order visible."""

    def __init__(self, ms: float, name: str, log: list[str]) -> None:
        super().__init__()
        self.ms, self.name, self.log = ms, name, log

    def forward(self, x):
        self.log.append(self.name)
        time.sleep(self.ms / 1e3)
        return x


def _convs(layers: int, channels: int = 32) -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, channels, 3, padding=1),
                         *[nn.Conv2d(channels, channels, 3, padding=1) for _ in range(layers)])


def test_pairs_are_interleaved_in_alternating_order_after_warmups(tmp_path):
    log: list[str] = []
    model, base = _Sleepy(2, "A", log), _Sleepy(2, "B", log)
    paired = measure_paired_runtime(model, base, input_hw=(4, 4), threads=1, warmup=2,
                                    repeats=4, lock_dir=tmp_path)
    assert log == ["A", "B", "A", "B"] + ["A", "B", "B", "A", "A", "B", "B", "A"]
    assert paired.pairs == 4


def test_sleeps_of_known_length_give_their_ratio(tmp_path):
    # 100 / 50 ms: long against the few ms a loaded machine adds to each wake-up (which pulls a
    # 20 / 10 ms ratio down to 1.7)
    log: list[str] = []
    same = measure_paired_runtime(_Sleepy(50, "A", log), _Sleepy(50, "B", log), input_hw=(4, 4),
                                  threads=1, warmup=1, repeats=7, lock_dir=tmp_path)
    double = measure_paired_runtime(_Sleepy(100, "A", log), _Sleepy(50, "B", log),
                                    input_hw=(4, 4), threads=1, warmup=1, repeats=7,
                                    lock_dir=tmp_path)
    assert same.ratio == pytest.approx(1.0, abs=0.1)
    assert double.ratio == pytest.approx(2.0, abs=0.2)
    assert double.runtime_ms >= 100 and 50 <= double.baseline_ms < double.runtime_ms


# Real convolutions at 96x96 (tens of ms per forward): long enough that the preemptions of a
# loaded machine spread over both forwards of a pair instead of landing on one of them (at
# 48x48, 2 ms forwards, a pair ratio under a load of 19 on 2 cores ranged over 0.1-10).
def test_a_network_timed_against_itself_gives_one_within_its_iqr(tmp_path):
    torch.manual_seed(0)
    net = _convs(4)
    paired = measure_paired_runtime(net, copy.deepcopy(net), input_hw=(96, 96), threads=1,
                                    warmup=3, repeats=21, lock_dir=tmp_path)
    # the ratio of two identical forwards: 1, off by at most its own spread (and 10%)
    assert abs(paired.ratio - 1.0) <= max(paired.ratio_iqr, 0.1)
    assert 0.75 < paired.ratio < 1.33


def test_twice_the_work_gives_about_twice_the_time(tmp_path):
    torch.manual_seed(0)
    # 1 + 8 convs against 1 + 4 of the same width: 9 / 5 = 1.8x the arithmetic
    paired = measure_paired_runtime(_convs(8), _convs(4), input_hw=(96, 96), threads=1,
                                    warmup=3, repeats=21, lock_dir=tmp_path)
    assert 1.4 < paired.ratio < 2.4
    assert paired.runtime_ms > paired.baseline_ms


def test_profile_with_a_baseline_fills_the_ratio_and_restores_threads(tmp_path):
    torch.set_num_threads(2)
    torch.manual_seed(0)
    prof = profile_model(_convs(2), input_hw=(16, 16), threads=1, warmup=1, repeats=5,
                         memory=False, lock_dir=tmp_path, baseline=_convs(2))
    assert prof.runtime_ratio > 0 and prof.runtime_ratio_iqr >= 0
    assert prof.runtime_baseline_ms > 0 and prof.runtime_ms > 0
    assert torch.get_num_threads() == 2
    alone = profile_model(_convs(2), input_hw=(16, 16), threads=1, warmup=1, repeats=3,
                          memory=False, lock_dir=tmp_path)
    assert alone.runtime_ratio is None and alone.runtime_baseline_ms is None


def test_bad_settings_are_refused_before_timing():
    log: list[str] = []
    with pytest.raises(InputError, match=r"repeats: expected an integer >= 1"):
        measure_paired_runtime(_Sleepy(1, "A", log), _Sleepy(1, "B", log), repeats=0)
    assert log == []


def test_median_iqr():
    assert median_iqr([1, 2, 3, 4, 5]) == (3.0, 2.0)
