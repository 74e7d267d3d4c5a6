"""The define-by-run search space: every sample is a valid spec, names are stable, bad spaces are
reported with their path."""

from __future__ import annotations

import time

import optuna
import pytest
import torch

from search_space.errors import InputError
from search_space.registry import get_block, get_conv_unit, list_blocks
from search_space.space import (
    DEFAULT_SPACE,
    check_space,
    resolve_space,
    spec_from_params,
    suggest_arch,
)

optuna.logging.set_verbosity(optuna.logging.WARNING)
pytestmark = pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")


def _samples(n: int, sampler: optuna.samplers.BaseSampler, space=None) -> list[dict]:
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
    out = []
    for i in range(n):
        trial = study.ask()
        params = suggest_arch(trial, space)
        out.append(params)
        # a fake objective so that TPE's model (not only its random start-up) gets exercised
        study.tell(trial, [float(params["channels"]), float(params["body.depth"] + i % 3)])
    return out


@pytest.mark.parametrize("sampler", ["random", "tpe", "nsga2"])
def test_every_sample_is_a_valid_spec(sampler):
    s = {"random": lambda: optuna.samplers.RandomSampler(seed=3),
         "tpe": lambda: optuna.samplers.TPESampler(seed=3, n_startup_trials=20, multivariate=True,
                                                   group=True),
         "nsga2": lambda: optuna.samplers.NSGAIISampler(population_size=16, seed=3)}[sampler]()
    samples = _samples(300 if sampler == "random" else 120, s)
    arch_ids = set()
    for params in samples:
        spec, hparams = spec_from_params(params)  # raises SpecError on an invalid sample
        arch_ids.add(spec.arch_id())
        assert spec.scale == 4 and spec.input_range == 255.0
        assert hparams == {}
    assert len(arch_ids) > 0.8 * len(samples)  # the space is not degenerate
    blocks = {p["body.block"] for p in samples}
    assert blocks == set(DEFAULT_SPACE["blocks"])
    assert {p["attention.type"] for p in samples} == set(DEFAULT_SPACE["attention"]["type"])
    assert {p["fusion"] for p in samples} == set(DEFAULT_SPACE["fusion"])


def test_sampled_models_build_run_and_reparameterise():
    from search_space.factory import build_model
    from search_space.reparam import reparameterize_model

    torch.set_num_threads(1)
    for params in _samples(12, optuna.samplers.RandomSampler(seed=11)):
        spec, _ = spec_from_params(params)
        model = build_model(spec)
        x = torch.rand(1, 3, 20, 20) * spec.input_range  # ESA needs >= 15x15
        with torch.no_grad():
            y = model.eval()(x)
            deploy = reparameterize_model(model)
            assert y.shape == (1, 3, 80, 80)
            torch.testing.assert_close(deploy(x), y, rtol=1e-4, atol=1e-3 * spec.input_range)


def test_fixed_trial_replays_a_sample_exactly():
    for params in _samples(20, optuna.samplers.RandomSampler(seed=5)):
        replay = suggest_arch(optuna.trial.FixedTrial(params))
        assert replay == params
        assert spec_from_params(replay)[0].arch_id() == spec_from_params(params)[0].arch_id()


def test_conditional_names_are_prefixed_by_their_parent_choice():
    for params in _samples(100, optuna.samplers.RandomSampler(seed=7)):
        block = params["body.block"]
        for name in params:
            if name.startswith("body.") and name not in ("body.depth", "body.block"):
                assert name.startswith(f"body.{block}.")
                assert name.split(".")[2] in get_block(block).choices
            if name.startswith("attention.") and name not in ("attention.type",
                                                              "attention.every"):
                assert params["attention.type"] != "none"
                assert name.startswith(f"attention.{params['attention.type']}.")
            if name.startswith("conv."):
                assert name.startswith(f"conv.{params['conv']}.")
                assert name.split(".")[2] in get_conv_unit(params["conv"]).choices
        assert ("attention.every" in params) == (params["attention.type"] != "none")


def test_attention_stage_after_every_complete_group():
    params = suggest_arch(optuna.trial.FixedTrial({
        "scale": 4, "input_range": 255.0, "channels": 32, "body.depth": 5, "body.block": "rlfb",
        "body.rlfb.esa": "none", "attention.type": "cca", "attention.every": 2,
        "attention.cca.reduction": 8, "fusion": "sequential", "global_residual": True,
        "last_conv": False, "activation": "default", "conv": "plain", "upsampler": "pixelshuffle",
        "upsampler.pixelshuffle.near": False, "input_skip": False}))
    spec, _ = spec_from_params(params)
    assert [(s.block, s.repeat) for s in spec.body] == [
        ("rlfb", 2), ("cca", 1), ("rlfb", 2), ("cca", 1), ("rlfb", 1)]
    assert dict(spec.body[1].args) == {"reduction": 8}
    assert dict(spec.body[0].args) == {"esa": "none"}
    assert spec.activation is None and spec.conv is None and spec.last_conv is False


def test_rrrb_conv_and_training_hyperparameters():
    space = {"conv": {"type": ["rrrb"], "rrrb": {"expand_ratio": [3]}},
             "train": {"lr": {"low": 1e-4, "high": 1e-3, "log": True}, "batch_size": [8, 16],
                       "distill": [True], "teacher": ["rlfn"],
                       "distill_weight": {"low": 0.5, "high": 2.0}}}
    params = _samples(1, optuna.samplers.RandomSampler(seed=0), space)[0]
    spec, hparams = spec_from_params(params)
    assert spec.conv == {"type": "rrrb", "expand_ratio": 3}
    assert 1e-4 <= hparams["lr"] <= 1e-3 and hparams["batch_size"] in (8, 16)
    assert hparams["distill"]["teacher"] == "rlfn" and 0.5 <= hparams["distill"]["weight"] <= 2
    assert "lr_patch" not in hparams  # null: the preset's value


