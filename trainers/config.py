"""TrainConfig: the validated training recipe of ``nas train`` and of every proxy trial (YAML).

::

    arch: fmen_s                 # anchor name | path to arch.yaml / spec.yaml | inline ArchSpec
    scale: null                  # optional override of the spec's scale
    data: {train: SunHays80, val: [Set5, Set14], lr_patch: 24, batch_size: 8, workers: 0,
           augment: true, lr_dir: null}
    optim: {lr: 5.0e-4, betas: [0.9, 0.999], eps: 1.0e-8, weight_decay: 0.0}
    schedule: {type: cosine, eta_min: 1.0e-7, step_iters: 200000, gamma: 0.5, warmup_iters: 0}
    iterations: 600
    eval_every: 200              # validation every N iterations and at the end (0: end only)
    checkpoint_every: 200        # checkpoint every N iterations and at the end (0: end only)
    loss: l1                     # l1 | l2
    distill: null                # {teacher: <anchor with official weights | checkpoint>,
                                 #  weight: 1.0, pixel_weight: 1.0}
    seed: 0
    device: auto                 # auto | cpu | cuda | cuda:N
    amp: false                   # CUDA only: bf16 autocast (fp16 + grad scaling without bf16)
    channels_last: auto          # auto | true | false (auto: see trainers.loop.use_channels_last)
    threads: null                # CPU threads (torch.set_num_threads)
    init: null                   # checkpoint to initialise the weights from
    out_dir: runs/train/<name>
    picked: {}                   # free-form metadata (export records the proxy metrics here)

Every key is optional except ``arch``. Validation is strict and collects every problem: an
unknown key, a wrong type or a missing file raises one :class:`ConfigError` whose lines name the
path (``optim.lr: expected a number > 0, got 'fast'``). Relative paths are taken from the
current directory (an ``arch`` file is also looked up next to the config file).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from search_space import choices as C
from search_space.anchors import get_anchor, list_anchors
from search_space.errors import (
    DocumentError,
    InputError,
    SpecError,
    did_you_mean,
)
from search_space.io import plain
from search_space.limits import min_input_problem
from search_space.spec import ArchSpec
from search_space.validation import (
    Checked,
    Rule,
    check_fields,
    check_instance,
    raise_problems,
    rule,
    short,
)
from search_space.yaml_io import read_yaml

__all__ = ["TrainConfig", "DataConfig", "OptimConfig", "ScheduleConfig", "DistillConfig",
           "ConfigError", "resolve_arch", "partial_value", "DEVICE_RULE", "LOSSES", "SCHEDULES"]

LOSSES = ("l1", "l2")
SCHEDULES = ("cosine", "step", "constant")


class ConfigError(DocumentError):
    """An invalid training config; one line per problem, each naming its path."""

    kind = "training config"


# Documented maxima (docs/validation.md): beyond them a run cannot fit a machine anyway.
MAX_ITERATIONS = 10_000_000
MAX_LR_PATCH = 512
MAX_BATCH = 1024


def _string_list(value: Any) -> Any:
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    ok = isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value)
    return tuple(value) if ok else value


def _all_str(value: Any) -> str | None:
    return None if all(isinstance(v, str) for v in value) else "expected names or folders"


def _betas(value: Any) -> Any:
    if isinstance(value, (list, tuple)) and len(value) == 2:
        numbers = [Rule(kind=float, low=0, high=1).apply("", v) for v in value]
        if all(p is None and v < 1 for v, p in numbers):
            return tuple(v for v, _ in numbers)
    return value


def _is_betas(value: Any) -> str | None:
    return None if isinstance(value, tuple) and all(isinstance(v, float) for v in value) else \
        f"expected two numbers in [0, 1), got {short(value)}"


def _channels_last(value: Any) -> str | None:
    ok = value == "auto" or isinstance(value, bool)
    return None if ok else f"expected auto, true or false, got {short(value)}"


def _device(value: str) -> str | None:
    ok = re.fullmatch(r"auto|cpu|cuda(:\d+)?", value, re.ASCII) is not None
    return None if ok else f"expected auto, cpu, cuda or cuda:N, got {short(value)}"


def _as_dict(value: Any) -> Any:
    return dict(value) if isinstance(value, Mapping) else value


# Also the rule of every --device flag.
DEVICE_RULE = Rule(kind=str, check=_device, lower=True, expected="auto, cpu, cuda or cuda:N")


def _positive(**kwargs: Any) -> dict[str, Rule]:
    return rule(kind=float, low=0, low_open=True, **kwargs)


# ---------------------------------------------------------------------------- sections
@dataclass(frozen=True)
class DataConfig(Checked):
    """Training data and validation sets.

    Args:
        train: Bundled set (SunHays80) or folder of HR images (DIV2K layout accepted).
        val: Validation sets (bundled Set5, Set14, or folders); empty: no validation.
        lr_patch: LR patch side (HR patch = lr_patch * scale).
        batch_size: Patches per iteration.
        workers: DataLoader worker processes (0: load in the training process).
        augment: Random flips and 90-degree rotations.
        lr_dir: Optional folder of pre-made LR images (``<name>x<scale>.png``).
        prepare: A folder of images is prepared into the cache on first use and read from its
            memory-mapped store (``trainers.folder_cache``): ``auto`` (a user's folder, not the
            bundled sets), ``true`` (any folder) or ``false`` (read the images directly).
    """

    _path = 'data'
    _error = ConfigError

    train: str = field(default="SunHays80", metadata=rule(kind=str))
    val: tuple[str, ...] = field(default=("Set5", "Set14"), metadata=rule(
        kind=tuple, convert=_string_list, check=_all_str,
        expected="a dataset name/folder or a list of them"))
    lr_patch: int = field(default=24, metadata=rule(kind=int, low=2, high=MAX_LR_PATCH))
    batch_size: int = field(default=8, metadata=rule(kind=int, low=1, high=MAX_BATCH))
    workers: int = field(default=0, metadata=rule(kind=int, low=0, high=256))
    augment: bool = field(default=True, metadata=rule(kind=bool))
    lr_dir: str | None = field(default=None, metadata=rule(kind=str, optional=True))
    prepare: str | bool = field(default="auto", metadata=rule(choices=("auto", True, False)))


@dataclass(frozen=True)
class OptimConfig(Checked):
    """Adam settings."""

    _path = 'optim'
    _error = ConfigError

    lr: float = field(default=5.0e-4, metadata=_positive())
    betas: tuple[float, float] = field(default=(0.9, 0.999),
                                       metadata=rule(convert=_betas, check=_is_betas))
    eps: float = field(default=1.0e-8, metadata=_positive())
    weight_decay: float = field(default=0.0, metadata=rule(kind=float, low=0))


@dataclass(frozen=True)
class ScheduleConfig(Checked):
    """Learning-rate schedule over iterations.

    Args:
        type: Option: cosine (to ``eta_min`` at the last iteration) | step (times ``gamma``
            every ``step_iters``) | constant.
        eta_min: Final learning rate of the cosine schedule.
        step_iters: Period of the step schedule.
        gamma: Factor of the step schedule.
        warmup_iters: Linear warm-up from 0 over this many iterations (all schedules).
    """

    _path = 'schedule'
    _error = ConfigError

    type: str = field(default="cosine", metadata=rule(kind=str, choices=SCHEDULES,
                                                            lower=True))
    eta_min: float = field(default=1.0e-7, metadata=rule(kind=float, low=0))
    step_iters: int = field(default=200000, metadata=rule(kind=int, low=1))
    gamma: float = field(default=0.5, metadata=_positive(high=1.0))
    warmup_iters: int = field(default=0, metadata=rule(kind=int, low=0))


@dataclass(frozen=True)
class DistillConfig(Checked):
    """Output distillation: ``pixel_weight * loss(S, HR) + weight * L1(S, T(LR))``.

    Args:
        teacher: Anchor with official weights (e.g. ``rlfn``) or an esrnas checkpoint path.
        weight: Weight of the distillation term.
        pixel_weight: Weight of the ground-truth term.
    """

    _path = 'distill'
    _error = ConfigError

    teacher: str = field(default="", metadata=rule(kind=str))
    weight: float = field(default=1.0, metadata=rule(kind=float, low=0))
    pixel_weight: float = field(default=1.0, metadata=rule(kind=float, low=0))


_SECTIONS = {"data": DataConfig, "optim": OptimConfig, "schedule": ScheduleConfig,
             "distill": DistillConfig}


@dataclass(frozen=True)
class TrainConfig:
    """A complete training run (see the module docstring for the YAML form)."""

    arch: ArchSpec
    scale: int | None = field(default=None, metadata=rule(kind=int, choices=C.SCALES,
                                                             optional=True))
    data: DataConfig = DataConfig()
    optim: OptimConfig = OptimConfig()
    schedule: ScheduleConfig = ScheduleConfig()
    iterations: int = field(default=600, metadata=rule(kind=int, low=1,
                                                       high=MAX_ITERATIONS))
    eval_every: int = field(default=200, metadata=rule(kind=int, low=0))
    checkpoint_every: int = field(default=200, metadata=rule(kind=int, low=0))
    loss: str = field(default="l1", metadata=rule(kind=str, choices=LOSSES, lower=True))
    distill: DistillConfig | None = None
    seed: int = field(default=0, metadata=rule(kind=int, low=0))
    device: str = field(default="auto", metadata={"rule": DEVICE_RULE})
    amp: bool = field(default=False, metadata=rule(kind=bool))
    channels_last: str | bool = field(default="auto", metadata=rule(check=_channels_last))
    threads: int | None = field(default=None, metadata=rule(kind=int, low=1,
                                                                high=4096, optional=True))
    init: str | None = field(default=None, metadata=rule(kind=str, optional=True))
    out_dir: str = field(default="", metadata=rule(kind=str))
    picked: Mapping[str, Any] = field(default_factory=dict, metadata=rule(
        kind=Mapping, convert=_as_dict, expected="a mapping"))

    def __post_init__(self) -> None:
        if not isinstance(self.arch, ArchSpec):
            raise ConfigError([f"arch: expected an ArchSpec, got {short(self.arch)}"])
        raise_problems(check_instance(self), ConfigError)

    @property
    def spec(self) -> ArchSpec:
        """The architecture at the configured scale."""
        return self.arch if self.scale is None else self.arch.with_scale(self.scale)

    # ------------------------------------------------------------------------ I/O
    @classmethod
    def from_dict(cls, data: Any, *, source: str = "config",
                  base_dir: str | Path | None = None) -> TrainConfig:
        """Validate a mapping (e.g. parsed YAML); raises one :class:`ConfigError` listing all
        problems.

        Args:
            data: The mapping; only ``arch`` is required.
            source: Where it came from (a file name), used in messages.
            base_dir: Folder of the config file, where a relative ``arch`` path is also tried.
        """
        if not isinstance(data, Mapping):
            raise ConfigError([f"expected a mapping with at least 'arch', got "
                               f"{type(data).__name__}"], f"training config {source}")
        problems: list[str] = []
        values = check_fields(cls, data, "", problems, skip=("arch", *_SECTIONS))
        for name, section in _SECTIONS.items():
            raw = data.get(name, {} if name != "distill" else None)
            if raw is None and name == "distill":
                values[name] = None
            elif not isinstance(raw, Mapping):
                problems.append(f"{name}: expected a mapping, got {raw!r}")
            else:
                before = len(problems)
                sub = check_fields(section, raw, name, problems)
                if name == "distill" and "teacher" not in raw:
                    problems.append("distill.teacher: required (an anchor with official "
                                    "weights or a checkpoint path)")
                if len(problems) == before:  # a section is built only from valid values
                    values[name] = section(**sub)
        if "arch" not in data:
            problems.append("arch: required (an anchor name, a spec YAML path or a mapping)")
        else:
            values["arch"] = _arch(data["arch"], base_dir, problems)
        problems += _check_files(values)
        if not problems:
            problems += _check_patch(values)
        if problems:
            raise ConfigError(problems, f"training config {source}")
        if not values.get("out_dir"):
            spec = values["arch"]
            values["out_dir"] = f"runs/train/{spec.name or spec.arch_id()}"
        return cls(**values)

    @classmethod
    def from_file(cls, path: str | Path) -> TrainConfig:
        path = Path(path)
        data = read_yaml(path, "training config")
        return cls.from_dict(data, source=str(path), base_dir=path.parent)

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form with the spec inline; ``from_dict(to_dict())`` gives an equal config."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "arch":
                value = value.to_dict()
            elif f.name in _SECTIONS:
                value = None if value is None else {
                    g.name: plain(getattr(value, g.name)) for g in fields(value)}
            out[f.name] = plain(value)
        return out

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


def partial_value(partial: Mapping[str, Any], path: str) -> Any:
    """The value at ``path`` (``"device"``, ``"data.lr_patch"``) of a partial training config
    (a preset, ``proxy.train``), or the TrainConfig default where it is left out."""
    section, _, name = path.rpartition(".")
    values = (partial.get(section) or {}) if section else partial
    if name in values:
        return values[name]
    spec = {f.name: f for f in fields(_SECTIONS[section] if section else TrainConfig)}[name]
    return spec.default_factory() if spec.default is MISSING else spec.default


def resolve_arch(value: Any, base_dir: str | Path | None = None) -> ArchSpec:
    """``arch`` of a config: anchor name, spec/arch YAML path, or an inline mapping."""
    problems: list[str] = []
    spec = _arch(value, base_dir, problems)
    if problems:
        raise ConfigError(problems, "training config")
    return spec


# ---------------------------------------------------------------------------- helpers
def _arch(value: Any, base_dir: str | Path | None, problems: list[str]) -> ArchSpec | None:
    try:
        if isinstance(value, Mapping):
            return ArchSpec.from_dict(dict(value), what="arch")
        if not isinstance(value, str):
            problems.append(f"arch: expected an anchor name, a spec YAML path or a mapping, "
                            f"got {value!r}")
            return None
        if value in list_anchors():
            return get_anchor(value).spec
        path = Path(value).expanduser()
        if not path.exists() and base_dir is not None and (Path(base_dir) / path).exists():
            path = Path(base_dir) / path
        if path.exists():
            return ArchSpec.from_file(path)
        anchors = list_anchors()
        problems.append(f"arch: {value!r} is neither an anchor nor an existing spec file; "
                        f"anchors: {', '.join(anchors)}{did_you_mean(value, anchors)}")
    except SpecError as e:
        problems += [f"arch.{p}" if not p.startswith("expected") else f"arch: {p}"
                     for p in e.problems]
    except InputError as e:
        problems.append(f"arch: {e}")
    return None


def _check_patch(values: Mapping[str, Any]) -> list[str]:
    """The LR patch must be large enough for the network (ESA and MAB need >= 15 / 13 px)."""
    spec = values["arch"]
    if values.get("scale") is not None:
        spec = spec.with_scale(values["scale"])
    patch = (values.get("data") or DataConfig()).lr_patch
    problem = min_input_problem(spec, (patch, patch))
    return [f"data.lr_patch: {patch} is too small for {spec.name or 'this architecture'} "
            f"({problem})"] if problem else []


def _check_files(values: Mapping[str, Any]) -> list[str]:
    """Data folders, init checkpoint and teacher exist (before anything is written); values that
    already failed their type check are skipped."""
    from trainers.data import resolve_dataset

    problems = []
    data: DataConfig = values.get("data") or DataConfig()
    datasets = [("data.train", data.train)]
    if isinstance(data.val, tuple):
        datasets += [(f"data.val[{i}]", v) for i, v in enumerate(data.val)]
    for path, name in datasets:
        try:
            if isinstance(name, str):
                resolve_dataset(name)
        except InputError as e:
            problems.append(f"{path}: {e}")
    if isinstance(data.lr_dir, str) and not Path(data.lr_dir).expanduser().is_dir():
        problems.append(f"data.lr_dir: {data.lr_dir}: folder not found")
    init = values.get("init")
    if isinstance(init, str) and not Path(init).expanduser().is_file():
        problems.append(f"init: {init}: checkpoint file not found")
    distill = values.get("distill")
    teacher = distill.teacher if distill is not None else None
    if not isinstance(teacher, str) or not teacher:
        return problems
    if teacher in list_anchors():
        if not get_anchor(teacher).has_official_weights:
            with_weights = [a for a in list_anchors() if get_anchor(a).has_official_weights]
            problems.append(f"distill.teacher: anchor {teacher!r} has no official weights; "
                            f"anchors with official weights: {', '.join(with_weights)}")
    elif not Path(teacher).expanduser().is_file():
        problems.append(f"distill.teacher: {teacher!r} is neither an anchor nor an existing "
                        "checkpoint file")
    return problems


