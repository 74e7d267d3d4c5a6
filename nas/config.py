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

from nas.objectives import (
    NTIRE_WEIGHTS,
    OBJECTIVES,
    Constraint,
    check_direction,
    parse_constraint,
)
from search_space.errors import InputError, did_you_mean, not_allowed, read_yaml_file

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
]

DEFAULTS_PATH = Path(__file__).resolve().parent / "default_search.yaml"

PRESETS = ("auto", "cpu", "gpu")
SAMPLERS = ("tpe", "nsga2", "random")
SCHEDULERS = ("none", "asha")
# Sections merged key by key over the defaults; the others are replaced as a whole.
_MERGED = ("proxy", "profile", "sampler", "scheduler", "resources", "space", "ntire")


@dataclass(frozen=True)
class ProxyConfig:
    """Proxy training: ``preset`` of ``trainers.presets.PRESETS`` plus a partial TrainConfig,
    and the PSNR predictor that calibrates it (``auto``: the one shipped for this exact proxy,
    ``none``, or a path to a ``nas fidelity --fit`` predictor.json)."""

    preset: str = "auto"
    train: Mapping[str, Any] = field(default_factory=dict)
    predictor: str = "auto"

    def resolved_preset(self, gpus_per_trial: float) -> str:
        if self.preset != "auto":
            return self.preset
        return "gpu" if gpus_per_trial > 0 else "cpu"


@dataclass(frozen=True)
class ProfileConfig:
    """How each trial's deploy form is profiled (``trainers.profiling.profile_model``).

    ``input_hw`` None (``auto``) is the NTIRE 256x256 with a GPU per trial and 128x128 on CPU,
    where one 256x256 forward of an anchor takes 0.5-2 s and timing 25 of them per trial would
    double the default search's time; CPU runtime scales about linearly with pixels.
    """

    input_hw: tuple[int, int] | None = None
    warmup: int = 5
    repeats: int = 20
    runtime: bool = True
    memory: bool = True

    def resolved_input_hw(self, gpus_per_trial: float) -> tuple[int, int]:
        if self.input_hw is not None:
            return self.input_hw
        return (256, 256) if gpus_per_trial > 0 else (128, 128)


@dataclass(frozen=True)
class SamplerConfig:
    """Optuna sampler. Option: tpe | nsga2 | random."""

    type: str = "tpe"
    n_startup_trials: int = 10
    population_size: int = 16


@dataclass(frozen=True)
class SchedulerConfig:
    """Trial scheduler. Option: none | asha (on validation PSNR)."""

    type: str = "none"
    grace_period: int = 1
    reduction_factor: int = 2


@dataclass(frozen=True)
class ResourcesConfig:
    """Trials at a time and resources per trial (``cpus_per_trial`` None: CPUs / concurrency)."""

    max_concurrent: int = 1
    cpus_per_trial: float | None = None
    gpus_per_trial: float = 0.0


@dataclass(frozen=True)
class NtireConfig:
    """The ``ntire_score`` objective: the NTIRE ESR score relative to ``baseline`` (an anchor
    profiled in the same run), with weights of runtime, MACs and params."""

    baseline: str = "span_ch28"
    weights: Mapping[str, float] = field(default_factory=lambda: dict(NTIRE_WEIGHTS))


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
        return "ntire_score" in self.objectives or any(
            c.metric == "ntire_score" for c in self.constraints)

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
        return _build(merged)

    @classmethod
    def from_file(cls, path: str | Path) -> SearchConfig:
        return cls.from_dict(read_yaml_file(path, "search config"), source=str(path))

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
            res = replace(res, max_concurrent=_int("--max-concurrent", max_concurrent, 1))
        if cpus_per_trial is not None:
            res = replace(res, cpus_per_trial=_number("--cpus-per-trial", cpus_per_trial,
                                                      positive=True))
        if gpus_per_trial is not None:
            res = replace(res, gpus_per_trial=_number("--gpus-per-trial", gpus_per_trial))
        out = replace(self, resources=res)
        if seed is not None:
            out = replace(out, seed=_int("--seed", seed, 0))
        return out


def load_defaults() -> dict[str, Any]:
    return yaml.safe_load(DEFAULTS_PATH.read_text())


def _fields(obj: Any) -> dict[str, Any]:
    return {k: getattr(obj, k) for k in obj.__dataclass_fields__}


# ---------------------------------------------------------------------------- merge + build
def _merge(defaults: dict[str, Any], user: Mapping[str, Any], source: str) -> dict[str, Any]:
    out = copy.deepcopy(defaults)
    for key, value in user.items():
        if key not in defaults:
            raise InputError(f"{key}: unknown key in {source}; allowed: "
                             f"{', '.join(defaults)}{did_you_mean(key, defaults)}")
        if key in _MERGED and key != "space":
            if not isinstance(value, Mapping):
                raise InputError(f"{key}: expected a mapping, got {value!r}")
            out[key].update(copy.deepcopy(dict(value)))
        else:
            out[key] = copy.deepcopy(value)
    return out


