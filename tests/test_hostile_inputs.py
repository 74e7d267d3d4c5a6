"""Hostile inputs to every ``nas`` command: one clear line, exit 2, nothing touched, bounded.

Each case runs the real CLI (``nas.cli.main``) in its own forked process, under a memory limit
(RLIMIT_AS: the address space the imports already mapped plus 1 GiB, so an unbounded allocation
fails the case instead of the machine) and 10 s of CPU time (RLIMIT_CPU; CPU rather than wall
time, so that a loaded machine does not fail a case that does little work, while a hang that
computes is still caught; a wall-clock alarm of 900 s catches a hang that sleeps). The processes
are forked from one helper process that imported torch and the package once, so that 50 cases
cost seconds rather than 50 interpreter starts.

For every case the test asserts the exit code, that no traceback appears, the exact number of
stderr lines, that the message names the field or file, and that every file in the case's
folder (its inputs and any output folder) is byte-identical before and after (sha256).
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MEMORY_HEADROOM = 1 << 30  # bytes beyond what the imports mapped
CPU_SECONDS = 10
WALL_SECONDS = 900

# The helper: imports once, then forks one limited child per request (one JSON line each).
_ZYGOTE = r"""
import json, os, resource, signal, sys, traceback
# pyarrow's default pool (mimalloc) reserves a 1 GiB arena of address space at its first
# allocation, which the 1 GiB headroom cannot tell from the command's own allocations (whether it
# fit depended on a few MiB of modules imported after the fork): malloc accounts what is used.
os.environ["ARROW_DEFAULT_MEMORY_POOL"] = "system"
import torch, yaml, PIL.Image                          # noqa: F401
import search_space.blocks, search_space.anchors       # noqa: F401
import trainers.config, trainers.data, nas.config, nas.cli  # noqa: F401
import nas.commands.show, nas.commands.profile, nas.commands.train  # noqa: F401

def vm_size():
    for line in open("/proc/self/status"):
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024

print("ready", flush=True)
for line in sys.stdin:
    req = json.loads(line)
    out, err = req["stdout"], req["stderr"]
    pid = os.fork()
    if pid == 0:
        try:
            os.chdir(req["cwd"])
            os.environ.update(req["env"])
            fo, fe = os.open(out, os.O_WRONLY | os.O_CREAT), os.open(err, os.O_WRONLY | os.O_CREAT)
            os.dup2(fo, 1); os.dup2(fe, 2)
            limit = vm_size() + req["memory"]
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
            resource.setrlimit(resource.RLIMIT_CPU, (req["cpu"], req["cpu"]))
            signal.alarm(req["wall"])
            code = nas.cli.main(req["argv"])
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 2
        except BaseException:
            traceback.print_exc()
            code = 99
        sys.stdout.flush(); sys.stderr.flush()
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    rc = os.waitstatus_to_exitcode(status)
    print(json.dumps({"rc": rc}), flush=True)
"""


class _Runner:
    def __init__(self) -> None:
        env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
               "OMP_NUM_THREADS": "1", "ESRNAS_CACHE_DIR": "off"}
        self.proc = subprocess.Popen([sys.executable, "-c", _ZYGOTE], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT)
        assert self.proc.stdout.readline().strip() == "ready"

    def run(self, argv: list[str], cwd: Path, env: dict[str, str],
            logs: Path) -> tuple[int, str, str]:
        out, err = logs / "stdout", logs / "stderr"
        req = {"argv": argv, "cwd": str(cwd), "env": env, "stdout": str(out), "stderr": str(err),
               "memory": MEMORY_HEADROOM, "cpu": CPU_SECONDS, "wall": WALL_SECONDS}
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()
        rc = json.loads(self.proc.stdout.readline())["rc"]
        texts = out.read_text(), err.read_text()
        out.unlink()
        err.unlink()
        return rc, *texts

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


@pytest.fixture(scope="module")
def runner():
    r = _Runner()
    yield r
    r.close()


# ---------------------------------------------------------------------------- input files
def png(width: int, height: int, *, bit_depth: int = 8, color: int = 2,
        rows: bytes | None = None) -> bytes:
    """A PNG file; ``rows`` None writes only the header and an empty image stream (a header
    that claims a size the data does not have)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color, 0, 0, 0)
    data = zlib.compress(rows if rows is not None else b"")
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", data) + \
        chunk(b"IEND", b"")


