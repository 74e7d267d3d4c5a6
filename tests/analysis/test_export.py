"""``nas export``: picks, the files written, their round trips, and ONNX parity."""

from __future__ import annotations

import json
import math
import os

import pytest
import torch
import yaml

from analysis.export import export_onnx, select_trial
from analysis.run import load_run
from nas.cli import main
from search_space.checkpoint import load_weights
from search_space.factory import build_model
from search_space.reparam import reparameterize_model
from search_space.spec import ArchSpec
from tests.analysis.conftest import build_run
from tests.conftest import randomize_

OBJECTIVES = {"psnr": "maximize", "runtime_ms": "minimize", "peak_memory_mb": "minimize"}
# keys of the TrainConfig YAML contract
TRAIN_KEYS = {"arch", "scale", "data", "optim", "schedule", "iterations", "eval_every",
              "checkpoint_every", "loss", "distill", "seed", "device", "amp", "channels_last",
              "threads", "init", "out_dir", "picked"}


def export(capsys, run_dir, *args) -> dict:
    """One export; tests share a run, so an earlier export of the same trial is replaced."""
    code = main(["export", str(run_dir), "--json", "--force", *args])
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


def test_picks(run_dir):
    df = load_run(run_dir).trials
    done = df[df["status"] == "completed"]
    for pick, column, best in (("max-psnr", "psnr", "idxmax"), ("fastest", "runtime_ms", "idxmin"),
                               ("smallest-memory", "peak_memory_mb", "idxmin")):
        label, why = select_trial(df, pick, OBJECTIVES)
        assert label == getattr(done[column], best)() and pick in why
    fast = done[done["runtime_ms"] <= 20]
    label, why = select_trial(df, "max-psnr", OBJECTIVES, where="runtime_ms<=20")
    assert label == fast["psnr"].idxmax() and "among trials with runtime_ms<=20" in why
    label, _ = select_trial(df, "knee", OBJECTIVES, where="runtime_ms<=20")
    assert label in fast.index
    assert select_trial(df, "00005", OBJECTIVES)[0] == 5
    arch = df.loc[7, "arch_id"]
    assert df.loc[select_trial(df, arch, OBJECTIVES)[0], "arch_id"] == arch
    assert df.loc[select_trial(df, "rlfn", OBJECTIVES)[0], "anchor"] == "rlfn"


def test_export_writes_round_tripping_files(run_dir, capsys):
    result = export(capsys, run_dir, "--pick", "knee")
    run = load_run(run_dir)
    row = run.trials[run.trials["trial_id"] == result["trial_id"]].iloc[0]
    out = run_dir / "exports" / row["arch_id"]
    assert result["directory"] == str(out) and result["arch_id"] == row["arch_id"]
    spec = ArchSpec.from_file(run_dir / "trials" / row["trial_id"] / "spec.yaml")
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "arch.py", "arch.yaml",
                                                     "basicsr.yml", "model.onnx",
                                                     "model_deploy.pth", "train.yaml"]
    # arch.yaml is the spec alone and round-trips
    assert ArchSpec.from_file(out / "arch.yaml") == spec
    assert "picked" not in (out / "arch.yaml").read_text()

    config = yaml.safe_load((out / "train.yaml").read_text())
    assert set(config) == TRAIN_KEYS
    assert ArchSpec.from_dict(config["arch"]) == spec
    # the run trained on a bundled set: train.yaml names the prepared DIV2K and says how to make it
    assert config["data"]["train"] == "datasets/DIV2K_sub" and config["data"]["val"] == ["Set5"]
    header = (out / "train.yaml").read_text().split("\narch:")[0]
    assert "not there yet: make it with nas data prepare DIV2K_train_HR --out " \
        "datasets/DIV2K_sub" in header
    assert config["data"]["workers"] == min(4, os.cpu_count())
    assert config["optim"] == {"lr": 5e-4, "betas": [0.9, 0.999], "eps": 1e-8,
                               "weight_decay": 0.0}
    assert config["schedule"]["type"] == "step" and config["schedule"]["step_iters"] == 600000
    assert config["schedule"]["gamma"] == 0.5 and config["iterations"] == 3_000_000
    picked = config["picked"]
    assert picked["trial_id"] == row["trial_id"]
    assert picked["objectives"] == {"psnr": "max", "runtime_ms": "min", "peak_memory_mb": "min"}
    assert picked["metrics"]["psnr"] == pytest.approx(row["psnr"], abs=1e-6)
    assert picked["metrics"]["runtime_ms"] == pytest.approx(row["runtime_ms"], abs=1e-6)
    assert picked["metrics"]["params"] == int(row["params"])

    options = yaml.safe_load((out / "basicsr.yml").read_text())
    assert options["model_type"] == "SRModel" and options["scale"] == spec.scale
    assert {"name", "num_gpu", "datasets", "network_g", "path", "train", "val", "logger"} <= \
        set(options)
    assert options["network_g"]["type"] == "ESRNASNet" and options["network_g"]["deploy"] is True
    assert options["num_gpu"] == "auto"
    assert options["datasets"]["train"]["dataroot_gt"] == "datasets/DIV2K_sub/HR_sub"
    assert options["datasets"]["train"]["dataroot_lq"] == \
        f"datasets/DIV2K_sub/LR_bicubic/X{spec.scale}_sub"
    network = {k: v for k, v in options["network_g"].items() if k not in ("type", "deploy")}
    assert ArchSpec.from_dict(network) == spec
    train = options["train"]
    assert train["scheduler"] == {"type": "MultiStepLR", "gamma": 0.5,
                                  "milestones": [600000, 1200000, 1800000, 2400000]}
    assert train["total_iter"] == 3_000_000 and train["pixel_opt"]["type"] == "L1Loss"
    assert train["optim_g"]["lr"] == 5e-4
    assert options["datasets"]["train"]["gt_size"] == 64 * spec.scale

    # the proxy weights, in deploy form, unchanged
    exported, original = build_model(spec, deploy=True), build_model(spec, deploy=True)
    load_weights(exported, out / "model_deploy.pth", deploy=True)
    load_weights(original, run_dir / "trials" / row["trial_id"] / "model_deploy.pth", deploy=True)
    x = torch.rand(1, 3, 20, 24)
    with torch.no_grad():
        assert torch.equal(exported(x), original(x))
    assert result["onnx_max_abs_diff"] <= 1e-4
    # BasicSR's key; the model card's facts in the ONNX metadata and in README.md
    assert set(torch.load(out / "model_deploy.pth", weights_only=True)["params"]) == \
        set(exported.state_dict())
    import onnx

    meta = {p.key: p.value for p in onnx.load(str(out / "model.onnx")).metadata_props}
    assert meta["arch_id"] == spec.arch_id() and meta["scale"] == str(spec.scale)
    assert meta["input_range"] == f"{spec.input_range:g}" and meta["trial_id"] == row["trial_id"]
    assert "proxy-trained" in meta["weights"] and "preset cpu" in meta["proxy"]
    card = (out / "README.md").read_text()
    assert spec.arch_id() in card and f"x{spec.scale}" in card and "preset cpu" in card
    assert f"[0, {spec.input_range:g}]" in card


