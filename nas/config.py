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
from nas.objectives import (
    NTIRE_WEIGHTS,
    OBJECTIVES,
    Constraint,
    check_direction,
    parse_constraint,
)
from search_space.anchors import list_anchors
from search_space.choices import SCALES
from search_space.errors import DocumentError, InputError, not_allowed
from search_space.io import first_line
from search_space.limits import PROFILE_RULES, input_hw_problem
from search_space.space import DEFAULT_SPACE, SpaceError, resolve_space
from search_space.validation import (
    Checked,
    Rule,
    check_fields,
    parse_number,
    raise_problems,
    rule,
    short,
    unknown_keys,
)
from search_space.yaml_io import read_yaml

__all__ = [
    "SearchConfig",
    "ProxyConfig",
    "ProfileConfig",
    "SamplerConfig",
    "SchedulerConfig",
    "ResourcesConfig",
    "DEFAULTS_PATH",
    "load_defaults",
    "Budget",
    "SearchConfigError",
    "MAX_BUDGET_TRIALS",
    "MAX_BUDGET_SECONDS",
]

DEFAULTS_PATH = Path(__file__).resolve().parent / "default_search.yaml"

PRESETS = ("auto", "cpu", "gpu")
SAMPLERS = ("tpe", "nsga2", "random")
SCHEDULERS = ("none", "asha")
# Sections merged key by key over the defaults; the others are replaced as a whole.
_MERGED = ("proxy", "profile", "sampler", "scheduler", "resources", "space", "ntire")
# Documented maxima (docs/validation.md): a budget is finite and at most this.
MAX_BUDGET_TRIALS = 100_000
MAX_BUDGET_SECONDS = 30 * 24 * 3600.0


class SearchConfigError(DocumentError):
    """An invalid search config; one line per problem, each naming its path."""

    kind = "search config"


def _anchor_names() -> list[str]:
    return list_anchors()


def _proxy_train(train: Mapping[str, Any]) -> str | None:
    for key in ("arch", "out_dir", "seed", "init"):
        if key in train:
            return f".{key}: set by the search for every trial; remove it"
    return None


def _input_hw(value: Any) -> Any:
    return None if value == "auto" else PROFILE_RULES["input_hw"].convert(value)


def _is_input_hw(hw: Any) -> str | None:
    problem = input_hw_problem(hw)
    return problem and problem.replace("expected ", "expected auto or ", 1)


def _ntire_weights(weights: Mapping[str, Any]) -> str | None:
    if set(weights) != set(NTIRE_WEIGHTS):
        return f"expected a mapping with exactly {', '.join(NTIRE_WEIGHTS)}, got {short(weights)}"
    bad = [k for k, v in weights.items() if Rule(kind=float, low=0).apply(k, v)[1]]
    return f".{bad[0]}: expected a number >= 0, got {short(weights[bad[0]])}" if bad else None


@dataclass(frozen=True)
class ProxyConfig(Checked):
    """Proxy training: ``preset`` of ``trainers.presets.PRESETS`` plus a partial TrainConfig,
    and the PSNR predictor that calibrates it (``auto``: the one shipped for this exact proxy,
    ``none``, or a path to a ``nas fidelity --fit`` predictor.json)."""

    _path = 'proxy'
    _error = SearchConfigError

    preset: str = field(default="auto", metadata=rule(kind=str, choices=PRESETS))
    train: Mapping[str, Any] = field(default_factory=dict, metadata=rule(
        kind=Mapping, convert=lambda v: {} if v is None else v, check=_proxy_train,
        expected="a partial training config mapping"))
    predictor: str = field(default="auto", metadata=rule(
        kind=str, expected="auto, none or a predictor.json path"))

    def resolved_preset(self, gpus_per_trial: float) -> str:
        if self.preset != "auto":
            return self.preset
        return "gpu" if gpus_per_trial > 0 else "cpu"


@dataclass(frozen=True)
class ProfileConfig(Checked):
    """How each trial's deploy form is profiled (``trainers.profiling.profile_model``).

    ``input_hw`` None (``auto``) is the NTIRE 256x256 with a GPU per trial and 128x128 on CPU,
    where one 256x256 forward of an anchor takes 0.5-2 s and timing 25 of them per trial would
    double the default search's time; CPU runtime scales about linearly with pixels.
    """

    _path = 'profile'
    _error = SearchConfigError

    input_hw: tuple[int, int] | None = field(default=None, metadata=rule(
        convert=_input_hw, optional=True, check=_is_input_hw,
        expected="auto or " + PROFILE_RULES["input_hw"].expected))
    warmup: int = field(default=5, metadata={"rule": PROFILE_RULES["warmup"]})
    repeats: int = field(default=20, metadata={"rule": PROFILE_RULES["repeats"]})
    runtime: bool = field(default=True, metadata=rule(kind=bool))
    memory: bool = field(default=True, metadata=rule(kind=bool))

    def resolved_input_hw(self, gpus_per_trial: float) -> tuple[int, int]:
        if self.input_hw is not None:
            return self.input_hw
        return (256, 256) if gpus_per_trial > 0 else (128, 128)


@dataclass(frozen=True)
class SamplerConfig(Checked):
    """Optuna sampler. Option: tpe | nsga2 | random."""

    _path = 'sampler'
    _error = SearchConfigError

    type: str = field(default="tpe", metadata=rule(kind=str, choices=SAMPLERS))
    n_startup_trials: int = field(default=10, metadata=rule(kind=int, low=0))
    population_size: int = field(default=16, metadata=rule(kind=int, low=2))


