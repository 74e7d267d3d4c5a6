"""The README's workflow, line by line, as a new user runs it on a fresh machine (subprocesses,
an empty cache, no datasets/ folder): each line succeeds, or stops at once with one line naming
what is missing and the command that makes it. The lines are read from README.md, so the README
and this test cannot drift; only sizes shrink (a tiny search space and proxy, a few iterations),
so that it runs in a couple of minutes."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import yaml

from tests.nas.conftest import tiny_config

ROOT = Path(__file__).resolve().parents[1]
# Only sizes change: the budget, the schedule lengths, and a tiny space and proxy.
BUDGET = "2"
SHRINK = {"launch": ["--config", "tiny.yaml"], "verify": ["--iterations", "4"],
          "train": ["--iters", "4"]}


def workflow_lines() -> list[list[str]]:
    """The commands of the README's "The workflow" block, without their comments."""
    text = (ROOT / "README.md").read_text()
    block = text.split("## The workflow", 1)[1].split("\n\n", 2)[1]
    return [shlex.split(line.split("  #", 1)[0]) for line in block.splitlines()
            if line.strip().startswith("nas ")]


def _shrink(argv: list[str]) -> list[str]:
    """The same command at a test's size."""
    if "--budget" in argv:
        i = argv.index("--budget") + 1
        argv = [*argv[:i], BUDGET, *argv[i + 1:]]
    return [*argv, *SHRINK.get(argv[1], [])]


def _run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "HOME": str(cwd), "ESRNAS_CACHE_DIR": str(cwd / "cache"),
           "ESRNAS_LOCK_DIR": str(cwd / "locks"), "PYTHONUNBUFFERED": "1"}
    return subprocess.run([sys.executable, "-m", "nas.cli", *_shrink(argv)[1:]],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=900)


def test_the_readme_workflow_runs_as_written(tmp_path):
    lines = workflow_lines()
    assert [line[1] for line in lines] == ["launch", "pareto", "verify", "export", "train", "eval"]
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(tiny_config(anchors=["fsrcnn"])))
    arch_id = None
    for argv in lines:
        if arch_id:
            argv = [a.replace("<arch_id>", arch_id) for a in argv]
        done = _run(argv, tmp_path)
        if argv[1] == "train":
            # The export trains on DIV2K by default, which a fresh machine lacks: one line that
            # names the command that makes it, and the bundled set to train on instead.
            assert done.returncode == 2, done.stderr
            message = done.stderr.strip()
            assert "\n" not in message and "Traceback" not in message
            assert "datasets/DIV2K_sub" in message and "nas data prepare" in message
            assert "data.train: SunHays80" in message
            config = Path(tmp_path / argv[2])
            data = yaml.safe_load(config.read_text())
            data["data"]["train"] = "SunHays80"  # what the message says
            config.write_text(yaml.safe_dump(data, sort_keys=False))
            done = _run(argv, tmp_path)
        assert done.returncode == 0, f"{shlex.join(argv)}:\n{done.stderr[-2000:]}"
        if argv[1] == "export":
            (folder,) = (tmp_path / "runs/s1/exports").iterdir()
            arch_id = folder.name
            assert re.fullmatch(r"[0-9a-f]{12}", arch_id)
    assert re.search(r"Set5\s.*\d+\.\d+", done.stdout), done.stdout  # eval's PSNR table
    assert (tmp_path / f"runs/train/s1_{arch_id}/model_deploy.pth").is_file()
