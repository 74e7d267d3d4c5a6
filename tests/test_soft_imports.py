"""Layering: search_space pulls in neither ray, optuna nor plotly; `nas --help` needs no torch,
no ray."""

from __future__ import annotations

import subprocess
import sys


def _modules_after(code: str) -> set[str]:
    code += "\nimport sys; print(' '.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    return set(out.split())


def test_search_space_imports_no_search_or_plotting_stack():
    mods = _modules_after("import search_space, search_space.builder, search_space.space")
    assert not {"ray", "optuna", "plotly"} & mods


def test_cli_help_imports_no_torch_or_ray():
    code = ("import sys\nfrom nas.cli import build_parser\n"
            "build_parser().format_help()")
    mods = _modules_after(code)
    assert "torch" not in mods and "ray" not in mods


def test_ci_runs_the_readme_test_command():
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    readme = (root / "README.md").read_text()
    ci = (root / ".ci" / "run").read_text()
    command = "bash .ci/setup && .venv/bin/python -m pytest -q"
    assert command in readme and command in ci
