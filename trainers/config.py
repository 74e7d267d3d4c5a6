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

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from search_space.errors import InputError, SpecError, did_you_mean, not_allowed, read_yaml_file
from search_space.spec import ArchSpec

__all__ = ["TrainConfig", "DataConfig", "OptimConfig", "ScheduleConfig", "DistillConfig",
           "ConfigError", "resolve_arch", "LOSSES", "SCHEDULES"]

LOSSES = ("l1", "l2")
SCHEDULES = ("cosine", "step", "constant")


class ConfigError(SpecError):
    """An invalid training config; one line per problem, each naming its path."""


# ---------------------------------------------------------------------------- checks
# A check takes the value and returns (converted value, problem or None).
Check = Callable[[Any], tuple[Any, str | None]]
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def _number(low: float | None = None, *, strict_low: bool = False,
            high: float | None = None) -> Check:
    bound = ""
    if low is not None:
        bound = f" {'>' if strict_low else '>='} {low:g}"
    if high is not None:
        bound += f"{' and' if bound else ''} <= {high:g}"

    def check(value: Any) -> tuple[Any, str | None]:
        # PyYAML reads 5e-4 (no dot) as a string: accept numeric strings.
        if isinstance(value, str) and _NUMBER.match(value.strip()):
            value = float(value)
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and \
            math.isfinite(value)
        if ok and low is not None:
            ok = value > low if strict_low else value >= low
        if ok and high is not None:
            ok = value <= high
        return (float(value) if ok else value), (None if ok else
                                                 f"expected a number{bound}, got {value!r}")
    return check


def _integer(low: int) -> Check:
    def check(value: Any) -> tuple[Any, str | None]:
        ok = isinstance(value, int) and not isinstance(value, bool) and value >= low
        return value, None if ok else f"expected an integer >= {low}, got {value!r}"
    return check


def _optional(inner: Check) -> Check:
    def check(value: Any) -> tuple[Any, str | None]:
        return (None, None) if value is None else inner(value)
    return check


def _boolean(value: Any) -> tuple[Any, str | None]:
    return value, None if isinstance(value, bool) else f"expected true or false, got {value!r}"


def _text(value: Any) -> tuple[Any, str | None]:
    ok = isinstance(value, str) and value.strip() != ""
    return value, None if ok else f"expected a non-empty string, got {value!r}"


def _one_of(allowed: tuple) -> Check:
    def check(value: Any) -> tuple[Any, str | None]:
        if isinstance(value, str):
            value = value.lower()
        return value, None if value in allowed else not_allowed("", value, allowed)[2:]
    return check


def _string_list(value: Any) -> tuple[Any, str | None]:
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    ok = isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value)
    return (tuple(value) if ok else value), None if ok else \
        f"expected a dataset name/folder or a list of them, got {value!r}"


def _betas(value: Any) -> tuple[Any, str | None]:
    ok = isinstance(value, (list, tuple)) and len(value) == 2
    if ok:
        converted = [_number(0.0, high=1.0)(v) for v in value]
        ok = all(problem is None and v < 1 for v, problem in converted)
        value = tuple(v for v, _ in converted) if ok else value
    return value, None if ok else f"expected two numbers in [0, 1), got {value!r}"


def _channels_last(value: Any) -> tuple[Any, str | None]:
    ok = value == "auto" or isinstance(value, bool)
    return value, None if ok else f"expected auto, true or false, got {value!r}"


def _device(value: Any) -> tuple[Any, str | None]:
    ok = isinstance(value, str) and re.fullmatch(r"auto|cpu|cuda(:\d+)?", value) is not None
    return value, None if ok else f"expected auto, cpu, cuda or cuda:N, got {value!r}"


def _mapping(value: Any) -> tuple[Any, str | None]:
    ok = isinstance(value, Mapping)
    return (dict(value) if ok else value), None if ok else f"expected a mapping, got {value!r}"


def _checked(check: Check) -> Any:
    """Field metadata: how :meth:`TrainConfig.from_dict` validates and converts the field."""
    return {"check": check}


# ---------------------------------------------------------------------------- sections
@dataclass(frozen=True)
class DataConfig:
    """Training data and validation sets.

    Args:
        train: Bundled set (SunHays80) or folder of HR images (DIV2K layout accepted).
        val: Validation sets (bundled Set5, Set14, or folders); empty: no validation.
        lr_patch: LR patch side (HR patch = lr_patch * scale).
        batch_size: Patches per iteration.
        workers: DataLoader worker processes (0: load in the training process).
        augment: Random flips and 90-degree rotations.
        lr_dir: Optional folder of pre-made LR images (``<name>x<scale>.png``).
    """

    train: str = field(default="SunHays80", metadata=_checked(_text))
    val: tuple[str, ...] = field(default=("Set5", "Set14"), metadata=_checked(_string_list))
    lr_patch: int = field(default=24, metadata=_checked(_integer(2)))
    batch_size: int = field(default=8, metadata=_checked(_integer(1)))
    workers: int = field(default=0, metadata=_checked(_integer(0)))
    augment: bool = field(default=True, metadata=_checked(_boolean))
    lr_dir: str | None = field(default=None, metadata=_checked(_optional(_text)))


@dataclass(frozen=True)
class OptimConfig:
    """Adam settings."""

    lr: float = field(default=5.0e-4, metadata=_checked(_number(0.0, strict_low=True)))
    betas: tuple[float, float] = field(default=(0.9, 0.999), metadata=_checked(_betas))
    eps: float = field(default=1.0e-8, metadata=_checked(_number(0.0, strict_low=True)))
    weight_decay: float = field(default=0.0, metadata=_checked(_number(0.0)))