def test_export_carries_the_trials_distillation(run_dir, capsys):
    df = load_run(run_dir).trials
    for _, row in df[(df["status"] == "completed") & ~df["is_anchor"]].iterrows():
        result = export(capsys, run_dir, "--pick", row["trial_id"], "--no-onnx")
        config = yaml.safe_load(open(f"{result['directory']}/train.yaml"))
        assert config["distill"] == json.loads(row["hparams"])["distill"]


def test_export_srn_recipe_and_missing_weights(tmp_path, capsys):
    run_dir = build_run(tmp_path, n_searched=3, weights=False)
    search = yaml.safe_load((run_dir / "search.yaml").read_text())
    (run_dir / "search.yaml").write_text(yaml.safe_dump({**search, "seed": 7}))
    result = export(capsys, run_dir, "--pick", "max-psnr", "--recipe", "srn", "--iterations",
                    "1000", "--train-data", "Set14")
    _, err = capsys.readouterr()
    out = run_dir / "exports" / result["arch_id"]
    config = yaml.safe_load((out / "train.yaml").read_text())
    assert config["schedule"]["type"] == "cosine" and config["schedule"]["eta_min"] == 1e-7
    assert config["iterations"] == 1000 and config["optim"]["lr"] == 2e-4
    assert config["data"]["train"] == "Set14" and config["data"]["batch_size"] == 32
    assert config["seed"] == 7  # the search's, which the trials trained with
    basicsr = yaml.safe_load((out / "basicsr.yml").read_text())
    assert basicsr["manual_seed"] == 7
    assert basicsr["train"]["scheduler"] == {
        "type": "CosineAnnealingRestartLR", "periods": [1000], "restart_weights": [1],
        "eta_min": 1e-7}
    assert not (out / "model_deploy.pth").exists() and not (out / "model.onnx").exists()


def test_export_config_is_a_valid_train_config(run_dir, capsys):
    config_module = pytest.importorskip("trainers.config")
    result = export(capsys, run_dir, "--pick", "fastest", "--no-onnx", "--train-data", "SunHays80")
    config = config_module.TrainConfig.from_file(f"{result['directory']}/train.yaml")
    assert config.iterations == 3_000_000


ONNX_SPECS = {
    "rlfb_esa": {"scale": 2, "channels": 16, "body": [{"block": "rlfb"}]},
    "imdb_cca_aggregate": {"scale": 3, "channels": 16, "fusion": "aggregate",
                           "body": [{"block": "imdb", "repeat": 2}]},
    "ffg_multi_tail_skip": {"scale": 4, "channels": 16, "upsampler": "pixelshuffle_multi",
                            "input_skip": True, "weight_norm": True,
                            "body": [{"block": "ffg", "args": {"num_mabs": 2}}]},
}