TINY = "scale: 2\nchannels: 8\nbody: [{block: conv, repeat: 1}]\n"
ALIAS_BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]\n" for i in range(8))
DEEP = "[" * 5000 + "]" * 5000


def _tiny_checkpoint(path: Path, *, spec: bool = True) -> None:
    import torch

    from search_space.factory import build_model
    from search_space.spec import ArchSpec

    s = ArchSpec.from_yaml(TINY)
    ckpt = {"format": "esrnas", "version": 1, "model_deploy":
            build_model(s, deploy=True).state_dict()}
    if spec:
        ckpt["spec"] = s.to_dict()
    torch.save(ckpt, path)


def _files(d: Path, files: dict[str, str | bytes]) -> None:
    for name, content in files.items():
        p = d / name
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            p.write_bytes(content)
        else:
            p.write_text(content)


def _tree_hashes(d: Path) -> dict[str, str]:
    """Every path under ``d``: the sha256 of a file, ``dir`` for a folder."""
    return {str(p.relative_to(d)): hashlib.sha256(p.read_bytes()).hexdigest()
            if p.is_file() else "dir" for p in sorted(d.rglob("*"))}


class Pickle:
    """A pickle that torch's weights_only loader refuses (a reduce to a callable)."""


def _refused_pickle() -> bytes:
    import pickle

    return pickle.dumps({"spec": Pickle()})


# ---------------------------------------------------------------------------- the cases
# (id, argv, files, exit code, stderr lines, fragments the message must contain)
BAD_SPEC = "scale: 5\nchannels: -3\nbody: [{block: rfdbb}]\nfusion: concat\n"
ESA_TRAIN = ("arch: rlfn\ndata: {train: Set5, val: [], lr_patch: 8}\niterations: 1\n")
GOOD_TRAIN = "arch: {scale: 2, channels: 8, body: [{block: conv}]}\niterations: 1\n" \
             "data: {train: Set5, val: []}\n"
RUN_DIR = "run"  # built by the run_dir fixture inside the case folder

