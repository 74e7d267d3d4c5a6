"""One trial without Ray: completed, infeasible (cheap and measured), failed (exception, NaN loss),
anchor (its own spec + official-weight PSNR); the files of trials/<trial_id>/."""

from __future__ import annotations

import json
import platform
from pathlib import Path

import optuna
import pytest
import yaml

from nas.config_sections import ProfileConfig
from nas.objectives import parse_constraint
from nas.trial import META_KEY, run_trial
from nas.trial_settings import TrialSettings
from search_space.anchors import get_anchor
from search_space.space import resolve_space, spec_from_params, suggest_arch
from search_space.spec import ArchSpec
from tests.nas.conftest import TINY_PROFILE, TINY_SPACE, TINY_TRAIN

ANCHORS = ["fmen_s", "rlfn"]


def _settings(tmp_path, **kw) -> TrialSettings:
    base = dict(run_dir=str(tmp_path), scale=4, train_base=TINY_TRAIN,
                profile=ProfileConfig(**{**TINY_PROFILE, "input_hw": (32, 32)}), seed=0, threads=1,
                objectives=("psnr", "runtime_ms", "peak_memory_mb"), val_sets=("Set5",))
    base.update(kw)
    return TrialSettings(**base)


def _params(seed: int = 0, **fixed) -> dict:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    params = suggest_arch(study.ask(), resolve_space(TINY_SPACE))
    params.update(fixed)
    return params


def _run(tmp_path, params, settings=None, anchor=None, number=0):
    reports = []
    config = {**params, META_KEY: {"number": number, "anchor": anchor, "optuna_number": None}}
    row = run_trial(config, settings or _settings(tmp_path), trial_id=f"t{number}",
                    report=reports.append)
    return row, reports


def test_completed_trial_writes_its_folder_and_reports(tmp_path):
    params = _params()
    row, reports = _run(tmp_path, params)
    assert row["status"] == "completed", row["reason"]
    folder = tmp_path / "trials" / "t0"
    spec, _ = spec_from_params(params, name="trial-0")
    assert row["arch_id"] == spec.arch_id()
    assert ArchSpec.from_file(folder / "spec.yaml").arch_id() == spec.arch_id()
    assert json.loads(row["spec"]) == json.loads(json.dumps(spec.to_dict(), sort_keys=True))
    assert json.loads((folder / "hparams.json").read_text()) == {}
    ckpt = __import__("torch").load(folder / "model_deploy.pth", weights_only=True)
    assert ckpt["format"] == "esrnas" and ckpt["spec"]["channels"] == spec.channels
    assert "model_deploy" in ckpt
    record = json.loads((folder / "metrics.json").read_text())
    assert record["row"]["status"] == "completed" and record["params"] == params
    assert "proxy training" in (folder / "train.log").read_text()
    assert not (folder / "checkpoint.pth").exists()
    # an intermediate result after the validation at 2 of 4 iterations, then the final row
    # (the last validation is reported by the final row only: a finished trial is not pruned)
    assert [r["final"] for r in reports] == [False, True]
    assert [r["eval_round"] for r in reports] == [1, 3]
    final = reports[-1]
    assert final["psnr"] == pytest.approx(row["psnr"]) == pytest.approx(row["psnr_set5"])
    assert 5 < row["psnr"] < 40 and row["iterations"] == 4
    for key in ("runtime_ms", "peak_memory_mb", "params", "macs_g", "params_train"):
        assert row[key] > 0
    assert "val_psnr" in reports[0] and "psnr_set14" not in final


def test_cheap_constraint_rejects_before_profiling(tmp_path):
    settings = _settings(tmp_path, constraints=(
        parse_constraint("constraints.params", "params", "<= 10", ANCHORS),))
    row, reports = _run(tmp_path, _params(), settings=settings, number=1)
    assert row["status"] == "infeasible"
    assert row["reason"] == f"params {row['params']} > 10"
    assert row["params"] > 10 and row["macs_g"] > 0 and row["peak_memory_est_mb"] > 0
    assert row.get("runtime_ms") is None and row.get("psnr") is None  # never timed or trained
    assert len(reports) == 1 and reports[0]["status"] == "infeasible"
    assert not (tmp_path / "trials" / "t1" / "model_deploy.pth").exists()


