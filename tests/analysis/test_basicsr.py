"""The export as a user outside esrnas meets it: arch.py with torch alone, BasicSR 1.4.2."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from nas.cli import main
from search_space.checkpoint import load_weights
from search_space.factory import build_model
from search_space.spec import ArchSpec

ROOT = Path(__file__).resolve().parents[2]
ESRNAS_PACKAGES = ("search_space", "trainers", "analysis", "nas")


def _export(capsys, run_dir, *args) -> Path:
    assert main(["export", str(run_dir), "--json", "--force", *args]) == 0
    return Path(json.loads(capsys.readouterr().out)["directory"])


def _bare_python() -> str:
    """The torch-only venv of .ci/setup; else this interpreter, isolated (-I) below."""
    bare = ROOT / ".venv-torch" / "bin" / "python"
    return str(bare) if bare.is_file() else sys.executable


def test_arch_py_runs_with_torch_alone_and_matches_the_deploy_model(run_dir, tmp_path, capsys):
    out = _export(capsys, run_dir, "--pick", "knee", "--no-onnx")
    spec = ArchSpec.from_file(out / "arch.yaml")
    model = build_model(spec, deploy=True).eval()
    load_weights(model, out / "model_deploy.pth", deploy=True)
    x = torch.rand(1, 3, 19, 26, generator=torch.Generator().manual_seed(3)) * spec.input_range
    torch.save(x, tmp_path / "x.pt")
    # -I: no PYTHONPATH, no user site, no cwd; esrnas's packages made unimportable on top
    script = (
        "import sys\n"
        f"for name in {ESRNAS_PACKAGES!r}:\n    sys.modules[name] = None\n"
        f"sys.path.insert(0, {str(out)!r})\n"
        "import torch\nfrom arch import ESRNASDeployNet\n"
        "net = ESRNASDeployNet().eval()\n"
        f"net.load_state_dict(torch.load({str(out / 'model_deploy.pth')!r}, "
        "weights_only=True)['params'], strict=True)\n"
        f"x = torch.load({str(tmp_path / 'x.pt')!r})\n"
        f"with torch.no_grad():\n    torch.save(net(x), {str(tmp_path / 'y.pt')!r})\n")
    run = subprocess.run([_bare_python(), "-I", "-c", script], capture_output=True, text=True,
                         cwd=tmp_path, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert run.returncode == 0, run.stderr
    with torch.no_grad():
        expected = model(x)
    got = torch.load(tmp_path / "y.pt")
    assert float((got - expected).abs().max()) / spec.input_range <= 1e-6


def test_basicsr_checkpoints_load_ema_first_without_module_prefix(tmp_path, tiny_spec):
    from trainers.evaluate import load_deploy_model

    plain, ema = build_model(tiny_spec, deploy=True), build_model(tiny_spec, deploy=True)
    with torch.no_grad():
        for p in ema.parameters():
            p.add_(1.0)
    path = tmp_path / "net_g_10.pth"
    torch.save({"params": plain.state_dict(),
                "params_ema": {f"module.{k}": v for k, v in ema.state_dict().items()}}, path)
    loaded = load_deploy_model(tiny_spec, path)
    x = torch.rand(1, 3, 8, 8)
    with torch.no_grad():
        assert torch.equal(loaded(x), ema.eval()(x))
    torch.save({"params": plain.state_dict()}, path)
    with torch.no_grad():
        assert torch.equal(load_deploy_model(tiny_spec, path)(x), plain.eval()(x))


# ---------------------------------------------------------------------------- BasicSR
# BasicSR runs in the interpreter that has it: .venv-basicsr (made by .ci/setup: BasicSR needs a
# torchvision that does not run beside this venv's torch), else $ESRNAS_BASICSR_PYTHON, else this
# one. esrnas comes from PYTHONPATH there.
def _basicsr_python() -> str:
    side = ROOT / ".venv-basicsr" / "bin" / "python"
    return os.environ.get("ESRNAS_BASICSR_PYTHON") or (str(side) if side.is_file()
                                                        else sys.executable)


def _in_basicsr(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([_basicsr_python(), *args], capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"},
                          timeout=600)


@functools.lru_cache(maxsize=1)
def _basicsr_missing() -> str | None:
    probe = _in_basicsr(["-c", "import analysis.basicsr_plugin as p, basicsr\n"
                               "assert p.register(), 'ESRNASNet not registered'"], ROOT)
    if probe.returncode == 0:
        return None
    last = (probe.stderr.strip().splitlines() or ["no message"])[-1]
    return (f"basicsr 1.4.2 is not importable by {_basicsr_python()} ({last}); .ci/setup "
            "installs it in .venv-basicsr where torch 2.14.1 + torchvision 0.29.1 can be")


@pytest.fixture
def basicsr():
    reason = _basicsr_missing()
    if reason:
        pytest.skip(reason)
    return _basicsr_python()


# BasicSR's own loader, as SRModel calls it for path.pretrain_network_g (strict, key params)
_LOAD_AND_RUN = """
import sys, torch, yaml
import analysis.basicsr_plugin
from basicsr.archs import build_network
from basicsr.models.base_model import BaseModel
opt, weights, x_path, y_path = sys.argv[1:]
net = build_network(yaml.safe_load(open(opt))["network_g"])
BaseModel({"num_gpu": 0, "is_train": False, "dist": False}).load_network(
    net, weights, strict=True, param_key="params")
