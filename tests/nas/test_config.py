"""Search config: defaults, strict validation naming the path, constraints, budget."""

from __future__ import annotations

import pytest
import yaml

from nas.budget import Budget
from nas.config import SearchConfig, load_defaults
from nas.objectives import Constraint, parse_constraint
from search_space.errors import InputError

ANCHORS = ["fmen_s", "rlfn"]


def test_defaults_are_the_documented_ones():
    cfg = SearchConfig.defaults()
    assert cfg.objectives == {"psnr": "max", "runtime_ms": "min", "peak_memory_mb": "min"}
    assert cfg.metric_names == ["psnr", "runtime_ms", "peak_memory_mb"]
    assert cfg.modes == ["max", "min", "min"]
    assert cfg.anchors == tuple(load_defaults()["anchors"])
    assert cfg.sampler.type == "tpe" and cfg.scheduler.type == "none"
    assert cfg.proxy.resolved_preset(0) == "cpu" and cfg.proxy.resolved_preset(0.5) == "gpu"
    assert cfg.scale == 4 and cfg.constraints == ()


def test_round_trip_through_yaml():
    cfg = SearchConfig.from_dict({"anchors": ANCHORS, "seed": 3,
                                  "constraints": {"runtime_ms": "<= 0.9 * fmen_s"},
                                  "space": {"channels": [16, 32]}})
    again = SearchConfig.from_dict(yaml.safe_load(cfg.to_yaml()))
    assert again == cfg
    assert again.space["channels"] == [16, 32] and again.seed == 3


def test_user_file_merges_over_defaults(tmp_path):
    path = tmp_path / "search.yaml"
    path.write_text("objectives: {psnr: max, params: min}\nsampler: {type: nsga2}\n"
                    "anchors: [rlfn]\nresources: {max_concurrent: 2}\n")
    cfg = SearchConfig.from_file(path)
    assert cfg.objectives == {"psnr": "max", "params": "min"}  # replaced, not merged
    assert cfg.sampler.type == "nsga2" and cfg.sampler.population_size == 16  # merged
    assert cfg.resources.max_concurrent == 2 and cfg.resources.gpus_per_trial == 0
    assert cfg.anchors == ("rlfn",)


@pytest.mark.parametrize("data, message", [
    ({"objective": {"psnr": "max"}},
     r"^invalid search config: objective: unknown key.*did you mean 'objectives'"),
    ({"objectives": {"pnsr": "max"}}, r"objectives: 'pnsr' not allowed.*did you mean 'psnr'"),
    ({"objectives": {"psnr": "up"}}, r"objectives\.psnr: expected max or min, got 'up'"),
    ({"anchors": ["fmen_x"]}, r"anchors\[0\]: 'fmen_x' not allowed.*did you mean 'fmen_s'"),
    ({"constraints": {"runtime_ms": "<= 0.9 * fmen_x"}},
     r"constraints\.runtime_ms: 'fmen_x' is not a known anchor.*did you mean 'fmen_s'"),
    ({"constraints": {"latency": "<= 3"}}, r"constraints\.latency: 'latency' cannot be constr"),
    ({"constraints": {"psnr": ">= 28 - 1"}}, r"constraints\.psnr: an offset needs an anchor"),
    ({"constraints": {"psnr": ">= nan"}}, r"constraints\.psnr: expected finite numbers"),
    ({"constraints": {"params": "about 5"}}, r"constraints\.params: expected '<= number'"),
    ({"sampler": {"type": "cmaes"}}, r"sampler\.type: 'cmaes' not allowed; allowed: tpe"),
    ({"sampler": {"kind": "tpe"}}, r"sampler\.kind: unknown key"),
    ({"scheduler": {"grace_period": 0}}, r"scheduler\.grace_period: expected an integer >= 1"),
    ({"resources": {"gpus_per_trial": -1}}, r"resources\.gpus_per_trial: expected a number >= 0"),
    ({"seed": "zero"}, r"seed: expected an integer >= 0, got 'zero'"),
    ({"profile": {"input_hw": [256]}}, r"profile\.input_hw: expected auto or \[height, width\]"),
    ({"profile": {"runtime": False}}, r"profile\.runtime: must be true while runtime_ms"),
    ({"proxy": {"preset": "tpu"}}, r"proxy\.preset: 'tpu' not allowed"),
    ({"proxy": {"train": {"seed": 3}}}, r"proxy\.train\.seed: set by the search"),
    ({"space": {"fusion": ["concat"]}}, r"space\.fusion: 'concat' not allowed"),
    ({"space": {"scale": [2, 4]}}, r"space\.scale: expected one of 2, 3, 4 \(a search runs at"),
    ([1, 2], r"expected a mapping of search settings"),
])
def test_bad_config_names_the_path(data, message):
    with pytest.raises(InputError, match=message):
        SearchConfig.from_dict(data)