@dataclass(frozen=True)
class ScheduleConfig:
    """Learning-rate schedule over iterations.

    Args:
        type: Option: cosine (to ``eta_min`` at the last iteration) | step (times ``gamma``
            every ``step_iters``) | constant.
        eta_min: Final learning rate of the cosine schedule.
        step_iters: Period of the step schedule.
        gamma: Factor of the step schedule.
        warmup_iters: Linear warm-up from 0 over this many iterations (all schedules).
    """

    type: str = field(default="cosine", metadata=_checked(_one_of(SCHEDULES)))
    eta_min: float = field(default=1.0e-7, metadata=_checked(_number(0.0)))
    step_iters: int = field(default=200000, metadata=_checked(_integer(1)))
    gamma: float = field(default=0.5, metadata=_checked(_number(0.0, strict_low=True, high=1.0)))
    warmup_iters: int = field(default=0, metadata=_checked(_integer(0)))


@dataclass(frozen=True)
class DistillConfig:
    """Output distillation: ``pixel_weight * loss(S, HR) + weight * L1(S, T(LR))``.

    Args:
        teacher: Anchor with official weights (e.g. ``rlfn``) or an esrnas checkpoint path.
        weight: Weight of the distillation term.
        pixel_weight: Weight of the ground-truth term.
    """

    teacher: str = field(default="", metadata=_checked(_text))
    weight: float = field(default=1.0, metadata=_checked(_number(0.0)))
    pixel_weight: float = field(default=1.0, metadata=_checked(_number(0.0)))


_SECTIONS = {"data": DataConfig, "optim": OptimConfig, "schedule": ScheduleConfig,
             "distill": DistillConfig}


@dataclass(frozen=True)
class TrainConfig:
    """A complete training run (see the module docstring for the YAML form)."""

    arch: ArchSpec
    scale: int | None = field(default=None, metadata=_checked(_optional(_one_of((2, 3, 4)))))
    data: DataConfig = DataConfig()
    optim: OptimConfig = OptimConfig()
    schedule: ScheduleConfig = ScheduleConfig()
    iterations: int = field(default=600, metadata=_checked(_integer(1)))
    eval_every: int = field(default=200, metadata=_checked(_integer(0)))
    checkpoint_every: int = field(default=200, metadata=_checked(_integer(0)))
    loss: str = field(default="l1", metadata=_checked(_one_of(LOSSES)))
    distill: DistillConfig | None = None
    seed: int = field(default=0, metadata=_checked(_integer(0)))
    device: str = field(default="auto", metadata=_checked(_device))
    amp: bool = field(default=False, metadata=_checked(_boolean))
    channels_last: str | bool = field(default="auto", metadata=_checked(_channels_last))
    threads: int | None = field(default=None, metadata=_checked(_optional(_integer(1))))
    init: str | None = field(default=None, metadata=_checked(_optional(_text)))
    out_dir: str = field(default="", metadata=_checked(_text))
    picked: Mapping[str, Any] = field(default_factory=dict, metadata=_checked(_mapping))

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
        values = _check_fields(cls, data, "", problems, skip=("arch", *_SECTIONS))
        for name, section in _SECTIONS.items():
            raw = data.get(name, {} if name != "distill" else None)
            if raw is None and name == "distill":
                values[name] = None
            elif not isinstance(raw, Mapping):
                problems.append(f"{name}: expected a mapping, got {raw!r}")
            else:
                sub = _check_fields(section, raw, f"{name}.", problems)
                if name == "distill" and "teacher" not in raw:
                    problems.append("distill.teacher: required (an anchor with official "
                                    "weights or a checkpoint path)")
                values[name] = section(**sub)
        if "arch" not in data:
            problems.append("arch: required (an anchor name, a spec YAML path or a mapping)")
        else:
            values["arch"] = _arch(data["arch"], base_dir, problems)
        problems += _check_files(values)
        if problems:
            raise ConfigError(problems, f"training config {source}")
        if not values.get("out_dir"):
            spec = values["arch"]
            values["out_dir"] = f"runs/train/{spec.name or spec.arch_id()}"
        return cls(**values)

    @classmethod
    def from_file(cls, path: str | Path) -> TrainConfig:
        path = Path(path)
        data = read_yaml_file(path, "training config")
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
                    g.name: _plain(getattr(value, g.name)) for g in fields(value)}
            out[f.name] = _plain(value)
        return out

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


def resolve_arch(value: Any, base_dir: str | Path | None = None) -> ArchSpec:
    """``arch`` of a config: anchor name, spec/arch YAML path, or an inline mapping."""
    problems: list[str] = []
    spec = _arch(value, base_dir, problems)
    if problems:
        raise ConfigError(problems, "training config")
    return spec


# ---------------------------------------------------------------------------- helpers
def _check_fields(cls: type, data: Mapping, prefix: str, problems: list[str],
                  skip: tuple[str, ...] = ()) -> dict[str, Any]:
    known = [f.name for f in fields(cls)]
    for key in data:
        if key not in known:
            problems.append(f"{prefix}{key}: unknown key; allowed: {', '.join(known)}"
                            f"{did_you_mean(key, known)}")
    out = {}
    for f in fields(cls):
        if f.name in skip or f.name not in data:
            continue
        value, problem = f.metadata["check"](data[f.name])
        if problem:
            problems.append(f"{prefix}{f.name}: {problem}")
        out[f.name] = value
    return out


def _arch(value: Any, base_dir: str | Path | None, problems: list[str]) -> ArchSpec | None:
    from search_space.anchors import get_anchor, list_anchors

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


def _check_files(values: Mapping[str, Any]) -> list[str]:
    """Data folders, init checkpoint and teacher exist (before anything is written); values that
    already failed their type check are skipped."""
    from search_space.anchors import get_anchor, list_anchors
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


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