def test_frozen_dimensions_are_recorded_as_parameters():
    space = {"channels": 24, "depth": 3, "blocks": {"nrb": {"esa": "slim"}},
             "attention": {"type": "none"}}
    params = _samples(1, optuna.samplers.RandomSampler(seed=0), space)[0]
    assert params["channels"] == 24 and params["body.depth"] == 3
    assert params["body.nrb.esa"] == "slim"
    spec, _ = spec_from_params(params)
    assert spec.channels == 24 and spec.body[0].block == "nrb" and spec.body[0].repeat == 3


def test_sampling_is_fast():
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    t0 = time.perf_counter()
    for _ in range(100):
        suggest_arch(study.ask())
    assert (time.perf_counter() - t0) / 100 < 0.05  # Ray warns above 1 s


def test_default_space_is_valid_and_searchable():
    assert check_space(DEFAULT_SPACE) == []
    assert set(DEFAULT_SPACE["blocks"]) <= set(list_blocks(searchable_only=True))


@pytest.mark.parametrize("space, message", [
    ({"blocks": {"rlfbb": {}}}, r"space\.blocks: 'rlfbb' not allowed.*did you mean 'rlfb'"),
    ({"blocks": {"rlfb": {"esa": ["esa9"]}}}, r"space\.blocks\.rlfb\.esa: 'esa9' not allowed"),
    ({"blocks": {"rlfb": {"width": [8]}}}, r"space\.blocks\.rlfb\.width: not a searchable"),
    ({"channels": {"low": 64, "high": 16}}, r"space\.channels: low <= high must hold"),
    ({"depth": {"low": 1.5, "high": 3}}, r"space\.depth\.low: expected an integer"),
    ({"fusion": ["concat"]}, r"space\.fusion: 'concat' not allowed"),
    ({"attention": {"type": ["se"]}}, r"space\.attention\.type: 'se' not allowed"),
    ({"conv": {"type": ["rrrb"], "rrrb": {"expand_ratio": [7]}}},
     r"space\.conv\.rrrb\.expand_ratio: 7 not allowed"),
    ({"train": {"teacher": ["srn"]}}, r"space\.train\.teacher: 'srn' not allowed"),
    ({"scale": 2, "train": {"distill": [True, False]}},
     r"space\.train\.teacher: teacher 'rlfn' has official weights only at x4"),
    ({"train": {"lr_pach": 24}}, r"space\.train\.lr_pach: unknown key.*did you mean 'lr_patch'"),
    ({"widths": [16]}, r"space\.widths: unknown key"),
])
def test_bad_space_names_the_path(space, message):
    with pytest.raises(InputError, match=message):
        resolve_space(space)


def test_all_problems_reported_at_once():
    with pytest.raises(InputError) as info:
        resolve_space({"fusion": ["concat"], "upsampler": ["nearest_conv"]})
    assert "space.fusion" in str(info.value) and "space.upsampler" in str(info.value)


def test_a_two_stage_body_samples_a_family_and_a_width_per_stage_and_one_stage_nothing_new():
    import optuna

    from search_space.space import spec_from_params, suggest_arch

    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    kinds, widths = set(), set()
    for _ in range(12):
        trial = study.ask()
        params = suggest_arch(trial, {"stages": 2, "attention": {"type": ["none"]}})
        body = spec_from_params(params)[0].to_dict()["body"]
        assert [b["block"] for b in body] == [params["body.block"], params["body2.block"]]
        assert [b["repeat"] for b in body] == [params["body.depth"], params["body2.depth"]]
        own = params["body2.channels"] != params["channels"]
        # the second stage carries its width only when it differs from the trunk's
        assert body[1].get("channels") == (params["body2.channels"] if own else None)
        assert "channels" not in body[0]
        kinds.add(params["body.block"] != params["body2.block"])
        widths.add(own)
        study.tell(trial, 0.0)
    assert True in kinds and True in widths  # families and widths are drawn per stage
    single = suggest_arch(optuna.create_study().ask(), None)  # default: one stage, no body2
    assert "stages" not in single and not any(k.startswith("body2.") for k in single)


def test_a_stage_of_its_own_width_is_projected_per_group_with_attention_at_the_trunk_width():
    params = suggest_arch(optuna.trial.FixedTrial({
        "scale": 4, "input_range": 255.0, "channels": 32, "stages": 2,
        "body.depth": 2, "body.block": "rb", "body2.channels": 24, "body2.depth": 3,
        "body2.block": "rb", "attention.type": "cca", "attention.every": 2,
        "attention.cca.reduction": 8, "fusion": "aggregate",
        "global_residual": True, "last_conv": True, "activation": "default", "conv": "plain",
        "upsampler": "pixelshuffle", "upsampler.pixelshuffle.near": False, "input_skip": False}),
        {"stages": [1, 2], "attention": {"type": ["cca"]}})
    spec, _ = spec_from_params(params)
    assert [(s.block, s.repeat, s.channels) for s in spec.body] == [
        ("rb", 2, None), ("cca", 1, None), ("rb", 2, 24), ("cca", 1, None), ("rb", 1, 24)]


def test_a_second_stage_keeps_the_trunk_width_when_asked():
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(5):
        trial = study.ask()
        params = suggest_arch(trial, {"stages": 2, "stage_width": "shared"})
        assert "body2.channels" not in params
        assert all(s.channels is None for s in spec_from_params(params)[0].body)
        study.tell(trial, 0.0)
    with pytest.raises(InputError, match=r"space\.stage_width: 'wide' not allowed"):
        resolve_space({"stage_width": "wide"})
