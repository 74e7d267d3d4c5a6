"""The results contract, checked on the source: columns are named through the catalogue, no
private API of another library is imported, and nothing points outside the repository."""

from __future__ import annotations

import io
import re
import tokenize
from collections import Counter
from pathlib import Path

from analysis import metrics as catalogue
from analysis.rundir import STATUSES

ROOT = Path(__file__).resolve().parents[1]
PRODUCT = ("nas", "analysis", "trainers", "search_space")
# the only modules that spell out column names and statuses
CONTRACT = {"analysis/metrics.py", "analysis/rundir.py"}
# The same words as keys of another schema, not columns, and how often each file uses them
# (so a new bare column in one of these files still fails): TrainConfig / search.yaml /
# state.json fields (iterations, seed, device, started_at, profile_hw), the fidelity
# reference list and its baselines (spec, synflow), the predictor's feature record
# (psnr_proxy, params, macs_g, synflow), the NTIRE weight names and a function in __all__
# (params, ntire_score), BasicSR's checkpoint key and metric names (params, psnr, ssim),
# published figures (params, runtime_ms), a prepared-data report (reason), plot layer kinds and
# a CSS class (anchor), a display label (params), a local sort frame (psnr), a function in
# __all__ (runtime_baseline), the training config of `nas verify` (iterations), a predictor's
# meta and a run's calibration record (device, seed, failed).
OTHER_SCHEMAS = {
    "nas/commands/data.py": {"reason": 1},
    "nas/commands/export.py": {"iterations": 1},
    "nas/commands/profile.py": {"params": 1},
    "nas/commands/show.py": {"spec": 1},
    "nas/commands/train.py": {"device": 1, "iterations": 3, "train_seconds": 1},
    "nas/config.py": {"seed": 3},
    "nas/calibration.py": {"device": 2, "failed": 1, "seed": 1},
    "nas/config_sections.py": {"seed": 1},
    "nas/fidelity.py": {"device": 1, "synflow": 3},
    "nas/proxy.py": {"device": 4},
    "nas/references.py": {"spec": 2},
    "nas/launcher.py": {"seed": 1, "started_at": 1},
    "nas/objectives.py": {"ntire_score": 1, "params": 2},
    "nas/session.py": {"device": 2, "profile_hw": 1, "runtime_baseline": 1},
    "nas/trial.py": {"device": 1, "params": 1, "synflow": 1},
    "nas/trial_settings.py": {"seed": 1},
    "nas/trial_costs.py": {"device": 2},
    "nas/verify.py": {"iterations": 1},
    "nas/commands/verify.py": {"iterations": 1},
    "analysis/export/basicsr.py": {"iterations": 1, "psnr": 1, "seed": 1, "ssim": 1},
    "analysis/export/card.py": {"params": 1},
    "analysis/export/pick.py": {"psnr": 2},
    "analysis/export/training.py": {"device": 1, "iterations": 2, "seed": 2},
    "analysis/plots/_utils.py": {"anchor": 3, "params": 1},
    "analysis/plots/scatter.py": {"anchor": 2, "params": 1},
    "analysis/plots/scatter3d.py": {"anchor": 3},
    "analysis/predictor.py": {"macs_g": 2, "params": 2, "psnr_proxy": 10, "synflow": 5},
    "analysis/report.py": {"anchor": 1, "runtime_ms": 3},
    "analysis/run.py": {"device": 2, "iterations": 1, "profile_hw": 1, "seed": 3},
}


def _sources(*folders: str):
    for folder in folders:
        for path in sorted((ROOT / folder).rglob("*.py")):
            yield path.relative_to(ROOT).as_posix(), path.read_text()


def _bare_names(text: str, names: set[str]) -> list[tuple[int, str]]:
    """``(line, name)`` of each string literal in code (docstrings aside) that is exactly one of
    ``names``, and of each ``['name']`` / ``.get('name'`` inside an f-string (Python < 3.12,
    where an f-string is one token; from 3.12 on its inner literals are tokens of their own)."""
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
    found = {path: Counter(name for _, name in _bare_names(text, names))
             for path, text in _sources("nas", "analysis") if path not in CONTRACT}
    unexpected = {path: dict(counts - Counter(OTHER_SCHEMAS.get(path, {})))
                  for path, counts in found.items()}
    assert not {p: c for p, c in unexpected.items() if c}, (
        "name these through COL.<name> / STATUS.<name>, or list another schema's key")
    stale = {path: dict(Counter(allowed) - found.get(path, Counter()))
             for path, allowed in OTHER_SCHEMAS.items()}
    assert not {p: c for p, c in stale.items() if c}, "OTHER_SCHEMAS counts more than is there"


def test_the_detector_finds_a_bare_column():
    code = ('x = row["runtime_ms"]\ny = f"{row[\'psnr\']:.2f}"\n"""runtime_ms in a docstring"""\n'
            'if s == "completed":  # "psnr" in a comment\n    pass\n')
    assert _bare_names(code, {"runtime_ms", "psnr", "completed"}) == [
        (1, "runtime_ms"), (2, "psnr"), (4, "completed")]


_PRIVATE_IMPORT = re.compile(r"^\s*(?:from|import)\s+((?:optuna|ray)(?:\.\w+)*\._\w+)", re.M)


def test_no_private_imports_of_other_libraries():
    hits = [f"{path}: {m.group(1)}" for path, text in _sources(*PRODUCT)
            for m in _PRIVATE_IMPORT.finditer(text)]
    assert not hits


def test_the_private_import_pattern():
    for line in ("from optuna._hypervolume import x", "import optuna.study._multi_objective",
                 "from ray._private import utils", "from ray.tune._private.x import y"):
        assert _PRIVATE_IMPORT.search(line), line
    assert not _PRIVATE_IMPORT.search("from optuna.study import Study\nimport ray.tune")


def test_nothing_points_outside_the_repository():
    files = [*_sources(*PRODUCT, "benchmarks")]
    files += [(p.relative_to(ROOT).as_posix(), p.read_text())
              for p in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]]
    assert len(files) > 50
    assert not [path for path, text in files if "../shared" in text]