@pytest.mark.parametrize("name", list(ONNX_SPECS))
def test_onnx_matches_pytorch_on_another_input_size(name, tmp_path):
    pytest.importorskip("onnxruntime")
    spec = ArchSpec.from_dict(ONNX_SPECS[name])
    model = reparameterize_model(randomize_(build_model(spec)))
    diff = export_onnx(model, tmp_path / "m.onnx")
    assert diff <= 1e-4
    import onnx

    graph = onnx.load(str(tmp_path / "m.onnx")).graph
    dims = [d.dim_param or d.dim_value for d in graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", 3, "height", "width"]


def test_onnx_parity_is_relative_to_the_input_range(tmp_path):
    pytest.importorskip("onnxruntime")
    spec = ArchSpec.from_dict({"scale": 4, "channels": 16, "input_range": 255.0,
                               "body": [{"block": "erb"},
                                        {"block": "hfab", "args": {"mid_channels": 8}}]})
    model = reparameterize_model(randomize_(build_model(spec)))
    assert export_onnx(model, tmp_path / "m.onnx") <= 1e-4


def test_export_train_eval_round_trip(run_dir, tmp_path, capsys, monkeypatch):
    pytest.importorskip("nas.commands.train")
    df = load_run(run_dir).trials
    # a trial without distillation: the fixture's teacher (rlfn) has official weights at x4 only
    plain = df[(df["status"] == "completed") & ~df["is_anchor"]
               & df["hparams"].map(lambda h: json.loads(h).get("distill") is None)]
    result = export(capsys, run_dir, "--pick", plain["trial_id"].iloc[0], "--no-onnx",
                    "--train-data", "SunHays80")
    monkeypatch.chdir(tmp_path)  # train.yaml's out_dir is relative: runs/train/<run>_<arch>
    assert main(["train", f"{result['directory']}/train.yaml", "--iters", "5"]) == 0
    capsys.readouterr()
    config = yaml.safe_load(open(f"{result['directory']}/train.yaml"))
    trained = tmp_path / config["out_dir"] / "model_deploy.pth"
    assert trained.is_file()
    assert main(["eval", str(trained), "--data", "Set5", "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)["Set5"]
    assert metrics["images"] == 5 and math.isfinite(metrics["psnr_y"])
    assert torch.load(trained, weights_only=True)["spec"] == config["arch"]


def test_export_is_all_or_nothing_and_never_overwrites_without_force(tmp_path, capsys):
    run_dir = build_run(tmp_path)
    first = export(capsys, run_dir, "--pick", "00003", "--no-onnx")
    folder = first["directory"]
    edited = os.path.join(folder, "train.yaml")
    with open(edited, "a") as f:
        f.write("# my edit\n")
    assert main(["export", str(run_dir), "--pick", "00003", "--no-onnx"]) == 2
    assert "already exported" in capsys.readouterr().err
    assert open(edited).read().endswith("# my edit\n")  # kept

    # a truncated checkpoint fails the export after the YAML files: nothing of it is left
    weights = run_dir / "trials" / "00004" / "model_deploy.pth"
    weights.write_bytes(weights.read_bytes()[:100])
    before = sorted(os.listdir(run_dir / "exports"))
    assert main(["export", str(run_dir), "--pick", "00004", "--no-onnx"]) == 2
    assert "not a readable PyTorch checkpoint" in capsys.readouterr().err
    assert sorted(os.listdir(run_dir / "exports")) == before  # no half export, no temp folder

    replaced = export(capsys, run_dir, "--pick", "00003", "--no-onnx")  # --force replaces
    assert replaced["directory"] == folder
    assert not open(edited).read().endswith("# my edit\n")
    assert sorted(os.listdir(run_dir / "exports")) == before


def test_empty_pick_is_refused(run_dir, capsys):
    assert main(["export", str(run_dir), "--pick", " "]) == 2
    assert "--pick: expected one of" in capsys.readouterr().err


@pytest.mark.parametrize("spec", [
    {"scale": 2, "channels": 16, "fusion": "aggregate", "body": [
        {"block": "rb"}, {"block": "spab", "repeat": 2, "channels": 12}]},
    "srcnn", "fsrcnn", "vdsr", "memnet", "idn", "latticenet",
], ids=["stage_of_its_own_width", "srcnn_pre_upsampling", "fsrcnn_luma", "vdsr_input_skip",
        "memnet_channel_affine", "idn_deconv17", "latticenet_coefficients"])
def test_the_standalone_source_reproduces_new_spec_forms(spec):
    """A projected stage, the luma networks (SRCNN and VDSR pre-upsampling, FSRCNN) and the
    table networks' blocks export as self-contained PyTorch source that reproduces the deploy
    model."""
    from analysis.arch_source import check_source, deploy_source
    from search_space.anchors import get_anchor

    arch = get_anchor(spec).spec.with_scale(3) if isinstance(spec, str) else \
        ArchSpec.from_dict(spec)
    model = reparameterize_model(randomize_(build_model(arch)))
    source = deploy_source(model, arch_id=arch.arch_id())
    assert check_source(source, model) <= 1e-5
