"""The sections of a search config (``proxy:``, ``profile:``, ``sampler:`` ...): one frozen
dataclass each, validated field by field, registered with :func:`register_section`.

A new section is one dataclass here plus its ``SearchConfig`` field and its defaults in
``default_search.yaml``; merging, building and ``to_dict`` find it through :data:`SECTIONS`
(a test fails when the three disagree).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from nas.objectives import NTIRE_WEIGHTS
from nas.references import DEFAULT_CALIBRATION_REFS, MIN_FIT_REFERENCES
from search_space.anchors import list_anchors
from search_space.errors import DocumentError
from search_space.limits import PROFILE_RULES, input_hw_problem
from search_space.validation import Checked, Rule, rule, short

__all__ = ["SECTIONS", "register_section", "Section", "SearchConfigError", "ProxyConfig",
           "ProfileConfig", "SamplerConfig", "SchedulerConfig", "ResourcesConfig",
           "NtireConfig", "PRESETS", "SAMPLERS", "SCHEDULERS"]

PRESETS = ("auto", "cpu", "gpu")
SAMPLERS = ("tpe", "nsga2", "random")
SCHEDULERS = ("none", "asha")


class SearchConfigError(DocumentError):
    """An invalid search config; one line per problem, each naming its path."""

    kind = "search config"


SECTIONS: dict[str, type[Section]] = {}


class Section(Checked):
    """A config section: its fields validate themselves; ``to_dict`` gives plain data."""

    def to_dict(self) -> dict[str, Any]:
        return {f.name: copy.deepcopy(_plain(getattr(self, f.name))) for f in fields(self)}


def _plain(value: Any) -> Any:
    return dict(value) if isinstance(value, Mapping) else value


def register_section(cls: type[Section]) -> type[Section]:
    """Register a section under its ``_path`` (the YAML key)."""
    SECTIONS[cls._path] = cls
    return cls


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


def _calibrate(value: Any) -> str | None:
    """``auto``, ``off`` or ``{refs: N}`` with N >= the fewest references a fit is judged on."""
    if value in ("auto", "off"):
        return None
    refs = value.get("refs") if isinstance(value, Mapping) and set(value) == {"refs"} else None
    if isinstance(refs, int) and not isinstance(refs, bool) and refs >= MIN_FIT_REFERENCES:
        return None
    return (f"expected auto, off or {{refs: N}} with N >= {MIN_FIT_REFERENCES}, got "
            f"{short(value)}")


@register_section
@dataclass(frozen=True)
class ProxyConfig(Section):
    """Proxy training: ``preset`` of ``trainers.presets.PRESETS`` plus a partial TrainConfig,
    and the PSNR predictor that calibrates it (``auto``: the one shipped for this exact proxy,
    else one calibrated by the search itself; ``none``; or a path to a ``nas fidelity --fit``
    predictor.json). ``calibrate``: ``auto`` (the default number of references), ``off`` (the
    raw proxy PSNR when nothing shipped fits) or ``{refs: N}``."""

    _path = 'proxy'
    _error = SearchConfigError

    preset: str = field(default="auto", metadata=rule(kind=str, choices=PRESETS))
    train: Mapping[str, Any] = field(default_factory=dict, metadata=rule(
        kind=Mapping, convert=lambda v: {} if v is None else v, check=_proxy_train,
        expected="a partial training config mapping"))
    predictor: str = field(default="auto", metadata=rule(
        kind=str, expected="auto, none or a predictor.json path"))
    calibrate: Any = field(default="auto", metadata=rule(
        check=_calibrate, expected=f"auto, off or {{refs: N}} (N >= {MIN_FIT_REFERENCES})"))

    @property
    def calibration_refs(self) -> int | None:
        """How many references a search calibrates on (None: ``off``)."""
        if self.calibrate == "off":
            return None
        return DEFAULT_CALIBRATION_REFS if self.calibrate == "auto" else self.calibrate["refs"]

    def resolved_preset(self, gpus_per_trial: float) -> str:
        if self.preset != "auto":
            return self.preset
        return "gpu" if gpus_per_trial > 0 else "cpu"


@register_section
@dataclass(frozen=True)
class ProfileConfig(Section):
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

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out["input_hw"] = "auto" if self.input_hw is None else list(self.input_hw)
        return out

    def resolved_input_hw(self, gpus_per_trial: float) -> tuple[int, int]:
        if self.input_hw is not None:
            return self.input_hw
        return (256, 256) if gpus_per_trial > 0 else (128, 128)


@register_section
@dataclass(frozen=True)
class SamplerConfig(Section):
    """Optuna sampler. Option: tpe | nsga2 | random."""

    _path = 'sampler'
    _error = SearchConfigError

    type: str = field(default="tpe", metadata=rule(kind=str, choices=SAMPLERS))
    n_startup_trials: int = field(default=10, metadata=rule(kind=int, low=0))
    population_size: int = field(default=16, metadata=rule(kind=int, low=2))


@register_section
@dataclass(frozen=True)
class SchedulerConfig(Section):
    """Trial scheduler. Option: none | asha (on validation PSNR)."""

    _path = 'scheduler'
    _error = SearchConfigError

    type: str = field(default="none", metadata=rule(kind=str, choices=SCHEDULERS))
    grace_period: int = field(default=1, metadata=rule(kind=int, low=1))
    reduction_factor: int = field(default=2, metadata=rule(kind=int, low=2))


@register_section
@dataclass(frozen=True)
class ResourcesConfig(Section):
    """Trials at a time and resources per trial (``cpus_per_trial`` None: CPUs / concurrency)."""

    _path = 'resources'
    _error = SearchConfigError

    max_concurrent: int = field(default=1, metadata=rule(kind=int, low=1, high=4096))
    cpus_per_trial: float | None = field(default=None, metadata=rule(
        kind=float, low=0, low_open=True, optional=True))
    gpus_per_trial: float = field(default=0.0, metadata=rule(kind=float, low=0))


@register_section
@dataclass(frozen=True)
class NtireConfig(Section):
    """The ``ntire_score`` objective: the NTIRE ESR score relative to ``baseline`` (an anchor
    profiled in the same run), with weights of runtime, MACs and params."""

    _path = 'ntire'
    _error = SearchConfigError

    baseline: str = field(default="span_ch28", metadata=rule(kind=str, choices=_anchor_names))
    weights: Mapping[str, float] = field(default_factory=lambda: dict(NTIRE_WEIGHTS),
                                         metadata=rule(kind=Mapping, check=_ntire_weights))
