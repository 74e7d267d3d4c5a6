"""The house rules, checked on the source: no import cycles, an import inside a function only
where it defers a heavy library, no config default restated outside its dataclass, and every
module of nas/ and analysis/ under 400 lines."""

from __future__ import annotations

import ast
import dataclasses
import sys
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("search_space", "nas", "trainers", "analysis")
# Worth deferring for start-up time (`nas --help` imports none of them), or optional.
HEAVY = {"torch", "torchvision", "ray", "optuna", "plotly", "kaleido", "onnx", "onnxruntime",
         "pandas", "numpy", "PIL", "skimage", "scipy", "sqlalchemy", "basicsr", "psycopg2"}
MAX_LINES = 400


@cache
def _modules() -> dict[str, Path]:
    out = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def _targets(module: str, node: ast.Import | ast.ImportFrom) -> list[str]:
    """Absolute names an import statement loads (a ``from pkg import sub`` loads pkg.sub)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    base = node.module or ""
    if node.level:
        package = module.split(".")
        if _modules()[module].name != "__init__.py":
            package = package[:-1]
        package = package[:len(package) - node.level + 1]
        base = ".".join(package + ([base] if base else []))
    return [f"{base}.{a.name}" if f"{base}.{a.name}" in _modules() else base for a in node.names]


def _own(name: str) -> str | None:
    """The project module ``name`` is (or lies in), None for another library."""
    while name and name not in _modules():
        name = name.rpartition(".")[0]
    return name or None


@cache
def _imports() -> dict[str, list[tuple[ast.AST, bool]]]:
    """Per module: each import statement and whether it sits inside a function."""
    out = {}
    for module, path in _modules().items():
        tree = ast.parse(path.read_text())
        inner = {id(n) for f in ast.walk(tree) if isinstance(f, (ast.FunctionDef,
                                                                  ast.AsyncFunctionDef))
                 for n in ast.walk(f) if isinstance(n, (ast.Import, ast.ImportFrom))}
        out[module] = [(n, id(n) in inner) for n in ast.walk(tree)
                       if isinstance(n, (ast.Import, ast.ImportFrom))]
    return out


def _graph(*, top_level_only: bool) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {m: set() for m in _modules()}
    for module, imports in _imports().items():
        for node, inner in imports:
            if top_level_only and inner:
                continue
            graph[module] |= {t for t in map(_own, _targets(module, node)) if t and t != module}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while (w := stack.pop()) != v:
                component.append(w)
            if component:
                found.append(sorted([v, *component]))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for v in graph:
        if v not in index:
            visit(v)
    return found


def _heavy_at_load(module: str, graph: dict[str, set[str]]) -> bool:
    """Whether importing ``module`` (its parents, its module-level imports, transitively) loads
    a heavy library."""
    seen, todo = set(), [module]
    while todo:
        m = todo.pop()
        if m in seen:
            continue
        seen.add(m)
        parts = m.split(".")
        todo += [".".join(parts[:i]) for i in range(1, len(parts))] + list(graph[m])
        for node, inner in _imports()[m]:
            if not inner and any(t.split(".")[0] in HEAVY for t in _targets(m, node)):
                return True
    return False


def test_the_import_graph_has_no_cycle():
    """Imports inside functions count too: a cycle hidden in a function is still a cycle."""
    assert _cycles(_graph(top_level_only=False)) == []


def test_an_import_inside_a_function_defers_a_heavy_library():
    top = _graph(top_level_only=True)
    needless = []
    for module, imports in _imports().items():
        for node, inner in imports:
            if not inner:
                continue
            targets = _targets(module, node)
            heavy = any(t.split(".")[0] in HEAVY or (_own(t) and _heavy_at_load(_own(t), top))
                        for t in targets)
            if not heavy:
                needless.append(f"{module}:{node.lineno} {', '.join(targets)}")
    assert needless == [], "import these at module level (nothing heavy to defer): " + ", ".join(
        needless)


def _config_fields() -> set[str]:
    from nas import config_sections
    from trainers import config as train

    classes = [train.TrainConfig, *train._SECTIONS.values(), *config_sections.SECTIONS.values()]
    return {f.name for cls in classes for f in dataclasses.fields(cls)}


def _literal(node: ast.AST) -> bool:
    if isinstance(node, ast.Constant):
        return node.value is not None
    return isinstance(node, (ast.Tuple, ast.List)) and bool(node.elts) and all(
        isinstance(e, ast.Constant) for e in node.elts)


# Keys of other schemas that share a config field's name: an anchor file's official weights are
# x4 unless it says otherwise (Anchor.official_scale is that default's one home); a spec summary
# shows "x?" without a scale; the report's text for a run without calibration.json.
OTHER_SCHEMA_FALLBACKS = {("search_space/anchors/__init__.py", "scale"),
                          ("analysis/formatting.py", "scale"),
                          ("analysis/report.py", "predictor")}


def test_no_config_default_is_restated_outside_its_dataclass():
    """``x.get("lr_patch", 16)`` or ``x.get("iterations") or 600`` restates (and drifts from) a
    dataclass default; read it through the typed config or ``trainers.config.partial_value``."""
    names = _config_fields()
    restated = []
    for path in _modules().values():
        rel = path.relative_to(ROOT).as_posix()
        for node in ast.walk(ast.parse(path.read_text())):
            call, fallback = None, None
            if isinstance(node, ast.Call) and len(node.args) == 2:
                call, fallback = node, node.args[1]
            elif isinstance(node, ast.BoolOp) and isinstance(node.op, ast.Or) \
                    and len(node.values) == 2 and isinstance(node.values[0], ast.Call):
                call, fallback = node.values[0], node.values[1]
            if call is None or not (isinstance(call.func, ast.Attribute)
                                    and call.func.attr == "get" and call.args):
                continue
            key = call.args[0]
            if isinstance(key, ast.Constant) and key.value in names and _literal(fallback) \
                    and (rel, key.value) not in OTHER_SCHEMA_FALLBACKS:
                restated.append(f"{rel}:{node.lineno} {ast.unparse(node)}")
    assert restated == [], "\n".join(restated)


@pytest.mark.parametrize("package", ["nas", "analysis"])
def test_modules_stay_under_400_lines(package):
    sizes = {p.relative_to(ROOT).as_posix(): len(p.read_text().splitlines())
             for p in (ROOT / package).rglob("*.py")}
    assert {p: n for p, n in sizes.items() if n >= MAX_LINES} == {}


def test_every_config_section_is_a_field_and_has_defaults():
    """A section registered in nas.config_sections is a SearchConfig field with defaults in
    default_search.yaml, and ``to_dict`` round-trips it."""
    from nas.config import SearchConfig, load_defaults
    from nas.config_sections import SECTIONS

    fields = {f.name for f in dataclasses.fields(SearchConfig)}
    assert set(SECTIONS) <= fields
    assert set(SECTIONS) <= set(load_defaults())
    config = SearchConfig.defaults()
    assert SearchConfig.from_dict(config.to_dict()) == config
