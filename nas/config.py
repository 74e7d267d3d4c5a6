"""SearchConfig: the validated search config of ``nas launch`` (YAML; defaults in
``nas/default_search.yaml``).

A user file is merged over the defaults (fixed-schema sections key by key, ``objectives`` /
``constraints`` / lists as a whole) and validated strictly: an unknown key, a wrong type or an
unknown name raises :class:`search_space.errors.InputError` naming the path
(``sampler.type: 'cmaes' not allowed; allowed: tpe, nsga2, random``).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from analysis.metrics import COL
from nas.config_sections import (
    SECTIONS,
    NtireConfig,
    ProfileConfig,
    ProxyConfig,
    ResourcesConfig,
    SamplerConfig,
    SchedulerConfig,
    SearchConfigError,
)
from nas.objectives import (
    OBJECTIVES,
    Constraint,
    check_direction,
    parse_constraint,
)
from search_space.anchors import list_anchors
from search_space.choices import SCALES
from search_space.errors import InputError, not_allowed
from search_space.io import first_line
from search_space.space import DEFAULT_SPACE, SpaceError, resolve_space
from search_space.validation import (
    Rule,
    check_fields,
    raise_problems,
    short,
    unknown_keys,
)
from search_space.yaml_io import read_yaml

__all__ = ["SearchConfig", "DEFAULTS_PATH", "load_defaults"]

DEFAULTS_PATH = Path(__file__).resolve().parent / "default_search.yaml"

@dataclass(frozen=True)
class SearchConfig:
    """A complete, validated search config.

    Args:
        objectives: Metric -> ``max`` | ``min`` (see ``nas.objectives.OBJECTIVES``).
        anchors: Anchor names evaluated as their own trials.
        constraints: Parsed cost constraints.
        proxy: Proxy training preset and overrides.
        profile: Profiling settings.
        sampler: Optuna sampler settings.
        scheduler: Trial scheduler settings.
        seed: Seed of the sampler and of every trial.
        resources: Concurrency and resources per trial.
        space: The complete search space mapping (``search_space.space``).
    """

    objectives: Mapping[str, str]
    anchors: tuple[str, ...]
    constraints: tuple[Constraint, ...]
    proxy: ProxyConfig
    profile: ProfileConfig
    sampler: SamplerConfig
    scheduler: SchedulerConfig
    seed: int
    resources: ResourcesConfig
    space: Mapping[str, Any]
    constraints_text: Mapping[str, Any] = field(default_factory=dict)
    ntire: NtireConfig = field(default_factory=NtireConfig)

    @property
    def uses_ntire_score(self) -> bool:
        return COL.ntire_score in self.objectives or any(
            c.metric == COL.ntire_score for c in self.constraints)

    @property
    def scale(self) -> int:
        return int(self.space["scale"])

    @property
    def metric_names(self) -> list[str]:
        return list(self.objectives)

    @property
    def modes(self) -> list[str]:
        return list(self.objectives.values())

    # ------------------------------------------------------------------ I/O
    @classmethod
    def from_dict(cls, data: Any, *, source: str = "config") -> SearchConfig:
        """Merge ``data`` over the defaults and validate."""
        if data is None:
            data = {}
        if not isinstance(data, Mapping):
            raise InputError(f"{source}: expected a mapping of search settings, "
                             f"got {type(data).__name__}")
        merged = _merge(load_defaults(), data, source)
        return _build(merged, source)

    @classmethod
    def from_file(cls, path: str | Path) -> SearchConfig:
        return cls.from_dict(read_yaml(path, "search config"), source=str(path))

    @classmethod
    def defaults(cls) -> SearchConfig:
        return cls.from_dict({})

    def to_dict(self) -> dict[str, Any]:
        """Plain data; ``from_dict(to_dict())`` gives an equal config."""
        return {
            "objectives": dict(self.objectives),
            "anchors": list(self.anchors),
            "constraints": dict(self.constraints_text),
            "seed": self.seed,
            "space": copy.deepcopy(dict(self.space)),
            **{name: getattr(self, name).to_dict() for name in SECTIONS},
        }

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def with_overrides(self, *, seed: int | None = None, max_concurrent: int | None = None,
                       cpus_per_trial: float | None = None,
                       gpus_per_trial: float | None = None) -> SearchConfig:
        """Command-line overrides (``--seed``, ``--max-concurrent`` ...), validated."""
        res = self.resources
        if max_concurrent is not None:
            res = replace(res, max_concurrent=_override("--max-concurrent", max_concurrent,
                                                        kind=int, low=1, high=4096))
        if cpus_per_trial is not None:
            res = replace(res, cpus_per_trial=_override("--cpus-per-trial", cpus_per_trial,
                                                        kind=float, low=0, low_open=True))
        if gpus_per_trial is not None:
            res = replace(res, gpus_per_trial=_override("--gpus-per-trial", gpus_per_trial,
                                                        kind=float, low=0))
        out = replace(self, resources=res)
        if seed is not None:
            out = replace(out, seed=_override("--seed", seed, kind=int, low=0))
        return out


def load_defaults() -> dict[str, Any]:
    """``default_search.yaml`` plus the default space, which is defined once, in
    ``search_space.space.DEFAULT_SPACE``."""
    defaults = read_yaml(DEFAULTS_PATH, "default search config")
    return {**defaults, "space": copy.deepcopy(DEFAULT_SPACE)}


# ---------------------------------------------------------------------------- merge + build
def _what(source: str) -> str:
    return "search config" if source == "config" else f"search config {source}"


def _merge(defaults: dict[str, Any], user: Mapping[str, Any], source: str) -> dict[str, Any]:
    problems = unknown_keys("", user, list(defaults))
    out = copy.deepcopy(defaults)
    for key, value in user.items():
        if key not in defaults:
            continue
        if key in SECTIONS:  # merged key by key over the defaults; the rest replaced whole
            if not isinstance(value, Mapping):
                problems.append(f"{key}: expected a mapping, got {short(value)}")
                continue
            out[key].update(copy.deepcopy(dict(value)))
        else:
            out[key] = copy.deepcopy(value)
    raise_problems(problems, SearchConfigError, _what(source))
    return out


def _section(name: str, data: Any, problems: list[str]) -> Any:
    """A section dataclass from its mapping; problems are collected (defaults stand in)."""
    cls = SECTIONS[name]
    if not isinstance(data, Mapping):
        problems.append(f"{name}: expected a mapping, got {short(data)}")
        return cls()
    before = len(problems)
    values = check_fields(cls, data, name, problems)
    return cls(**values) if len(problems) == before else cls()


def _collect(problems: list[str], fn: Any, *args: Any) -> Any:
    """``fn(*args)``, its InputError recorded as a problem (None returned)."""
    try:
        return fn(*args)
    except InputError as e:
        problems.append(first_line(e))
        return None


def _build(d: dict[str, Any], source: str = "config") -> SearchConfig:
    problems: list[str] = []
    known = list_anchors()
    anchors = _anchors(d["anchors"], known, problems)
    constraints_text = d["constraints"] if d["constraints"] is not None else {}
    constraints: list[Constraint] = []
    if not isinstance(constraints_text, Mapping):
        problems.append(f"constraints: expected a mapping metric -> bound, got "
                        f"{short(constraints_text)}")
        constraints_text = {}
    for metric, text in constraints_text.items():
        c = _collect(problems, parse_constraint, f"constraints.{metric}", metric, text, known)
        if c is not None:
            constraints.append(c)
    space = _space(d["space"], problems, resolve_space)
    objectives = _objectives(d["objectives"], problems)
    sections = {name: _section(name, d.get(name) if name != "ntire" else d.get(name) or {},
                               problems) for name in SECTIONS}
    seed, problem = Rule(kind=int, low=0).apply("seed", d["seed"])
    problems += [problem] if problem else []
    if not problems:
        problems += _check_measured(objectives, constraints, sections["profile"])
        problems += _check_trained_anchors(constraints, anchors)
    raise_problems(problems, SearchConfigError, _what(source))
    return SearchConfig(objectives=objectives, anchors=anchors, constraints=tuple(constraints),
                        seed=seed, space=space, constraints_text=dict(constraints_text),
                        **sections)


def _space(data: Any, problems: list[str], resolve: Any) -> dict[str, Any]:
    try:
        space = resolve(data if data is not None else {})
    except SpaceError as e:
        problems += e.problems
        return {}
    except InputError as e:
        problems.append(first_line(e))
        return {}
    scale = space["scale"]
    if not isinstance(scale, int) or isinstance(scale, bool):
        problems.append(f"space.scale: expected one of {', '.join(map(str, SCALES))} (a search "
                        f"runs at one scale), got {short(scale)}")
    return space


def _check_trained_anchors(constraints: list[Constraint], anchors: tuple[str, ...]) -> list[str]:
    """A quality floor relative to an anchor compares with that anchor's trial in this run."""
    return [f"constraints.{c.metric}: {c.anchor!r} must be one of the run's anchors (it is "
            f"trained under the same proxy); anchors: {', '.join(anchors) or 'none'}"
            for c in constraints if c.stage == "trained" and c.anchor and c.anchor not in anchors]


