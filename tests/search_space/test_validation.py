"""The validation layer's shared rules: one bound per setting, whichever door the value comes in."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from nas.cli import main
from nas.config import SearchConfig
from nas.config_sections import SearchConfigError
from search_space.errors import InputError
from search_space.limits import MAX_INPUT_PIXELS, check_profile_settings
from search_space.validation import Rule, check_value, field_rule
from trainers.config import TrainConfig
from trainers.device import resolve_device
from trainers.profiling import profile_model


@pytest.mark.parametrize("repeats", [0, 10_001])
def test_profile_repeats_have_one_bound_in_the_config_the_cli_and_the_function(repeats, capsys):
    message = f"repeats: expected an integer >= 1 and <= 10000, got {repeats}"
    with pytest.raises(SearchConfigError, match=f"profile.{message}"):
        SearchConfig.from_dict({"profile": {"repeats": repeats}})
    with pytest.raises(InputError, match=message):
        check_profile_settings(repeats=repeats)
    assert main(["profile", "fmen_s", "--input", "8x8", "--repeats", str(repeats)]) == 2
    assert f"--{message}" in capsys.readouterr().err


def test_the_largest_repeat_count_is_accepted_everywhere():
    assert SearchConfig.from_dict({"profile": {"repeats": 10_000}}).profile.repeats == 10_000
    assert check_profile_settings(repeats=10_000) == {"repeats": 10_000}


def test_input_size_rule_is_shared_by_the_config_and_the_profiler():
    side = int(MAX_INPUT_PIXELS ** 0.5)
    assert check_profile_settings(input_hw=[side, side])["input_hw"] == (side, side)
    with pytest.raises(SearchConfigError, match=r"profile\.input_hw: expected auto or \[height"):
        SearchConfig.from_dict({"profile": {"input_hw": [side + 1, side]}})
    with pytest.raises(InputError, match=r"input_hw: expected \[height, width\]"):
        profile_model(nn.Conv2d(3, 3, 1), input_hw=(side + 1, side))


def test_check_value_names_the_flag_and_passes_a_flag_not_given():
    rule = field_rule(TrainConfig, "iterations")
    assert check_value("--iters", None, rule) is None
    assert check_value("--iters", 12, rule) == 12
    with pytest.raises(InputError, match=r"^--iters: expected an integer >= 1"):
        check_value("--iters", 0, rule)
    with pytest.raises(InputError, match=r"^--workers: expected an integer >= 0 and <= 8, got -1"):
        check_value("--workers", -1, Rule(kind=int, low=0, high=8))


def test_one_device_resolution():
    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("cpu") == "cpu"
    with pytest.raises(InputError, match=r"device: 'tpu' not allowed; allowed: auto, cpu, cuda"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match=r"device: 'cuda:0' requested but CUDA is not "):
            resolve_device("cuda:0")