def test_measured_constraint_relative_to_an_anchor(tmp_path):
    refs = {"rlfn": {"runtime_ms": 1e-6}}
    settings = _settings(tmp_path, references=refs, constraints=(
        parse_constraint("constraints.runtime_ms", "runtime_ms", "<= 0.5 * rlfn", ANCHORS),))
    row, _ = _run(tmp_path, _params(), settings=settings)
    assert row["status"] == "infeasible"
    assert row["reason"].startswith("runtime_ms ") and "(0.5 * rlfn)" in row["reason"]
    assert row["runtime_ms"] > 0 and row["peak_memory_mb"] > 0 and row.get("psnr") is None


def test_nan_loss_fails_with_its_reason(tmp_path):
    row, reports = _run(tmp_path, _params(**{"train.lr": 1e30}))
    assert row["status"] == "failed"
    assert row["reason"].startswith("nan/inf loss at iteration ")
    assert reports[-1]["final"] and reports[-1]["status"] == "failed"
    assert "failed: nan/inf loss" in (tmp_path / "trials" / "t0" / "train.log").read_text()


def test_exception_fails_with_its_reason(tmp_path):
    params = _params()
    del params["body.block"]
    row, _ = _run(tmp_path, params)
    assert row["status"] == "failed"
    assert row["reason"] == ("InputError: parameters: missing body.block; not a search-space "
                             "sample")
    assert "Traceback" in (tmp_path / "trials" / "t0" / "train.log").read_text()


def test_anchor_trial_runs_the_anchors_spec_and_its_official_weights(tmp_path):
    settings = _settings(tmp_path, constraints=(
        parse_constraint("constraints.params", "params", "<= 10", ANCHORS),))
    row, _ = _run(tmp_path, {}, settings=settings, anchor="rlfn")
    anchor = get_anchor("rlfn")
    assert row["status"] == "completed", row["reason"]  # anchors are never constrained
    assert row["is_anchor"] and row["anchor"] == "rlfn"
    assert row["arch_id"] == anchor.spec.with_scale(4).arch_id()
    assert row["params"] == anchor.reference["params"]["x4"]
    official = anchor.reference["metrics_x4"]["Set5"]["psnr_y"]
    assert row["psnr_official"] == pytest.approx(official, abs=0.01)
    assert yaml.safe_load((tmp_path / "trials" / "t0" / "spec.yaml").read_text())["name"] == "rlfn"


def test_training_config_carries_the_trials_hyperparameters(tmp_path):
    from nas.trial_settings import trial_train_config
    from trainers.config import TrainConfig

    spec, hparams = spec_from_params(_params(**{
        "train.lr": 2e-3, "train.batch_size": 4, "train.lr_patch": 20, "train.distill": True,
        "train.distill.teacher": "rlfn", "train.distill.weight": 0.5}))
    cfg = TrainConfig.from_dict(trial_train_config(spec, hparams, _settings(tmp_path),
                                                   tmp_path / "trials" / "t0"))
    assert cfg.spec.arch_id() == spec.arch_id() and cfg.seed == 0 and cfg.threads == 1
    assert cfg.optim.lr == 2e-3 and cfg.data.batch_size == 4 and cfg.data.lr_patch == 20
    assert cfg.distill.teacher == "rlfn" and cfg.distill.weight == 0.5
    assert cfg.out_dir == str(tmp_path / "trials" / "t0")
    assert cfg.iterations == TINY_TRAIN["iterations"] and list(cfg.data.val) == ["Set5"]


def _rss_mb() -> float:
    status = Path("/proc/self/status").read_text()
    return int(status.split("VmRSS:")[1].split()[0]) / 1024


@pytest.mark.skipif(not Path("/proc/self/status").exists() or platform.libc_ver()[0] != "glibc",
                    reason="RSS from /proc, trimming by glibc")
def test_release_memory_returns_freed_heap_to_the_os():
    from nas.trial import release_memory

    blocks = [bytearray(100_000) for _ in range(2000)]  # 200 MB on the heap, below mmap size
    keep = bytearray(100_000)  # on top of them: the heap cannot shrink from its end by itself
    del blocks
    before = _rss_mb()
    release_memory()
    assert before - _rss_mb() > 100
    del keep
