"""Runtime paired with the run's baseline: the NTIRE score and relative runtime constraints read
the ratio, and the baseline anchor's own trial scores e^2."""

from __future__ import annotations

import math

import optuna
import pytest

from nas.config import SearchConfig
from nas.config_sections import ProfileConfig
from nas.objectives import NTIRE_WEIGHTS, ntire_score, parse_constraint
from nas.session import runtime_baseline
from nas.trial import META_KEY, profile_anchor, run_trial
from nas.trial_settings import TrialSettings
from search_space.space import resolve_space, suggest_arch
from tests.nas.conftest import TINY_PROFILE, TINY_TRAIN, tiny_config

BASE = "span_ch28"


def _settings(tmp_path, **kw) -> TrialSettings:
    base = dict(run_dir=str(tmp_path), scale=4, train_base=TINY_TRAIN,
                profile=ProfileConfig(**{**TINY_PROFILE, "input_hw": (32, 32), "repeats": 15,
                                          "memory": False}),
                seed=0, threads=1, objectives=("ntire_score",), val_sets=("Set5",),
                runtime_baseline=BASE, ntire={"baseline": BASE, "weights": NTIRE_WEIGHTS})
    base.update(kw)
    settings = TrialSettings(**base)
    return TrialSettings(**{**base, "references": {BASE: profile_anchor(BASE, settings)}})


def test_the_baseline_anchors_own_trial_scores_e_squared(tmp_path):
    settings = _settings(tmp_path)
    row = run_trial({META_KEY: {"number": 0, "anchor": BASE}}, settings, trial_id="t0",
                    report=lambda _: None)
    assert row["status"] == "completed", row["reason"]
    ratio, iqr = row["runtime_ratio"], row["runtime_ratio_iqr"]
    assert row["runtime_baseline"] == BASE and row["runtime_baseline_ms"] > 0
    assert abs(ratio - 1.0) <= max(iqr, 0.05)
    # MACs and params are the baseline's own: only the paired runtime term moves
    assert row["ntire_score"] == pytest.approx(0.8 * math.exp(2 * ratio) + 0.2 * math.exp(2))
    assert abs(row["ntire_score"] - math.exp(2)) < 0.8 * math.exp(2) * (
        math.exp(2 * max(iqr, 0.05)) - 1)


def test_a_relative_runtime_constraint_reads_the_paired_ratio(tmp_path):
    tight = parse_constraint("constraints.runtime_ms", "runtime_ms", f"<= 0.001 * {BASE}", [BASE])
    settings = _settings(tmp_path, constraints=(tight,), objectives=())
    trial = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0)).ask()
    params = suggest_arch(trial, resolve_space(tiny_config()["space"]))
    row = run_trial({**params, META_KEY: {"number": 1, "anchor": None}}, settings,
                    trial_id="t1", report=lambda _: None)
    assert row["status"] == "infeasible"
    assert row["reason"].startswith("runtime_ratio ")
    assert row["reason"].endswith(f"> 0.001 (0.001 * {BASE}, timed paired)")
    assert row["runtime_ratio"] > 0.001


def test_a_paired_bound_with_an_offset_is_read_in_the_baselines_milliseconds():
    c = parse_constraint("constraints.runtime_ms", "runtime_ms", "<= rlfn + 5", ["rlfn"])
    assert c.ratio_violation(1.4, baseline_ms=10.0) is None  # 14 ms <= 10 + 5
    assert c.ratio_violation(1.6, baseline_ms=10.0) == (
        "runtime_ratio 1.6 > 1.5 (rlfn + 5, timed paired)")


def test_ntire_score_takes_the_paired_ratio_over_the_milliseconds():
    base = {"runtime_ms": 10.0, "macs_g": 2.0, "params": 100}
    costs = {"runtime_ms": 30.0, "runtime_ratio": 1.0, "macs_g": 2.0, "params": 100}
    assert ntire_score(costs, base) == pytest.approx(math.exp(2))
    assert ntire_score({**costs, "runtime_ratio": None}, base) == pytest.approx(
        0.8 * math.exp(6) + 0.2 * math.exp(2))


@pytest.mark.parametrize("overrides, expected", [
    ({"objectives": {"ntire_score": "min", "psnr": "max"}, "anchors": [BASE],
      "ntire": {"baseline": BASE}}, BASE),
    ({"anchors": ["rlfn"], "constraints": {"runtime_ms": "<= 0.9 * rlfn"}}, "rlfn"),
    ({"anchors": ["rlfn"], "constraints": {"runtime_ms": "<= 40"}}, None),
])
def test_the_runtime_baseline_of_a_search(overrides, expected):
    config = SearchConfig.from_dict(tiny_config(**overrides))
    assert runtime_baseline(config) == expected
