"""Training loop: schedule, bit-exact resume, NaN stop, pruning, distillation, files, CLI errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from nas.cli import main
from search_space.factory import build_model
from trainers.config import ScheduleConfig, TrainConfig
from trainers.evaluate import evaluate, model_from_checkpoint
from trainers.loop import NonFiniteLossError, TrainResult, lr_at, train, use_channels_last
from trainers.losses import Teacher, TrainingLoss

# Re-parameterisable (RRRB + BatchNorm) so that resume also covers BN statistics.
REPARAM_SPEC = {"scale": 2, "channels": 8, "name": "tiny_reparam",
                "body": [{"block": "erb"}, {"block": "hfab", "args": {"mid_channels": 4}}]}


@pytest.fixture(autouse=True)
def _private_disk_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("ESRNAS_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "lr_cache"))


@pytest.fixture
def val_dir(tmp_path):
    """Two small validation images (cheap to evaluate)."""
    folder = tmp_path / "val"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        img = rng.integers(0, 256, (20, 24, 3)).astype(np.uint8)
        Image.fromarray(img).save(folder / f"v{i}.png")
    return folder


def _config(tmp_path, val_dir, arch, **overrides) -> TrainConfig:
    data = {"arch": arch, "data": {"train": "Set5", "val": [str(val_dir)], "lr_patch": 8,
                                   "batch_size": 4},
            "iterations": 12, "eval_every": 6, "checkpoint_every": 6,
            "out_dir": str(tmp_path / "run"), "threads": 1, "seed": 3}
    for key, value in overrides.items():
        if isinstance(value, dict):
            data[key] = {**data.get(key, {}), **value}
        else:
            data[key] = value
    return TrainConfig.from_dict(data)


def test_cosine_schedule_decays_to_eta_min():
    sched = ScheduleConfig(type="cosine", eta_min=1e-7, warmup_iters=0)
    values = [lr_at(sched, 1e-3, i, 50) for i in range(1, 51)]
    assert values[0] == pytest.approx(1e-3) and values[-1] == pytest.approx(1e-7)
    assert all(a >= b for a, b in zip(values, values[1:], strict=False))
    half = 0.5 * (1 + math.cos(math.pi * 24 / 49))
    assert values[24] == pytest.approx(1e-7 + (1e-3 - 1e-7) * half)


def test_warmup_and_step_schedules():
    warm = ScheduleConfig(type="constant", warmup_iters=4)
    assert [lr_at(warm, 1.0, i, 10) for i in (1, 2, 4, 5, 10)] == [0.25, 0.5, 1.0, 1.0, 1.0]
    step = ScheduleConfig(type="step", step_iters=3, gamma=0.5)
    assert [lr_at(step, 1.0, i, 10) for i in (1, 3, 4, 6, 7)] == [1.0, 1.0, 0.5, 0.5, 0.25]


def test_resume_is_bit_exact(tmp_path, val_dir):
    """40 iterations straight == 20, stop, resume, 20 more: identical weights on the CPU."""
    common = dict(iterations=40, eval_every=20, checkpoint_every=20)
    full = train(_config(tmp_path / "a", val_dir, REPARAM_SPEC, **common))
    assert full.stopped is None and full.iterations == 40

    halves = _config(tmp_path / "b", val_dir, REPARAM_SPEC, **common)
    first = train(halves, on_eval=lambda it, m: it < 20)  # stop (as if killed) at iteration 20
    assert first.stopped == "pruned" and first.iterations == 20
    second = train(halves, resume=True)
    assert second.iterations == 40 and second.stopped is None

    a = torch.load(full.checkpoint, weights_only=True)
    b = torch.load(second.checkpoint, weights_only=True)
    assert a["model"].keys() == b["model"].keys()
    assert any("running_mean" in k for k in a["model"])
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    assert [h.get("loss") for h in full.history] == [h.get("loss") for h in second.history]
    assert full.metrics["val"]["psnr_y"] == second.metrics["val"]["psnr_y"]


def test_outputs_history_and_deploy_file(tmp_path, val_dir, tiny_spec):
    cfg = _config(tmp_path, val_dir, tiny_spec.to_dict(), schedule={"type": "cosine"})
    seen = []
    result = train(cfg, on_eval=lambda it, m: seen.append((it, m["val"]["psnr_y"])))
    assert [it for it, _ in seen] == [6, 12]
    assert result.history[-1]["iteration"] == 12
    assert result.history[-1]["lr"] == pytest.approx(cfg.schedule.eta_min)
    assert result.metrics["val"]["ssim_y"] is not None  # SSIM at the end
    at_6 = next(h for h in result.history if h["iteration"] == 6)
    assert at_6["metrics"]["val"]["ssim_y"] is None  # PSNR only in between
    deploy = model_from_checkpoint(tmp_path / "run" / "model_deploy.pth")
    again = evaluate(deploy, [val_dir], scale=2)["val"]
    assert again["psnr_y"] == pytest.approx(result.metrics["val"]["psnr_y"], abs=1e-9)
    assert result.train_seconds > 0 and result.eval_seconds > 0


def test_nan_loss_stops_with_iteration_and_keeps_last_checkpoint(tmp_path, val_dir, tiny_spec,
                                                                  monkeypatch):
    calls = {"n": 0}
    original = TrainingLoss.__call__

    def poisoned(self, sr, hr, lr):
        calls["n"] += 1
        loss = original(self, sr, hr, lr)
        return loss * float("nan") if calls["n"] == 9 else loss

    monkeypatch.setattr(TrainingLoss, "__call__", poisoned)
    cfg = _config(tmp_path, val_dir, tiny_spec.to_dict())
    with pytest.raises(NonFiniteLossError) as info:
        train(cfg)
    assert info.value.iteration == 9
    kept = torch.load(tmp_path / "run" / "checkpoint.pth", weights_only=True)
    assert kept["iteration"] == 6
    assert all(torch.isfinite(v).all() for v in kept["model"].values())
    assert not (tmp_path / "run" / "model_deploy.pth").exists()


def test_distillation_loss_uses_teacher_in_student_range():
    class Double(torch.nn.Module):  # a "teacher" working in 0..1
        input_range = 1.0

        def forward(self, x):
            return torch.nn.functional.interpolate(x, scale_factor=2) * 2

    teacher = Teacher(Double(), student_range=255.0)
    lr = torch.rand(1, 3, 4, 4) * 255
    target = torch.nn.functional.interpolate(lr, scale_factor=2) * 2  # same op, student range
    assert torch.allclose(teacher(lr), target, rtol=1e-6)
    sr, hr = torch.rand(1, 3, 8, 8) * 255, torch.rand(1, 3, 8, 8) * 255
    loss = TrainingLoss("l1", teacher=teacher, weight=0.5, pixel_weight=2.0)(sr, hr, lr)
    want = 2.0 * (sr - hr).abs().mean() + 0.5 * (sr - target).abs().mean()
    assert loss.item() == pytest.approx(want.item(), rel=1e-6)
    assert TrainingLoss("l2")(sr, hr, lr).item() == pytest.approx(((sr - hr) ** 2).mean().item(),
                                                                  rel=1e-6)


def test_distillation_from_official_teacher_changes_training(tmp_path, val_dir):
    from search_space.anchors import get_anchor

    if not get_anchor("rlfn").has_official_weights:
        pytest.skip("rlfn official weights not shipped")
    student = {"scale": 4, "channels": 8, "input_range": 255.0,
               "body": [{"block": "conv", "args": {"post_act": "lrelu0.1"}}]}
    common = dict(iterations=3, eval_every=0, checkpoint_every=0,
                  data={"val": [], "lr_patch": 16})  # RLFN's ESA needs >= 15 px
    plain = train(_config(tmp_path / "a", val_dir, student, **common))
    kd = train(_config(tmp_path / "b", val_dir, student, **common,
                       distill={"teacher": "rlfn", "weight": 1.0}))
    # Same init and data: the first loss differs exactly by the (positive) distillation term.
    assert kd.history[0]["loss"] > plain.history[0]["loss"] + 1.0
    a = torch.load(plain.checkpoint, weights_only=True)["model"]
    b = torch.load(kd.checkpoint, weights_only=True)["model"]
    assert any(not torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("channels_last", [True, False])
def test_memory_format_does_not_change_what_is_learned_much(tmp_path, val_dir, channels_last):
    cfg = _config(tmp_path, val_dir, REPARAM_SPEC, channels_last=channels_last, iterations=4,
                  eval_every=4)
    result = train(cfg)
    reference = train(_config(tmp_path / "auto", val_dir, REPARAM_SPEC, iterations=4,
                              eval_every=4))
    assert use_channels_last(build_model(cfg.spec), "cpu") is True  # auto = NHWC (measured)
    assert result.metrics["val"]["psnr_y"] == pytest.approx(reference.metrics["val"]["psnr_y"],
                                                            abs=0.05)


# ---------------------------------------------------------------------------- nas train
def _write_config(tmp_path, val_dir, **changes) -> str:
    data = {"arch": REPARAM_SPEC, "data": {"train": "Set5", "val": [str(val_dir)],
                                           "lr_patch": 8, "batch_size": 2},
            "iterations": 4, "eval_every": 4, "checkpoint_every": 2, "threads": 1,
            "out_dir": str(tmp_path / "out")}
    data.update(changes)
    path = tmp_path / "train.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def test_cli_trains_then_refuses_to_overwrite(tmp_path, val_dir, capsys):
    cfg = _write_config(tmp_path, val_dir)
    assert main(["train", cfg, "--quiet"]) == 0
    out = tmp_path / "out"
    assert {p.name for p in out.iterdir()} == {"config.yaml", "checkpoint.pth",
                                               "model_deploy.pth", "metrics.json"}
    assert "val: PSNR-Y" in capsys.readouterr().out
    before = (out / "checkpoint.pth").read_bytes()
    assert main(["train", cfg, "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "already holds checkpoint.pth" in err[0] and "--resume" in err[0]
    assert main(["train", cfg, "--quiet", "--resume", "--iters", "6"]) == 0
    assert torch.load(out / "checkpoint.pth", weights_only=True)["iteration"] == 6
    assert before != (out / "checkpoint.pth").read_bytes()


def test_cli_resume_with_another_architecture_leaves_checkpoint_alone(tmp_path, val_dir,
                                                                       tiny_spec, capsys):
    assert main(["train", _write_config(tmp_path, val_dir), "--quiet"]) == 0
    before = (tmp_path / "out" / "checkpoint.pth").read_bytes()
    other = _write_config(tmp_path, val_dir, arch=tiny_spec.to_dict())
    assert main(["train", other, "--quiet", "--resume"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "checkpoint is of another architecture" in err[0]
    assert (tmp_path / "out" / "checkpoint.pth").read_bytes() == before


@pytest.mark.parametrize("case, message", [
    ("missing_data", "data.train: /no/such/folder: dataset folder not found"),
    ("empty_data", "no images found"),
    ("unknown_key", "optim.learning_rate: unknown key"),
    ("wrong_type", "data.batch_size: expected an integer >= 1 and <= 1024, got 'eight'"),
    ("small_image", "tiny.png: image is 12x12, smaller than one training patch"),
    ("corrupt_image", "broken.png: cannot read image"),
    ("truncated_image", "cut.png: cannot read image"),  # fails only when decoded, in a worker
])
def test_cli_bad_input_one_line_exit_2_nothing_written(case, message, tmp_path, val_dir, capsys):
    changes = {}
    if case == "missing_data":
        changes["data"] = {"train": "/no/such/folder"}
    elif case in ("empty_data", "small_image", "corrupt_image", "truncated_image"):
        folder = tmp_path / "train_imgs"
        folder.mkdir()
        if case == "small_image":
            Image.fromarray(np.zeros((12, 12, 3), np.uint8)).save(folder / "tiny.png")
        elif case == "corrupt_image":
            Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(folder / "ok.png")
            (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot an image")
        elif case == "truncated_image":
            noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3)).astype(np.uint8)
            Image.fromarray(noise).save(folder / "cut.png")
            (folder / "cut.png").write_bytes((folder / "cut.png").read_bytes()[:2000])
        changes["data"] = {"train": str(folder), "lr_patch": 8,
                           "workers": 1 if case == "truncated_image" else 0}
    elif case == "unknown_key":
        changes["optim"] = {"learning_rate": 1e-3}
    elif case == "wrong_type":
        changes["data"] = {"batch_size": "eight"}
    assert main(["train", _write_config(tmp_path, val_dir, **changes), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    if case != "truncated_image":  # found before anything is written
        assert not (tmp_path / "out").exists()
    else:
        assert not (tmp_path / "out" / "checkpoint.pth").exists()


# ---------------------------------------------------------------------------- proxy (slow)
def _bicubic_psnr(dataset: str, scale: int) -> float:
    from trainers import metrics
    from trainers.data import validation_pairs
    from trainers.degrade import imresize

    return float(np.mean([metrics.psnr_y(imresize(lr, scale, output_hw=hr.shape[:2]), hr, scale)
                          for _, lr, hr in validation_pairs(dataset, scale)]))


def _proxy(tmp_path, arch: str, **changes) -> TrainResult:
    from trainers.presets import PRESETS

    # threads 1: the figures recorded in trainers/presets.py were measured so (bit-reproducible)
    data = {**PRESETS["cpu"], "arch": arch, "out_dir": str(tmp_path / arch), "seed": 0,
            "threads": 1, **changes}
    return train(TrainConfig.from_dict(data))


@pytest.mark.slow
def test_cpu_preset_fmen_s_beats_bicubic_by_half_a_db(tmp_path):
    bicubic = _bicubic_psnr("Set5", 4)
    assert bicubic == pytest.approx(28.42, abs=0.01)  # MATLAB bicubic x4 on Set5 (pilot)
    result = _proxy(tmp_path, "fmen_s")
    assert result.metrics["Set5"]["psnr_y"] >= bicubic + 0.5
    assert result.metrics["Set5"]["psnr_y"] == pytest.approx(29.136, abs=0.002)  # presets.py


@pytest.mark.slow
def test_distillation_from_rlfn_changes_the_proxy(tmp_path):
    plain = _proxy(tmp_path / "plain", "srn_s_ntire23")
    kd = _proxy(tmp_path / "kd", "srn_s_ntire23", distill={"teacher": "rlfn", "weight": 1.0})
    delta = kd.metrics["Set5"]["psnr_y"] - plain.metrics["Set5"]["psnr_y"]
    assert abs(delta) >= 0.02, delta  # recorded in presets.py: 28.934 -> 29.040