def _build(d: dict[str, Any]) -> SearchConfig:
    from search_space.anchors import list_anchors
    from search_space.space import resolve_space

    known = list_anchors()
    anchors = _anchors(d["anchors"], known)
    constraints_text = d["constraints"] if d["constraints"] is not None else {}
    if not isinstance(constraints_text, Mapping):
        raise InputError(f"constraints: expected a mapping metric -> bound, "
                         f"got {constraints_text!r}")
    constraints = tuple(parse_constraint(f"constraints.{m}", m, t, known)
                        for m, t in constraints_text.items())
    space = resolve_space(d["space"] if d["space"] is not None else {})
    if not isinstance(space["scale"], int) or isinstance(space["scale"], bool):
        raise InputError(f"space.scale: expected one of 2, 3, 4 (a search runs at one scale), "
                         f"got {space['scale']!r}")
    objectives = _objectives(d["objectives"])
    profile = _profile(d["profile"])
    _check_measured(objectives, constraints, profile)
    _check_trained_anchors(constraints, anchors)
    return SearchConfig(
        objectives=objectives,
        anchors=anchors,
        constraints=constraints,
        proxy=_proxy(d["proxy"]),
        profile=profile,
        sampler=_sampler(d["sampler"]),
        scheduler=_scheduler(d["scheduler"]),
        seed=_int("seed", d["seed"], 0),
        resources=_resources(d["resources"]),
        space=space,
        constraints_text=dict(constraints_text),
        ntire=_ntire(d.get("ntire"), known),
    )


def _check_trained_anchors(constraints: tuple[Constraint, ...], anchors: tuple[str, ...]) -> None:
    """A quality floor relative to an anchor compares with that anchor's trial in this run."""
    for c in constraints:
        if c.stage == "trained" and c.anchor and c.anchor not in anchors:
            raise InputError(f"constraints.{c.metric}: {c.anchor!r} must be one of the run's "
                             f"anchors (it is trained under the same proxy); anchors: "
                             f"{', '.join(anchors) or 'none'}")


def _ntire(data: Any, known: list[str]) -> NtireConfig:
    data = _check_keys("ntire", data or {}, NtireConfig)
    baseline = data.get("baseline", NtireConfig.baseline)
    if baseline not in known:
        raise InputError(not_allowed("ntire.baseline", baseline, known))
    weights = data.get("weights") or {}
    if not isinstance(weights, Mapping) or set(weights) != set(NTIRE_WEIGHTS):
        raise InputError(f"ntire.weights: expected a mapping with exactly "
                         f"{', '.join(NTIRE_WEIGHTS)}, got {weights!r}")
    return NtireConfig(baseline, {k: _number(f"ntire.weights.{k}", v) for k, v in
                                  weights.items()})


def _check_measured(objectives: Mapping[str, str], constraints: tuple[Constraint, ...],
                    profile: ProfileConfig) -> None:
    """A metric that is optimised or constrained must be measured."""
    used = list(objectives) + [c.metric for c in constraints]
    for metric, switch in (("runtime_ms", "runtime"), ("ntire_score", "runtime"),
                           ("peak_memory_mb", "memory")):
        if metric in used and not getattr(profile, switch):
            raise InputError(f"profile.{switch}: must be true while {metric} is an objective "
                             f"or a constraint")


def _objectives(data: Any) -> dict[str, str]:
    if not isinstance(data, Mapping) or not data:
        raise InputError(f"objectives: expected a mapping metric -> max|min, got {data!r}")
    out = {}
    for name, direction in data.items():
        if name not in OBJECTIVES:
            raise InputError(not_allowed("objectives", name, OBJECTIVES))
        out[str(name)] = check_direction(f"objectives.{name}", direction)
    return out


def _anchors(data: Any, known: list[str]) -> tuple[str, ...]:
    if data is None:
        return ()
    if not isinstance(data, (list, tuple)):
        raise InputError(f"anchors: expected a list of anchor names, got {data!r}")
    for i, name in enumerate(data):
        if name not in known:
            raise InputError(not_allowed(f"anchors[{i}]", name, known))
    if len(set(data)) != len(data):
        raise InputError(f"anchors: each anchor at most once, got {list(data)}")
    return tuple(data)


def _check_keys(section: str, data: Any, cls: type) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise InputError(f"{section}: expected a mapping, got {data!r}")
    allowed = list(cls.__dataclass_fields__)
    for key in data:
        if key not in allowed:
            raise InputError(f"{section}.{key}: unknown key; allowed: {', '.join(allowed)}"
                             f"{did_you_mean(key, allowed)}")
    return data


