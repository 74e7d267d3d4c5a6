"""Validation protocol: official weights reproduce the reference figures; ``nas eval`` CLI."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from nas.cli import main
from search_space.anchors import get_anchor, list_anchors, load
from trainers import metrics
from trainers.data import BUNDLED, validation_pairs
from trainers.evaluate import evaluate

WEIGHTED = [n for n in list_anchors() if get_anchor(n).has_official_weights]
# One anchor checks the pipeline in the default suite (the anchors' own parity tests check the
# weights); every anchor and Set14 run with -m slow.
DEFAULT = "fmen_s" if "fmen_s" in WEIGHTED else (WEIGHTED or [None])[0]
# Reference (official code, MATLAB-made LR) tolerance, as in ../shared/checks.
PSNR_TOL, SSIM_TOL = 0.01, 0.0006


class Nearest(nn.Module):
    def __init__(self, scale: int, input_range: float) -> None:
        super().__init__()
        self.scale, self.input_range = scale, input_range

    def forward(self, x):
        return F.interpolate(x, scale_factor=self.scale, mode="nearest")


def _reference(name: str, dataset: str) -> dict:
    return get_anchor(name).reference["metrics_x4"][dataset]


@pytest.mark.skipif(not WEIGHTED, reason="no anchor ships official weights yet")
@pytest.mark.parametrize("name, dataset", [
    pytest.param(n, ds, marks=[] if (n, ds) == (DEFAULT, "Set5") else [pytest.mark.slow])
    for n in WEIGHTED for ds in ("Set5", "Set14")])
def test_official_weights_reproduce_reference_figures(name, dataset):
    got = evaluate(load(name, weights="official"), [dataset], scale=4)[dataset]
    want = _reference(name, dataset)
    assert got["images"] == {"Set5": 5, "Set14": 14}[dataset]
    assert abs(got["psnr_y"] - want["psnr_y"]) <= PSNR_TOL
    assert abs(got["ssim_y"] - want["ssim_y"]) <= SSIM_TOL


@pytest.mark.parametrize("input_range", [1.0, 255.0])
def test_evaluate_equals_metrics_on_manual_upsampling(input_range):
    scale = 3
    result = evaluate(Nearest(scale, input_range), ["Set5"], scale=scale)["Set5"]
    psnr, ssim_rgb = [], []
    for name, lr, hr in validation_pairs("Set5", scale):
        sr = np.repeat(np.repeat(lr, scale, axis=0), scale, axis=1)
        psnr.append(metrics.psnr_y(sr, hr, scale))
        ssim_rgb.append(metrics.ssim_rgb(sr, hr, scale))
        assert result["per_image"][name] == pytest.approx(psnr[-1], abs=1e-9)
    assert result["psnr_y"] == pytest.approx(np.mean(psnr), abs=1e-9)
    assert result["ssim_rgb"] == pytest.approx(np.mean(ssim_rgb), abs=1e-9)
    assert 20 < result["psnr_y"] < 35


def test_restores_training_mode_and_checks_scale():
    model = Nearest(2, 1.0).train()
    evaluate(model, ["Set5"], scale=2, ssim=False)
    assert model.training
    with pytest.raises(ValueError, match="is the model's scale 3"):
        evaluate(model, ["Set5"], scale=3, ssim=False)


def test_output_is_clamped_and_rounded():
    class Overshoot(Nearest):
        def forward(self, x):
            return super().forward(x) * 1.5 - 0.25 * self.input_range

    a = evaluate(Overshoot(2, 1.0), ["Set5"], scale=2, ssim=False)["Set5"]
    b = evaluate(Overshoot(2, 255.0), ["Set5"], scale=2, ssim=False)["Set5"]
    assert a["psnr_y"] == pytest.approx(b["psnr_y"], abs=1e-3)


# ---------------------------------------------------------------------------- nas eval
@pytest.fixture
def two_images(tmp_path):
    """A DIV2K-style folder ``mine/HR`` with two small Set5 images."""
    folder = tmp_path / "mine" / "HR"
    folder.mkdir(parents=True)
    for img in ("bird.png", "head.png"):
        shutil.copy(BUNDLED["Set5"] / img, folder)
    return folder.parent


@pytest.mark.skipif(not WEIGHTED, reason="no anchor ships official weights yet")
def test_cli_json_on_bundled_and_folder(two_images, capsys):
    name = "rlfn" if "rlfn" in WEIGHTED else WEIGHTED[0]  # the cheapest to run
    rc = main(["eval", name, "--weights", "official", "--data", f"{two_images},Set5",
               "--scale", "4", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and list(out) == ["mine", "Set5"]
    assert set(out["Set5"]) >= {"psnr_y", "ssim_y", "psnr_rgb", "ssim_rgb", "images"}
    assert abs(out["Set5"]["psnr_y"] - _reference(name, "Set5")["psnr_y"]) <= PSNR_TOL
    assert out["mine"]["images"] == 2
    for img in ("bird", "head"):
        assert out["mine"]["per_image"][img] == pytest.approx(out["Set5"]["per_image"][img])


def test_cli_checkpoint_roundtrip(tmp_path, two_images, capsys, tiny_spec):
    from search_space.checkpoint import CHECKPOINT_FORMAT
    from search_space.factory import build_model

    model = build_model(tiny_spec)
    deploy = build_model(tiny_spec, deploy=True)
    path = tmp_path / "model_deploy.pth"
    torch.save({"format": CHECKPOINT_FORMAT, "version": 1, "spec": tiny_spec.to_dict(),
                "model_deploy": deploy.state_dict(), "model": model.state_dict()}, path)
    assert main(["eval", str(path), "--data", str(two_images), "--json"]) == 0
    from_cli = json.loads(capsys.readouterr().out)["mine"]
    direct = evaluate(deploy, [two_images], scale=2)["mine"]
    assert from_cli["psnr_y"] == pytest.approx(direct["psnr_y"])
    assert from_cli["ssim_y"] == pytest.approx(direct["ssim_y"])


@pytest.mark.parametrize("argv, message", [
    (["eval", "rlfn", "--data", "Set5"], "--weights: required"),
    (["eval", "rlfn", "--weights", "official", "--data", "/no/such/dir"],
     "/no/such/dir: dataset folder not found"),
    (["eval", "no_such_anchor", "--weights", "official"],
     "'no_such_anchor' is neither an anchor nor a spec file"),
    (["eval", "missing.pth"], "missing.pth: checkpoint file not found"),
])
def test_cli_bad_input_is_one_line_exit_2(argv, message, capsys):
    if argv[1] == "rlfn" and "rlfn" not in list_anchors():
        pytest.skip("rlfn anchor not present")
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_cli_checkpoint_of_another_architecture(tmp_path, capsys, tiny_spec):
    from search_space.checkpoint import CHECKPOINT_FORMAT
    from search_space.factory import build_model

    other = tiny_spec.with_scale(3)
    path = tmp_path / "other.pth"
    torch.save({"format": CHECKPOINT_FORMAT, "version": 1, "spec": other.to_dict(),
                "model_deploy": build_model(other, deploy=True).state_dict()}, path)
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text(tiny_spec.to_yaml())
    assert main(["eval", str(spec_file), "--weights", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "checkpoint is of architecture" in err[0]