def test_unreadable_and_invalid_files(tmp_path):
    with pytest.raises(InputError, match=r"missing\.yaml: cannot read search config"):
        SearchConfig.from_file(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("objectives: [psnr\n")
    with pytest.raises(InputError, match=r"bad\.yaml: not valid YAML"):
        SearchConfig.from_file(bad)
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00\x81")
    with pytest.raises(InputError, match=r"binary\.yaml: cannot read search config"):
        SearchConfig.from_file(binary)


def test_every_problem_is_reported_at_once():
    with pytest.raises(InputError) as info:
        SearchConfig.from_dict({"seed": -1, "sampler": {"type": "cmaes"},
                                "resources": {"max_concurrent": 0}})
    lines = str(info.value).splitlines()
    assert lines[0] == "invalid search config (3 problems):"
    assert [line.split(":")[0].strip() for line in lines[1:]] == [
        "sampler.type", "resources.max_concurrent", "seed"]


def test_command_line_overrides_are_validated():
    cfg = SearchConfig.defaults().with_overrides(seed=7, max_concurrent=2, gpus_per_trial=0.25)
    assert cfg.seed == 7 and cfg.resources.max_concurrent == 2
    assert cfg.resources.gpus_per_trial == 0.25
    with pytest.raises(InputError, match=r"--max-concurrent: expected an integer >= 1"):
        SearchConfig.defaults().with_overrides(max_concurrent=0)
    with pytest.raises(InputError, match=r"--cpus-per-trial: expected a number > 0"):
        SearchConfig.defaults().with_overrides(cpus_per_trial=0)


@pytest.mark.parametrize("text, trials, seconds", [
    ("8", 8, None), ("1", 1, None), ("90s", None, 90.0), ("45m", None, 2700.0),
    ("2h", None, 7200.0), ("1.5h", None, 5400.0),
])
def test_budget_forms(text, trials, seconds):
    b = Budget.parse(text)
    assert (b.trials, b.seconds) == (trials, seconds)
    assert Budget.from_dict(b.to_dict()) == b


@pytest.mark.parametrize("text", ["0", "3x", "-2", "m", "2d", "", "1e3", "0s", "nanm"])
def test_bad_budget_shows_both_forms(text):
    with pytest.raises(InputError, match=r"--budget: expected a number of trials \(e\.g\. 8\) "
                                         r"or a wall-clock duration \(e\.g\. 90s, 45m, 2h\)"):
        Budget.parse(text)


@pytest.mark.parametrize("text, constraint", [
    ("<= 400000", Constraint("params", "<=", 400000.0)),
    (400000, Constraint("params", "<=", 400000.0)),
    ("< 1e6", Constraint("params", "<", 1e6)),
    ("<= 0.9 * fmen_s", Constraint("params", "<=", 0.9, "fmen_s")),
    ("<= rlfn", Constraint("params", "<=", 1.0, "rlfn")),
    (">=2.5e5", Constraint("params", ">=", 2.5e5)),
])
def test_constraint_forms(text, constraint):
    assert parse_constraint("constraints.params", "params", text, ANCHORS) == constraint


def test_constraint_violation_messages():
    refs = {"fmen_s": {"runtime_ms": 40.0}}
    rel = parse_constraint("c", "runtime_ms", "<= 0.9 * fmen_s", ANCHORS)
    assert rel.violation(36.0, refs) is None
    assert rel.violation(41.2, refs) == "runtime_ms 41.2 > 36 (0.9 * fmen_s)"
    absolute = parse_constraint("c", "params", "< 1000", ANCHORS)
    assert absolute.cheap and not rel.cheap
    assert absolute.violation(1000, refs) == "params 1000 >= 1000"
    assert absolute.violation(None, refs) == "params was not measured, cannot check params < 1000"


def test_ntire_score_of_the_baseline_is_e_squared():
    """NTIRE 2026 ESR README: the SPAN baseline at 7.74 ms, 9.83 G FLOPs, 0.151 M params."""
    import math

    from nas.objectives import NTIRE_WEIGHTS, ntire_score

    span = {"runtime_ms": 7.74, "macs_g": 9.83, "params": 0.151e6}
    assert ntire_score(span, span) == pytest.approx(7.3891, abs=5e-5)
    assert ntire_score(span, span) == pytest.approx(math.exp(2))
    half = {"runtime_ms": 3.87, "macs_g": 9.83, "params": 0.151e6}
    assert ntire_score(half, span) == pytest.approx(0.8 * math.e + 0.2 * math.e**2)
    old = {"runtime": 0.7, "macs": 0.15, "params": 0.15}  # 2024/2025 weights
    assert ntire_score(half, span, old) == pytest.approx(0.7 * math.e + 0.3 * math.e**2)
    assert ntire_score({**span, "runtime_ms": None}, span) is None
    assert sum(NTIRE_WEIGHTS.values()) == pytest.approx(1.0)


@pytest.mark.parametrize("text, rhs", [(">= span_ch28 - 0.05", ("span_ch28", 1.0, -0.05)),
                                       ("<= 0.9 * fmen_s + 2", ("fmen_s", 0.9, 2.0)),
                                       ("<= 3e5", (None, 3e5, 0.0))])
def test_constraint_offsets_from_anchors(text, rhs):
    from nas.objectives import parse_constraint

    c = parse_constraint("constraints.psnr", "psnr", text, ["span_ch28", "fmen_s"])
    assert (c.anchor, c.value, c.offset) == rhs
    refs = {"span_ch28": {"psnr": 31.0}, "fmen_s": {"psnr": 10.0}}
    assert c.bound(refs) == pytest.approx({"span_ch28": 30.95, "fmen_s": 11.0, None: 3e5}[c.anchor])