def _int(path: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InputError(f"{path}: expected an integer >= {minimum}, got {value!r}")
    return value


def _number(path: str, value: Any, *, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 or (
            positive and value == 0):
        raise InputError(f"{path}: expected a number {'> 0' if positive else '>= 0'}, "
                         f"got {value!r}")
    return float(value)


def _bool(path: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise InputError(f"{path}: expected true or false, got {value!r}")
    return value


def _choice(path: str, value: Any, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise InputError(not_allowed(path, value, allowed))
    return value


def _proxy(data: Any) -> ProxyConfig:
    data = _check_keys("proxy", data, ProxyConfig)
    train = data.get("train") or {}
    if not isinstance(train, Mapping):
        raise InputError(f"proxy.train: expected a partial training config mapping, got {train!r}")
    for key in ("arch", "out_dir", "seed", "init"):
        if key in train:
            raise InputError(f"proxy.train.{key}: set by the search for every trial; remove it")
    predictor = data.get("predictor", "auto")
    if not isinstance(predictor, str) or not predictor:
        raise InputError(f"proxy.predictor: expected auto, none or a predictor.json path, "
                         f"got {predictor!r}")
    return ProxyConfig(preset=_choice("proxy.preset", data.get("preset"), PRESETS),
                       train=dict(train), predictor=predictor)


def _profile(data: Any) -> ProfileConfig:
    data = _check_keys("profile", data, ProfileConfig)
    hw = data.get("input_hw")
    if hw in (None, "auto"):
        hw = None
    elif (not isinstance(hw, (list, tuple)) or len(hw) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 8 for v in hw)):
        raise InputError(f"profile.input_hw: expected auto or [height, width] integers >= 8, "
                         f"got {hw!r}")
    return ProfileConfig(
        input_hw=None if hw is None else (hw[0], hw[1]),
        warmup=_int("profile.warmup", data.get("warmup"), 0),
        repeats=_int("profile.repeats", data.get("repeats"), 1),
        runtime=_bool("profile.runtime", data.get("runtime")),
        memory=_bool("profile.memory", data.get("memory")),
    )


def _sampler(data: Any) -> SamplerConfig:
    data = _check_keys("sampler", data, SamplerConfig)
    return SamplerConfig(
        type=_choice("sampler.type", data.get("type"), SAMPLERS),
        n_startup_trials=_int("sampler.n_startup_trials", data.get("n_startup_trials"), 0),
        population_size=_int("sampler.population_size", data.get("population_size"), 2),
    )


def _scheduler(data: Any) -> SchedulerConfig:
    data = _check_keys("scheduler", data, SchedulerConfig)
    return SchedulerConfig(
        type=_choice("scheduler.type", data.get("type"), SCHEDULERS),
        grace_period=_int("scheduler.grace_period", data.get("grace_period"), 1),
        reduction_factor=_int("scheduler.reduction_factor", data.get("reduction_factor"), 2),
    )


def _resources(data: Any) -> ResourcesConfig:
    data = _check_keys("resources", data, ResourcesConfig)
    cpus = data.get("cpus_per_trial")
    return ResourcesConfig(
        max_concurrent=_int("resources.max_concurrent", data.get("max_concurrent"), 1),
        cpus_per_trial=None if cpus is None else _number("resources.cpus_per_trial", cpus,
                                                          positive=True),
        gpus_per_trial=_number("resources.gpus_per_trial", data.get("gpus_per_trial")),
    )


@dataclass(frozen=True)
class Budget:
    """``--budget``: a number of sampled trials (anchors come on top) or a wall-clock time."""

    trials: int | None = None
    seconds: float | None = None

    _UNITS = {"s": 1, "m": 60, "h": 3600}

    @classmethod
    def parse(cls, text: str | int) -> Budget:
        """``8`` (trials, >= 1) or ``90s`` / ``45m`` / ``2h`` (wall clock)."""
        raw = str(text).strip()
        hint = ("expected a number of trials (e.g. 8) or a wall-clock duration "
                "(e.g. 90s, 45m, 2h)")
        if raw.isdigit():
            if int(raw) < 1:
                raise InputError(f"--budget: {hint}; a number of trials must be >= 1, got {raw!r}")
            return cls(trials=int(raw))
        number, unit = raw[:-1], raw[-1:].lower()
        try:
            value = float(number)
        except ValueError:
            value = None
        if unit not in cls._UNITS or value is None or not value > 0 or value != value:
            raise InputError(f"--budget: {hint}, got {raw!r}")
        return cls(seconds=value * cls._UNITS[unit])

    def to_dict(self) -> dict[str, Any]:
        return {"trials": self.trials, "seconds": self.seconds}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Budget:
        return cls(trials=data.get("trials"), seconds=data.get("seconds"))

    def describe(self) -> str:
        if self.trials is not None:
            return f"{self.trials} trials"
        return f"{self.seconds:g} s wall clock"
