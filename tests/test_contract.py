"""The results contract, checked on the source: columns are named through the catalogue, no
private API of another library is imported, and nothing points outside the repository."""

from __future__ import annotations

import io
import re
import tokenize
from pathlib import Path

from analysis import metrics as catalogue
from analysis.rundir import STATUSES

ROOT = Path(__file__).resolve().parents[1]
PRODUCT = ("nas", "analysis", "trainers", "search_space")
# the only modules that spell out column names and statuses
CONTRACT = {"analysis/metrics.py", "analysis/rundir.py"}
# The same words as keys of another schema, not columns: TrainConfig / search.yaml / state.json
# fields (``iterations``, ``seed``, ``device``, ``started_at``), the fidelity reference list
# (``spec``), fidelity baselines and the NTIRE weights (``synflow``, ``params``), BasicSR's
# checkpoint key and metric names (``params``, ``psnr``, ``ssim``), published figures
# (``params``, ``runtime_ms``), a prepared-data report (``reason``), plot layer kinds and CSS
# classes (``anchor``), a display label (``params``), a local sort frame (``psnr``).
OTHER_SCHEMAS = {
    "analysis/export.py": {"iterations", "seed", "device", "psnr", "ssim", "params"},
    "analysis/plots.py": {"params", "anchor"},
    "analysis/report.py": {"device", "iterations", "seed", "runtime_ms", "anchor"},
    "nas/commands/data.py": {"reason"},
    "nas/commands/export.py": {"iterations"},
    "nas/commands/profile.py": {"params"},
    "nas/commands/show.py": {"spec"},
    "nas/commands/train.py": {"iterations", "train_seconds", "device"},
    "nas/config.py": {"seed"},
    "nas/fidelity.py": {"spec", "synflow"},
    "nas/launcher.py": {"started_at", "seed"},
    "nas/objectives.py": {"params"},
    "nas/session.py": {"device"},
    "nas/trial.py": {"device", "seed", "params"},
}


def _sources(*folders: str):
    for folder in folders:
        for path in sorted((ROOT / folder).rglob("*.py")):
            yield path.relative_to(ROOT).as_posix(), path.read_text()


def _bare_names(text: str, names: set[str]) -> list[tuple[int, str]]:
    """``(line, name)`` of each string literal in code (docstrings aside) that is exactly one of
    ``names``, and of each ``['name']`` / ``.get('name'`` inside an f-string."""
    tokens = [t for t in tokenize.generate_tokens(io.StringIO(text).readline)
              if t.type not in (tokenize.NL, tokenize.COMMENT)]
    found = []
    for i, tok in enumerate(tokens):
        if tok.type != tokenize.STRING:
            continue
        before, after = tokens[i - 1] if i else None, tokens[i + 1] if i + 1 < len(tokens) else None
        if (before is None or before.type in (tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT)) \
                and after is not None and after.type == tokenize.NEWLINE:
            continue  # a docstring
        prefix = re.match(r"[a-zA-Z]*", tok.string).group().lower()
        if "f" in prefix:
            found += [(tok.start[0], m.group(2)) for m in
                      re.finditer(r"""(?:\[|\.get\()(['"])([a-z_0-9]+)\1""", tok.string)
                      if m.group(2) in names]
        elif not prefix and tok.string[1:-1] in names and tok.string[0] == tok.string[-1]:
            found.append((tok.start[0], tok.string[1:-1]))
    return found


def test_columns_and_statuses_are_named_through_the_catalogue():
    names = set(catalogue.columns()) | set(STATUSES)
    found = {path: _bare_names(text, names) for path, text in _sources("nas", "analysis")
             if path not in CONTRACT}
    bare = [f"{path}:{line}: {name!r}" for path, hits in found.items() for line, name in hits
            if name not in OTHER_SCHEMAS.get(path, set())]
    assert not bare, "use COL.<name> / STATUS.<name>:\n" + "\n".join(bare)
    stale = {(path, name) for path, allowed in OTHER_SCHEMAS.items() for name in allowed
             if name not in {n for _, n in found.get(path, [])}}
    assert not stale, f"OTHER_SCHEMAS lists words no longer there: {sorted(stale)}"


def test_the_detector_finds_a_bare_column():
    code = 'x = row["runtime_ms"]\ny = f"{row[\'psnr\']:.2f}"\n"""runtime_ms in a docstring"""\n'
    assert _bare_names(code, {"runtime_ms", "psnr"}) == [(1, "runtime_ms"), (2, "psnr")]


def test_no_private_imports_of_other_libraries():
    private = re.compile(r"^\s*(?:from|import)\s+(optuna\._|optuna\.study\._|ray\.\S*\._private)",
                         re.M)
    hits = [f"{path}: {m.group(1)}" for path, text in _sources(*PRODUCT)
            for m in private.finditer(text)]
    assert not hits


def test_nothing_points_outside_the_repository():
    files = [*_sources(*PRODUCT, "benchmarks")]
    files += [(p.relative_to(ROOT).as_posix(), p.read_text())
              for p in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]]
    assert len(files) > 50
    assert not [path for path, text in files if "../shared" in text]