def _check_measured(objectives: Mapping[str, str], constraints: list[Constraint],
                    profile: ProfileConfig) -> list[str]:
    """A metric that is optimised or constrained must be measured."""
    used = list(objectives) + [c.metric for c in constraints]
    return [f"profile.{switch}: must be true while {metric} is an objective or a constraint"
            for metric, switch in ((COL.runtime_ms, "runtime"), (COL.ntire_score, "runtime"),
                                   (COL.peak_memory_mb, "memory"))
            if metric in used and not getattr(profile, switch)]


def _objectives(data: Any, problems: list[str]) -> dict[str, str]:
    if not isinstance(data, Mapping) or not data:
        problems.append(f"objectives: expected a mapping metric -> max|min, got {short(data)}")
        return {}
    out = {}
    for name, direction in data.items():
        if name not in OBJECTIVES:
            problems.append(not_allowed("objectives", name, OBJECTIVES))
            continue
        d = _collect(problems, check_direction, f"objectives.{name}", direction)
        if d is not None:
            out[str(name)] = d
    return out


def _anchors(data: Any, known: list[str], problems: list[str]) -> tuple[str, ...]:
    if data is None:
        return ()
    if not isinstance(data, (list, tuple)):
        problems.append(f"anchors: expected a list of anchor names, got {short(data)}")
        return ()
    bad = [not_allowed(f"anchors[{i}]", name, known) for i, name in enumerate(data)
           if not isinstance(name, str) or name not in known]
    problems += bad
    if not bad and len(set(data)) != len(data):
        problems.append(f"anchors: each anchor at most once, got {list(data)}")
    return tuple(data)


def _override(path: str, value: Any, **kwargs: Any) -> Any:
    """A command-line value through the same rules as the config key it overrides."""
    value, problem = Rule(**kwargs).apply(path, value)
    if problem:
        raise InputError(problem)
    return value