@dataclass(frozen=True)
class SchedulerConfig(Checked):
    """Trial scheduler. Option: none | asha (on validation PSNR)."""

    _path = 'scheduler'
    _error = SearchConfigError

    type: str = field(default="none", metadata=rule(kind=str, choices=SCHEDULERS))
    grace_period: int = field(default=1, metadata=rule(kind=int, low=1))
    reduction_factor: int = field(default=2, metadata=rule(kind=int, low=2))


@dataclass(frozen=True)
class ResourcesConfig(Checked):
    """Trials at a time and resources per trial (``cpus_per_trial`` None: CPUs / concurrency)."""

    _path = 'resources'
    _error = SearchConfigError

    max_concurrent: int = field(default=1, metadata=rule(kind=int, low=1, high=4096))
    cpus_per_trial: float | None = field(default=None, metadata=rule(
        kind=float, low=0, low_open=True, optional=True))
    gpus_per_trial: float = field(default=0.0, metadata=rule(kind=float, low=0))


@dataclass(frozen=True)
class NtireConfig(Checked):
    """The ``ntire_score`` objective: the NTIRE ESR score relative to ``baseline`` (an anchor
    profiled in the same run), with weights of runtime, MACs and params."""

    _path = 'ntire'
    _error = SearchConfigError

    baseline: str = field(default="span_ch28", metadata=rule(kind=str, choices=_anchor_names))
    weights: Mapping[str, float] = field(default_factory=lambda: dict(NTIRE_WEIGHTS),
                                         metadata=rule(kind=Mapping, check=_ntire_weights))


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
            "proxy": {"preset": self.proxy.preset, "train": copy.deepcopy(dict(self.proxy.train)),
                      "predictor": self.proxy.predictor},
            "profile": {**_fields(self.profile), "input_hw": "auto" if self.profile.input_hw
                        is None else list(self.profile.input_hw)},
            "sampler": _fields(self.sampler),
            "scheduler": _fields(self.scheduler),
            "seed": self.seed,
            "resources": _fields(self.resources),
            "space": copy.deepcopy(dict(self.space)),
            "ntire": {"baseline": self.ntire.baseline, "weights": dict(self.ntire.weights)},
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


def _fields(obj: Any) -> dict[str, Any]:
    return {k: getattr(obj, k) for k in obj.__dataclass_fields__}


# ---------------------------------------------------------------------------- merge + build
def _what(source: str) -> str:
    return "search config" if source == "config" else f"search config {source}"


def _merge(defaults: dict[str, Any], user: Mapping[str, Any], source: str) -> dict[str, Any]:
    problems = unknown_keys("", user, list(defaults))
    out = copy.deepcopy(defaults)
    for key, value in user.items():
        if key not in defaults:
            continue
        if key in _MERGED and key != "space":
            if not isinstance(value, Mapping):
                problems.append(f"{key}: expected a mapping, got {short(value)}")
                continue
            out[key].update(copy.deepcopy(dict(value)))
        else:
            out[key] = copy.deepcopy(value)
    raise_problems(problems, SearchConfigError, _what(source))
    return out


_SECTIONS = {"proxy": ProxyConfig, "profile": ProfileConfig, "sampler": SamplerConfig,
             "scheduler": SchedulerConfig, "resources": ResourcesConfig, "ntire": NtireConfig}


def _section(name: str, data: Any, problems: list[str]) -> Any:
    """A section dataclass from its mapping; problems are collected (defaults stand in)."""
    cls = _SECTIONS[name]
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
    known = _anchor_names()
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
                               problems) for name in _SECTIONS}
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


@dataclass(frozen=True)
class Budget:
    """``--budget``: a number of sampled trials (anchors come on top) or a wall-clock time."""

    trials: int | None = None
    seconds: float | None = None

    _UNITS = {"s": 1, "m": 60, "h": 3600}

    @classmethod
    def parse(cls, text: str | int) -> Budget:
        """``8`` (trials, 1 to :data:`MAX_BUDGET_TRIALS`) or ``90s`` / ``45m`` / ``2h`` (wall
        clock, at most :data:`MAX_BUDGET_SECONDS`); ASCII digits only."""
        raw = str(text).strip()
        hint = ("expected a number of trials (e.g. 8) or a wall-clock duration "
                "(e.g. 90s, 45m, 2h)")
        if raw.isascii() and raw.isdigit():
            if not 1 <= int(raw) <= MAX_BUDGET_TRIALS:
                raise InputError(f"--budget: {hint}; a number of trials must be >= 1 and <= "
                                 f"{MAX_BUDGET_TRIALS}, got {short(raw)}")
            return cls(trials=int(raw))
        number, unit = raw[:-1], raw[-1:].lower()
        value = parse_number(number) if "e" not in number.lower() else None
        if unit not in cls._UNITS or value is None or not value > 0:
            raise InputError(f"--budget: {hint}, got {short(raw)}")
        seconds = value * cls._UNITS[unit]
        if seconds > MAX_BUDGET_SECONDS:
            raise InputError(f"--budget: a wall-clock budget is at most "
                             f"{MAX_BUDGET_SECONDS / 86400:g} days, got {short(raw)}")
        return cls(seconds=seconds)

    def to_dict(self) -> dict[str, Any]:
        return {"trials": self.trials, "seconds": self.seconds}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Budget:
        return cls(trials=data.get("trials"), seconds=data.get("seconds"))

    def describe(self) -> str:
        if self.trials is not None:
            return f"{self.trials} trials"
        return f"{self.seconds:g} s wall clock"
