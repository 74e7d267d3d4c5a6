"""The profiler: counts against the official code's figures, runtime protocol, the inter-process
timing lock, the CUDA path (GPU only) and ``nas profile``."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
from torch import nn

from nas.cli import main
from search_space.anchors import get_anchor, list_anchors
from search_space.errors import InputError
from search_space.factory import build_model
from trainers.memory import MIB, state_bytes
from trainers.profiling import (
    Profile,
    count_activations,
    count_macs,
    count_params,
    measure_runtime,
    profile_model,
)

REPO = Path(__file__).resolve().parents[2]
COUNTED_ANCHORS = [a for a in list_anchors() if "torch_macs_g_256" in get_anchor(a).reference]
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


@pytest.fixture(autouse=True)
def _private_locks_one_thread(tmp_path, monkeypatch):
    # Private timing locks: the default per-user lock is shared with every profile running on
    # this machine, and a test must not wait for them. Counts do not depend on threads, and one
    # thread is far faster on a shared machine.
    monkeypatch.setenv("ESRNAS_LOCK_DIR", str(tmp_path / "default-locks"))
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


class _Sleepy(nn.Module):
    """Sleeps ``ms`` per forward and counts its calls."""

    def __init__(self, ms: float) -> None:
        super().__init__()
        self.ms = ms
        self.calls = 0
        self.conv = nn.Conv2d(3, 3, 1)

    def forward(self, x):
        self.calls += 1
        time.sleep(self.ms / 1e3)
        return self.conv(x)


@pytest.mark.parametrize("name", COUNTED_ANCHORS)
def test_anchor_counts_match_the_official_code(name):
    ref = get_anchor(name).reference
    profile = profile_model(build_model(name), runtime=False, memory=False)
    assert profile.params == ref["params"]["x4"]
    assert profile.macs_g == pytest.approx(ref["torch_macs_g_256"], rel=1e-3)
    assert profile.activations_m == pytest.approx(ref["activations_m_256"], abs=1e-4)
    assert profile.num_conv == ref["num_conv"]
    assert profile.runtime_ms is None and profile.peak_memory_mb is None
    assert profile.peak_memory_est_mb > state_bytes(build_model(name, deploy=True)) / MIB


def test_counts_of_a_known_chain():
    # conv 3->8 and 8->4, 3x3, on 10x12: MACs = out elements * in_channels * 9 (bias not counted)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 4, 3, padding=1))
    pixels = 10 * 12
    assert count_params(model) == 3 * 8 * 9 + 8 + 8 * 4 * 9 + 4
    assert count_macs(model, (10, 12)) == pytest.approx((8 * 3 + 4 * 8) * 9 * pixels / 1e9)
    assert count_activations(model, (10, 12)) == ((8 + 4) * pixels / 1e6, 2)


def test_profile_is_the_deploy_form_and_leaves_the_model_untouched():
    model = build_model("fmen_s")  # training form: RRRBs and BNs
    train_params = count_params(model)
    profile = profile_model(model, input_hw=(24, 24), threads=1, warmup=1, repeats=3)
    assert profile.params == get_anchor("fmen_s").reference["params"]["x4"] < train_params
    assert count_params(model) == train_params and model.training
    assert profile.threads == 1 and profile.device == "cpu" and profile.input_hw == (24, 24)
    assert profile.runtime_ms > 0 and profile.runtime_iqr_ms >= 0
    assert profile.peak_memory_mb == pytest.approx(profile.peak_memory_est_mb, rel=0.05)
    out = profile.to_dict()
    assert list(out) == [f.name for f in Profile.__dataclass_fields__.values()]
    assert json.loads(json.dumps(out))["input_hw"] == [24, 24]


def test_runtime_times_repeats_after_warmups_and_restores_threads(tmp_path):
    model = _Sleepy(ms=15)
    torch.set_num_threads(2)
    median, iqr = measure_runtime(model, input_hw=(8, 8), threads=1, warmup=2, repeats=5,
                                  lock_dir=tmp_path)
    assert model.calls == 2 + 5
    assert median >= 15.0  # milliseconds, and the forward is inside the timed span
    assert iqr >= 0
    assert torch.get_num_threads() == 2
    assert (tmp_path / "timing-cpu.lock").exists()


@pytest.mark.parametrize("kwargs, match", [
    ({"repeats": 0}, r"repeats: expected an integer >= 1 and <= 10000, got 0"),
    ({"warmup": -1}, r"warmup: expected an integer >= 0"),
    ({"threads": 0}, r"threads: expected an integer >= 1"),
    ({"input_hw": (0, 8)}, r"input_hw: expected \[height, width\] integers from 1 to 8192, "
                           r".*got \(0, 8\)"),
    ({"input_hw": "big"}, r"input_hw: expected \[height, width\] .*got 'big'"),
    ({"device": "tpu"}, r"device: 'tpu' not allowed; allowed: auto, cpu, cuda"),
])
def test_bad_arguments_name_the_field(kwargs, match):
    with pytest.raises(InputError, match=match):
        profile_model(nn.Conv2d(3, 3, 1), **kwargs)


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_cuda_without_cuda_is_a_one_line_error():
    with pytest.raises(InputError, match=r"device: 'cuda' requested but CUDA is not available"):
        profile_model(nn.Conv2d(3, 3, 1), device="cuda")


_LOCK_CHILD = textwrap.dedent("""
    import json, sys, time
    from pathlib import Path
    import torch
    from torch import nn
    from trainers.profiling import measure_runtime

    work, tag = Path(sys.argv[1]), sys.argv[2]
    torch.set_num_threads(1)
    spans = []

    class Sleepy(nn.Module):
        def forward(self, x):
            start = time.time()
            time.sleep(0.02)
            spans.append((start, time.time()))
            return x

    def wait_for(name):
        deadline = time.time() + 120
        while not (work / name).exists():
            if time.time() > deadline:
                sys.exit("timed out waiting for " + name)
            time.sleep(0.002)

    result = {}
    for phase, lock_dir in (("shared", work / "locks"), ("separate", work / ("locks-" + tag))):
        (work / f"ready-{phase}-{tag}").touch()
        wait_for("go-" + phase)
        spans.clear()
        measure_runtime(Sleepy(), input_hw=(4, 4), threads=1, warmup=2, repeats=10,
                        lock_dir=lock_dir)
        result[phase] = [spans[0][0], spans[-1][1]]
    (work / f"result-{tag}.json").write_text(json.dumps(result))
