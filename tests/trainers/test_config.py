"""TrainConfig: defaults, round trip, strict validation with path-naming messages."""

from __future__ import annotations

import pytest
import yaml

from search_space.anchors import get_anchor
from search_space.errors import InputError
from trainers.config import ConfigError, TrainConfig, resolve_arch
from trainers.presets import PRESETS


def test_defaults_and_anchor_resolution():
    cfg = TrainConfig.from_dict({"arch": "rlfn"})
    assert cfg.spec == get_anchor("rlfn").spec
    assert cfg.data.val == ("Set5", "Set14") and cfg.optim.betas == (0.9, 0.999)
    assert cfg.out_dir == "runs/train/rlfn"
    assert TrainConfig.from_dict({"arch": "rlfn", "scale": 2}).spec.scale == 2


def test_round_trip_through_yaml(tmp_path):
    # PyYAML reads 2e-4 (no dot) as a string: accepted as a number.
    cfg = TrainConfig.from_dict({"arch": "rlfn", "optim": {"lr": "2e-4"},
                                 "data": {"val": "Set5"}, "distill": {"teacher": "rlfn"},
                                 "picked": {"psnr": 28.1}})
    assert cfg.optim.lr == 2e-4 and cfg.data.val == ("Set5",)
    path = tmp_path / "train.yaml"
    path.write_text(cfg.to_yaml())
    assert TrainConfig.from_file(path) == cfg
    assert yaml.safe_load(cfg.to_yaml())["arch"]["channels"] == cfg.spec.channels


def test_arch_from_spec_file_next_to_the_config(tmp_path, tiny_spec):
    (tmp_path / "arch.yaml").write_text(tiny_spec.to_yaml())
    (tmp_path / "train.yaml").write_text("arch: arch.yaml\n")
    assert TrainConfig.from_file(tmp_path / "train.yaml").spec == tiny_spec
    assert resolve_arch(tiny_spec.to_dict()) == tiny_spec


@pytest.mark.parametrize("data, message", [
    ({"arch": "rlfn", "optim": {"lr": "fast"}}, "optim.lr: expected a number > 0, got 'fast'"),
    ({"arch": "rlfn", "data": {"lr_pach": 8}},
     "data.lr_pach: unknown key; allowed: train, val, lr_patch, batch_size, workers, augment, "
     "lr_dir, prepare (did you mean 'lr_patch'?)"),
    ({"arch": "rlfn", "iterations": 1.5},
     "iterations: expected an integer >= 1 and <= 10000000, got 1.5"),
    ({"arch": "rlfn", "schedule": {"type": "linear"}},
     "schedule.type: 'linear' not allowed; allowed: cosine, step, constant"),
    ({"arch": "rlfn", "optim": {"betas": [0.9]}}, "optim.betas: expected two numbers in [0, 1)"),
    ({"arch": "rlfn", "iteration": 5}, "iteration: unknown key;"),
    ({"arch": "rlfn", "device": "gpu"}, "device: expected auto, cpu, cuda or cuda:N, got 'gpu'"),
    ({"arch": "rlfn", "distill": {"weight": 1}}, "distill.teacher: required"),
    ({"arch": "rlfn", "distill": {"teacher": "srn"}}, "anchor 'srn' has no official weights"),
    ({"arch": "rlfn", "data": {"train": "/no/such"}},
     "data.train: /no/such: dataset folder not found"),
    ({"arch": "rlfn", "init": "missing.pth"}, "init: missing.pth: checkpoint file not found"),
    ({"arch": "rlfx"}, "arch: 'rlfx' is neither an anchor nor an existing spec file"),
    ({"arch": {"scale": 4, "channels": 8, "body": [{"block": "rlfbx"}]}},
     "arch.body[0].block: 'rlfbx' is not a registered block"),
    ({"optim": {}}, "arch: required"),
])
def test_bad_values_name_their_path(data, message):
    with pytest.raises(ConfigError) as info:
        TrainConfig.from_dict(data, source="t.yaml")
    text = str(info.value)
    assert message in text and text.startswith("invalid training config t.yaml")
    assert len(text.splitlines()) == 1


def test_all_problems_reported_at_once():
    with pytest.raises(ConfigError) as info:
        TrainConfig.from_dict({"arch": "rlfn", "loss": "l3", "seed": -1, "amp": "yes"})
    assert len(info.value.problems) == 3


def test_not_yaml_or_not_a_mapping(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("arch: [unclosed\n")
    with pytest.raises(InputError, match=r"bad\.yaml: not valid YAML"):
        TrainConfig.from_file(bad)
    bad.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        TrainConfig.from_file(bad)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_are_valid_partial_configs(name):
    cfg = TrainConfig.from_dict({**PRESETS[name], "arch": "rlfn"}, source=f"preset {name}")
    assert cfg.schedule.type == "cosine" and cfg.iterations >= cfg.eval_every > 0