with torch.no_grad():
    torch.save(net.eval()(torch.load(x_path)), y_path)
"""


def test_basicsr_loads_model_deploy_strictly_and_matches_onnx(basicsr, run_dir, tmp_path,
                                                               capsys):
    ort = pytest.importorskip("onnxruntime")
    out = _export(capsys, run_dir, "--pick", "knee")
    spec = ArchSpec.from_file(out / "arch.yaml")
    x = torch.rand(1, 3, 21, 30, generator=torch.Generator().manual_seed(0))  # BasicSR: [0, 1]
    torch.save(x, tmp_path / "x.pt")
    run = _in_basicsr(["-c", _LOAD_AND_RUN, str(out / "basicsr.yml"),
                       str(out / "model_deploy.pth"), str(tmp_path / "x.pt"),
                       str(tmp_path / "y.pt")], tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    got = torch.load(tmp_path / "y.pt").numpy()
    session = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    onnx_out = session.run(None, {"lr": (x * spec.input_range).numpy()})[0] / spec.input_range
    assert got.shape == onnx_out.shape and np.abs(got - onnx_out).max() <= 1e-4


def test_basicsr_trains_10_iterations_on_a_prepared_set_and_nas_eval_reads_it(
        basicsr, run_dir, tmp_path, capsys):
    from trainers.prepare import Settings, prepare

    spec = ArchSpec.from_file(next((run_dir / "trials").glob("*/spec.yaml")))
    src = tmp_path / "HR"
    src.mkdir()
    rng = np.random.default_rng(0)
    for i in range(10):
        Image.fromarray(rng.integers(0, 256, (72, 96, 3), dtype=np.uint8)).save(
            src / f"{i:04d}.png")
    data = tmp_path / "datasets" / "tiny_sub"
    prepare(src, data, Settings(scales=(spec.scale,), crop=48, step=48), workers=0,
            progress=False)
    out = _export(capsys, run_dir, "--pick", "knee", "--no-onnx", "--train-data", str(data))
    options = yaml.safe_load((out / "basicsr.yml").read_text())
    # only what a 10-iteration CPU smoke run needs changed: length, batch, patch, no validation
    options["train"]["total_iter"] = 10
    options["train"]["scheduler"] = {"type": "MultiStepLR", "milestones": [10], "gamma": 1.0}
    options["datasets"]["train"].update(batch_size_per_gpu=2, gt_size=16 * spec.scale,
                                        num_worker_per_gpu=0)
    del options["datasets"]["val"], options["val"]
    options["logger"].update(print_freq=5, save_checkpoint_freq=10)
    opt = tmp_path / "basicsr.yml"
    opt.write_text(yaml.safe_dump(options))
    run = _in_basicsr(["-m", "analysis.basicsr_plugin", "-opt", str(opt)], tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    checkpoint = tmp_path / "experiments" / options["name"] / "models" / "net_g_10.pth"
    assert set(torch.load(checkpoint, weights_only=True)) >= {"params"}
    assert main(["eval", str(out / "arch.yaml"), "--weights", str(checkpoint), "--data",
                 "Set5", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["Set5"]["images"] == 5