""")


def _overlap(a: list[float], b: list[float]) -> float:
    return min(a[1], b[1]) - max(a[0], b[0])


def test_timing_lock_serialises_concurrent_processes(tmp_path):
    script = tmp_path / "child.py"
    script.write_text(_LOCK_CHILD)
    children = [subprocess.Popen([sys.executable, str(script), str(tmp_path), tag], cwd=REPO)
                for tag in ("a", "b")]
    try:
        for phase in ("shared", "separate"):
            deadline = time.time() + 180
            while not all((tmp_path / f"ready-{phase}-{t}").exists() for t in "ab"):
                assert time.time() < deadline, f"children never got ready for {phase}"
                assert all(c.poll() in (None, 0) for c in children), "a child failed"
                time.sleep(0.01)
            (tmp_path / f"go-{phase}").touch()  # both start timing at the same moment
        for child in children:
            assert child.wait(timeout=180) == 0
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
    spans = [json.loads((tmp_path / f"result-{t}.json").read_text()) for t in "ab"]
    # One lock file: the second process's timed section starts after the first one's ends.
    assert _overlap(spans[0]["shared"], spans[1]["shared"]) <= 0
    # Control (different lock files, same start signal): the sections do overlap, so the check
    # above could have failed.
    assert _overlap(spans[0]["separate"], spans[1]["separate"]) > 0


@pytest.mark.gpu
@needs_cuda
def test_cuda_profile_measures_runtime_and_allocated_memory():
    model = build_model("fmen_s")
    profile = profile_model(model, input_hw=(64, 64), device="cuda", repeats=20)
    assert profile.device.startswith("cuda") and profile.threads is None
    assert profile.runtime_ms > 0 and profile.runtime_iqr_ms >= 0
    # max_memory_allocated covers at least the weights, the input and the output
    deploy = build_model("fmen_s", deploy=True)
    floor = state_bytes(deploy) + (3 * 64 * 64 + 3 * 256 * 256) * 4
    assert profile.peak_memory_mb * MIB >= floor


def _run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    rc = main(["profile", *argv])
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def test_cli_json_has_the_documented_keys_and_values(capsys):
    rc, out, err = _run_cli(capsys, "fmen_s", "--input", "24x20", "--threads", "1",
                            "--repeats", "3", "--json")
    assert rc == 0, err
    got = json.loads(out)
    assert set(got) == {"name", "arch_id", "scale", "input", "device", "params", "macs_g",
                        "activations_m", "num_conv", "runtime_ms", "runtime_iqr_ms",
                        "peak_memory_mb", "peak_memory_est_mb", "threads", "baseline",
                        "runtime_ratio", "runtime_ratio_iqr", "runtime_baseline_ms"}
    assert got["baseline"] is None and got["runtime_ratio"] is None
    spec = get_anchor("fmen_s").spec
    deploy = build_model("fmen_s", deploy=True)
    assert (got["name"], got["arch_id"], got["scale"]) == ("fmen_s", spec.arch_id(), 4)
    assert (got["input"], got["device"], got["threads"]) == ([24, 20], "cpu", 1)
    assert got["params"] == count_params(deploy)
    assert got["macs_g"] == pytest.approx(count_macs(deploy, (24, 20)))
    assert got["runtime_ms"] > 0 and got["peak_memory_mb"] > 0


def test_cli_table_and_scale_override(capsys):
    rc, out, _ = _run_cli(capsys, "rlfn", "--scale", "2", "--input", "20", "--repeats", "2",
                          "--threads", "1")
    assert rc == 0
    assert "rlfn  x2" in out and "input 1x3x20x20, cpu, 1 threads" in out
    assert f"{get_anchor('rlfn').reference['params']['x2']:,}" in out


@pytest.mark.parametrize("argv, message", [
    (["no_such_anchor_xyz"], "'no_such_anchor_xyz' is neither an anchor nor a spec file"),
    (["fmen_s", "--input", "12y12"], "--input: expected HxW"),
    (["fmen_s", "--repeats", "0"], "--repeats: expected an integer >= 1 and <= 10000, got 0"),
    pytest.param(["fmen_s", "--device", "cuda"], "CUDA is not available",
                 marks=pytest.mark.skipif(torch.cuda.is_available(), reason="has CUDA")),
])
def test_cli_bad_input_is_one_line_exit_2(capsys, argv, message):
    rc, out, err = _run_cli(capsys, *argv)
    assert rc == 2 and out == ""
    assert message in err and len(err.strip().splitlines()) == 1


@pytest.mark.slow
def test_back_to_back_cpu_runtimes_agree_within_10_percent():
    model = build_model("fmen_s", deploy=True)
    first, second = (profile_model(model, memory=False).runtime_ms for _ in range(2))
    assert abs(first - second) <= 0.10 * min(first, second), (first, second)