CASES = [
    # show
    ("show-repeat-1e8", ["show", "s.yaml"],
     {"s.yaml": "scale: 2\nchannels: 8\nbody: [{block: conv, repeat: 100000000}]\n"},
     2, 1, ["s.yaml", "body[0].repeat", "<= 256"]),
    ("show-channels-1e5", ["show", "s.yaml"],
     {"s.yaml": "scale: 2\nchannels: 100000\nbody: [conv]\n"}, 2, 1, ["s.yaml", "channels"]),
    ("show-alias-bomb", ["show", "s.yaml"], {"s.yaml": ALIAS_BOMB}, 2, 1,
     ["s.yaml", "aliases"]),
    ("show-deep-nesting", ["show", "s.yaml"], {"s.yaml": DEEP}, 2, 1, ["s.yaml"]),
    ("show-huge-file", ["show", "s.yaml"], {"s.yaml": "#" * (2 << 20)}, 2, 1,
     ["s.yaml", "bytes"]),
    ("show-four-problems", ["show", "s.yaml"], {"s.yaml": BAD_SPEC}, 2, 5,
     ["s.yaml", "scale", "channels", "body[0].block", "fusion"]),
    ("show-unknown-anchor", ["show", "fmen_x"], {}, 2, 1, ["fmen_x", "did you mean 'fmen_s'"]),
    ("show-scale-7", ["show", "fmen_s", "--scale", "7"], {}, 2, 1, ["--scale", "7"]),
    ("show-bad-upsampler", ["show", "s.yaml"],
     {"s.yaml": TINY + "upsampler: nearest_conv\n"}, 2, 1, ["upsampler", "nearest_conv"]),
    ("show-not-yaml", ["show", "s.yaml"], {"s.yaml": "scale: [2\n"}, 2, 1,
     ["s.yaml", "not valid YAML"]),
    ("show-binary", ["show", "s.yaml"], {"s.yaml": b"\xff\xfe\x00\x81"}, 2, 1,
     ["s.yaml", "cannot read"]),
    ("show-missing", ["show", "nope.yaml"], {}, 2, 1, ["nope.yaml"]),
    ("show-params-limit", ["show", "s.yaml"],
     {"s.yaml": "scale: 4\nchannels: 1024\nbody: [{block: rb, repeat: 200}]\n"}, 2, 1,
     ["s.yaml", "parameters", "--max-params"]),
    ("show-list-not-mapping", ["show", "s.yaml"], {"s.yaml": "[1, 2]\n"}, 2, 1,
     ["s.yaml", "expected a mapping"]),
    # profile
    ("profile-input-1e5", ["profile", "fmen_s", "--input", "100000x100000"], {}, 2, 1,
     ["--input"]),
    ("profile-input-superscript", ["profile", "fmen_s", "--input", "\u00b2x\u00b2"], {}, 2, 1,
     ["--input"]),
    ("profile-input-area", ["profile", "fmen_s", "--input", "5000x5000"], {}, 2, 1,
     ["--input", "pixels"]),
    ("profile-memory-limit", ["profile", "s.yaml", "--input", "4096x4096"],
     {"s.yaml": "scale: 4\nchannels: 1000\nbody: [conv]\n"}, 2, 1,
     ["s.yaml", "MiB", "--max-memory-mb"]),
    ("profile-repeats-0", ["profile", "fmen_s", "--repeats", "0"], {}, 2, 1, ["--repeats"]),
    ("profile-device-tpu", ["profile", "fmen_s", "--device", "tpu"], {}, 2, 1, ["--device"]),
    # train
    ("train-esa-patch", ["train", "t.yaml", "--out", "out"], {"t.yaml": ESA_TRAIN}, 2, 1,
     ["data.lr_patch", "8", "ESA"]),
    ("train-out-not-empty", ["train", "t.yaml", "--out", "out"],
     {"t.yaml": GOOD_TRAIN, "out/config.yaml": "mine\n", "out/notes.txt": "keep\n"}, 2, 1,
     ["out", "not an empty folder"]),
    ("train-esa-patch-out-not-empty", ["train", "t.yaml", "--out", "out"],
     {"t.yaml": ESA_TRAIN, "out/config.yaml": "mine\n"}, 2, 1, ["data.lr_patch"]),
    ("train-typo", ["train", "t.yaml"], {"t.yaml": GOOD_TRAIN + "iteratons: 3\n"}, 2, 1,
     ["iteratons", "did you mean 'iterations'"]),
    ("train-three-problems", ["train", "t.yaml"],
     {"t.yaml": "arch: rlfn\noptim: {lr: fast}\nseed: -1\nloss: l3\n"}, 2, 4,
     ["t.yaml", "optim.lr", "seed", "loss"]),
    ("train-device-tpu", ["train", "t.yaml", "--device", "tpu", "--out", "o"],
     {"t.yaml": GOOD_TRAIN}, 2, 1, ["device", "tpu"]),
    ("train-iters-0", ["train", "t.yaml", "--iters", "0"], {"t.yaml": GOOD_TRAIN}, 2, 1,
     ["--iters"]),
    ("train-params-limit", ["train", "t.yaml", "--out", "o"],
     {"t.yaml": "arch: {scale: 4, channels: 1024, body: [{block: rb, repeat: 200}]}\n"}, 2, 1,
     ["t.yaml", "--max-params"]),
    ("train-image-bomb", ["train", "t.yaml", "--out", "o"],
     {"t.yaml": "arch: {scale: 2, channels: 8, body: [conv]}\ndata: {train: imgs, val: []}\n",
      "imgs/bomb.png": png(100000, 100000)}, 2, 1, ["bomb.png", "100000x100000"]),
    ("train-alias-bomb", ["train", "t.yaml"], {"t.yaml": ALIAS_BOMB}, 2, 1,
     ["t.yaml", "aliases"]),
    ("train-out-is-file", ["train", "t.yaml", "--out", "o"], {"t.yaml": GOOD_TRAIN, "o": "x"},
     2, 1, ["o:"]),
    # launch
    ("launch-budget-1e999s", ["launch", "--budget", "1e999s", "--out", "r"], {}, 2, 1,
     ["--budget"]),
    ("launch-budget-superscript", ["launch", "--budget", "\u00b2", "--out", "r"], {}, 2, 1,
     ["--budget"]),
    ("launch-budget-huge", ["launch", "--budget", "99999999999999999999", "--out", "r"], {}, 2,
     1, ["--budget", "100000"]),
    ("launch-budget-nan", ["launch", "--budget", "nanm", "--out", "r"], {}, 2, 1, ["--budget"]),
    ("launch-budget-years", ["launch", "--budget", "99999h", "--out", "r"], {}, 2, 1,
     ["--budget", "days"]),
    ("launch-constraint-nan", ["launch", "--config", "c.yaml", "--budget", "1", "--out", "r"],
     {"c.yaml": "constraints: {runtime_ms: '<= nan'}\n"}, 2, 1,
     ["constraints.runtime_ms", "finite"]),
    ("launch-out-not-empty", ["launch", "--budget", "1", "--out", "r"], {"r/x.txt": "keep"}, 2,
     1, ["--out", "not an empty folder"]),
    ("launch-config-typo", ["launch", "--config", "c.yaml", "--budget", "1"],
     {"c.yaml": "sampler: {typ: tpe}\n"}, 2, 1, ["sampler.typ", "did you mean 'type'"]),
    ("launch-config-two-problems", ["launch", "--config", "c.yaml", "--budget", "1"],
     {"c.yaml": "seed: -1\nsampler: {type: cmaes}\n"}, 2, 3, ["c.yaml", "seed", "sampler.type"]),
    ("launch-resume-not-run", ["launch", "--resume", "d"], {"d/x": "x"}, 2, 1, ["--resume"]),
    ("launch-max-concurrent-0", ["launch", "--budget", "1", "--max-concurrent", "0"], {}, 2, 1,
     ["--max-concurrent"]),
    ("launch-space-channels", ["launch", "--config", "c.yaml", "--budget", "1"],
     {"c.yaml": "space: {channels: {low: 8, high: 100000}}\n"}, 2, 1, ["space.channels.high"]),
    # eval
    ("eval-device-tpu", ["eval", "m.pth", "--device", "tpu"], {"m.pth": "ckpt"}, 2, 1,
     ["--device", "tpu"]),
    ("eval-image-bomb", ["eval", "m.pth", "--data", "imgs"],
     {"m.pth": "ckpt", "imgs/bomb.png": png(100000, 100000)}, 2, 1, ["bomb.png", "pixels"]),
    ("eval-image-12000", ["eval", "m.pth", "--data", "imgs"],
     {"m.pth": "ckpt", "imgs/big.png": png(12000, 12000)}, 2, 1, ["big.png", "12000x12000"]),
    ("eval-checkpoint-without-spec", ["eval", "m.pth", "--data", "Set5"], {"m.pth": "nospec"},
     2, 1, ["m.pth"]),
    ("eval-refused-pickle", ["eval", "m.pth", "--data", "Set5"], {"m.pth": "pickle"}, 2, 1,
     ["m.pth"]),
    ("eval-missing-data", ["eval", "m.pth", "--data", "nowhere"], {"m.pth": "ckpt"}, 2, 1,
     ["--data", "nowhere"]),
    ("eval-spec-without-weights", ["eval", "s.yaml"], {"s.yaml": TINY}, 2, 1, ["--weights"]),
    # export / pareto (on a synthetic run)
    ("export-where-bad-operator", ["export", RUN_DIR, "--where", "runtime_ms <=> 3"], {}, 2, 1,
     ["--where", "<=>"]),
    ("export-missing-run", ["export", "nowhere"], {}, 2, 1, ["nowhere"]),
    ("export-iterations-0", ["export", RUN_DIR, "--iterations", "0"], {}, 2, 1,
     ["--iterations"]),
    ("pareto-missing-run", ["pareto", "nowhere"], {}, 2, 1, ["nowhere"]),
    ("pareto-objective-typo", ["pareto", RUN_DIR, "--objectives", "pnsr"], {}, 2, 1,
     ["pnsr", "did you mean 'psnr'"]),
    # fidelity / anchors
    ("fidelity-threads-0", ["fidelity", "--threads", "0"], {}, 2, 1, ["--threads"]),
    ("fidelity-config-bomb", ["fidelity", "--config", "c.yaml"], {"c.yaml": ALIAS_BOMB}, 2, 1,
     ["c.yaml", "aliases"]),
    ("fidelity-refs-missing", ["fidelity", "--refs", "refs.yaml"], {}, 2, 1, ["refs.yaml"]),
    ("anchors-bad-flag", ["anchors", "--bogus"], {}, 2, 1, ["--bogus"]),
]


def _materialise(d: Path, files: dict[str, str | bytes]) -> None:
    special = {"ckpt": lambda p: _tiny_checkpoint(p), "nospec": lambda p: _tiny_checkpoint(
        p, spec=False), "pickle": lambda p: p.write_bytes(_refused_pickle())}
    for name, content in files.items():
        if isinstance(content, str) and content in special:
            special[content](d / name)
        else:
            _files(d, {name: content})


@pytest.fixture(scope="module")
def run_template(tmp_path_factory):
    from tests.analysis.conftest import build_run

    return build_run(tmp_path_factory.mktemp("run"), weights=False)


def test_there_are_enough_cases_and_every_command_is_covered():
    commands = {argv[0] for _, argv, *_ in CASES}
    assert len(CASES) >= 40
    assert commands == {"show", "profile", "train", "launch", "eval", "export", "pareto",
                        "fidelity", "anchors"}


@pytest.mark.parametrize("argv, files, code, n_lines, fragments",
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_hostile_input(runner, run_template, tmp_path_factory, argv, files, code, n_lines,
                       fragments):
    import shutil

    case, logs = tmp_path_factory.mktemp("case"), tmp_path_factory.mktemp("logs")
    _materialise(case, files)
    if RUN_DIR in argv:
        shutil.copytree(run_template, case / RUN_DIR)
    before = _tree_hashes(case)
    env = {"ESRNAS_LOG_DIR": str(logs / "nas"), "HOME": str(case / ".home")}
    rc, out, err = runner.run(argv, case, env, logs)
    assert "Traceback" not in out + err, err
    assert rc == code, err
    lines = err.rstrip("\n").splitlines()
    assert len(lines) == n_lines, err
    assert lines[0].startswith(f"nas {argv[0]}: error: "), err
    for fragment in fragments:
        assert fragment in err, (fragment, err)
    assert _tree_hashes(case) == before  # nothing written, nothing overwritten


# ---------------------------------------------------------------------------- images, specs
def _png_rows(arr, channels: int) -> bytes:
    """Filter-type-0 scanlines of a big-endian 16-bit array (H x W x channels)."""
    import numpy as np

    h = arr.shape[0]
    data = arr.astype(">u2").reshape(h, -1)
    return b"".join(b"\x00" + row.tobytes() for row in np.ascontiguousarray(data))


def test_16_bit_pngs_are_scaled_not_clipped(tmp_path):
    import numpy as np

    from trainers.images import load_image

    gray = np.array([[0, 257, 32896, 65535]], dtype=np.uint16)  # 0, 1, 128, 255 in 8 bits
    (tmp_path / "g.png").write_bytes(png(4, 1, bit_depth=16, color=0,
                                         rows=_png_rows(gray[..., None], 1)))
    rgb = np.stack([gray, gray[:, ::-1], np.full_like(gray, 32896)], axis=-1)
    (tmp_path / "rgb.png").write_bytes(png(4, 1, bit_depth=16, color=2,
                                           rows=_png_rows(rgb, 3)))
    g = load_image(tmp_path / "g.png")
    assert g.dtype == np.uint8 and g.shape == (1, 4, 3)
    assert g[0, :, 0].tolist() == [0, 1, 128, 255] and (g[..., 0] == g[..., 2]).all()
    c = load_image(tmp_path / "rgb.png")
    assert c[0, :, 0].tolist() == [0, 1, 128, 255] and c[0, :, 1].tolist() == [255, 128, 1, 0]
    assert c[0, :, 2].tolist() == [128] * 4


def test_a_spec_validates_however_it_is_built():
    from dataclasses import replace

    from search_space.anchors import get_anchor
    from search_space.errors import SpecError
    from search_space.spec import ArchSpec, StageSpec

    with pytest.raises(SpecError, match=r"scale: 5 not allowed"):
        ArchSpec(scale=5, channels=8, body=(StageSpec("conv"),))
    with pytest.raises(SpecError, match=r"channels: expected an integer >= 1"):
        ArchSpec(scale=2, channels=-3, body=(StageSpec("conv"),))
    spec = get_anchor("rlfn").spec
    with pytest.raises(SpecError, match=r"scale: 7 not allowed; allowed: 2, 3, 4"):
        spec.with_scale(7)
    with pytest.raises(SpecError, match=r"upsampler: 'nearest_conv' not allowed"):
        replace(spec, upsampler="nearest_conv")
    with pytest.raises(SpecError, match=r"body\[0\]\.repeat: expected an integer >= 1 and <= 256"):
        ArchSpec(scale=2, channels=8, body=(StageSpec("conv", repeat=10**8),))
    with pytest.raises(SpecError):
        ArchSpec.from_yaml("scale: 5\nchannels: 8\nbody: [conv]\n")


def test_config_errors_are_not_spec_errors():
    from search_space.errors import DocumentError, InputError, SpecError
    from trainers.config import ConfigError, DataConfig

    assert not issubclass(ConfigError, SpecError)
    assert issubclass(ConfigError, DocumentError) and issubclass(SpecError, InputError)
    with pytest.raises(ConfigError, match=r"data\.lr_patch: expected an integer >= 2"):
        DataConfig(lr_patch=1)


# ---------------------------------------------------------------------------- failure policy
def test_a_crash_is_one_line_exit_1_with_the_traceback_in_the_log(tmp_path, monkeypatch, capsys):
    import nas.commands.show as show
    from nas.cli import main

    def boom(self, args):
        raise RuntimeError("disk on fire\nsecond line")

    monkeypatch.setattr(show.Command, "run", boom)
    monkeypatch.setenv("ESRNAS_LOG_DIR", str(tmp_path))
    assert main(["show", "fmen_s"]) == 1
    err = capsys.readouterr().err.splitlines()
    log = tmp_path / "nas-show.log"
    assert err == [f"nas show: failed: RuntimeError: disk on fire (traceback: {log})"]
    text = log.read_text()
    assert "Traceback (most recent call last)" in text and "disk on fire" in text


def test_library_warnings_are_folded_into_the_error_line(monkeypatch, capsys):
    import warnings

    import nas.commands.show as show
    from nas.cli import main
    from search_space.errors import InputError

    def warn_then_fail(self, args):
        warnings.warn("weights_only load failed", UserWarning, stacklevel=1)
        raise InputError("m.pth: cannot read checkpoint")

    monkeypatch.setattr(show.Command, "run", warn_then_fail)
    assert main(["show", "fmen_s"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "nas show: error: m.pth: cannot read checkpoint (warning: weights_only load failed)"]


def test_sigterm_is_handled_like_ctrl_c():
    code = ("import os, signal\nfrom nas.signals import sigterm_as_interrupt\n"
            "sigterm_as_interrupt()\ntry:\n    os.kill(os.getpid(), signal.SIGTERM)\n"
            "    signal.pause()\nexcept KeyboardInterrupt:\n    print('interrupted')\n")
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, env=env)
    assert out.stdout.strip() == "interrupted" and out.returncode == 0, out.stderr
