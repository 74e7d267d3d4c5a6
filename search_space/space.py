"""The define-by-run search space: ``trial.suggest_*`` calls -> parameters -> ArchSpec + hparams.

The space is described by a plain mapping (the ``space:`` section of a search config; defaults in
:data:`DEFAULT_SPACE`). Every entry is a *dimension*, written as one of:

- a scalar: frozen (recorded as a one-choice categorical, so that every trial's parameters alone
  rebuild its spec);
- a list: categorical choices;
- ``{low, high}`` with optional ``step`` / ``log``: an integer range when ``low``, ``high`` (and
  ``step``) are integers, a float range otherwise.

The body is ``body.depth`` blocks of one family ``body.block`` (and, with ``stages: 2``, then
``body2.depth`` blocks of a family ``body2.block`` and a width ``body2.channels`` of their own),
optionally with an attention stage (``attention.type``) after every ``attention.every`` blocks
of a stage, then the global choices (fusion, global residual, last conv, activation, conv unit,
upsampler and its nearest-neighbour branch, input skip).
Parameter names are stable and hierarchical; a conditional parameter is prefixed by the choice it
depends on (``body.rlfb.esa``, ``attention.hfab.num_erb``, ``conv.rrrb.expand_ratio``,
``train.distill.weight``) so that each name keeps a single distribution. Allowed values come from
the block / conv-unit registry (``choices=``) and :mod:`search_space.choices`; a space may narrow
them but not add to them.

Only ``trial.suggest_*`` calls are made (duck-typed: an Optuna ``Trial``, ``FixedTrial`` or Ray's
captor), no torch: sampling stays fast and importable without optuna.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

from search_space import choices as C
from search_space.anchors import get_anchor, list_anchors
from search_space.errors import DocumentError, InputError, did_you_mean, not_allowed
from search_space.registry import get_block, get_conv_unit, list_blocks, list_conv_units
from search_space.spec import MAX_CHANNELS, MAX_REPEAT, ArchSpec
from search_space.validation import Rule, raise_problems, short, unknown_keys

__all__ = [
    "DEFAULT_SPACE",
    "attention_stages",
    "suggest_arch",
    "spec_from_params",
    "resolve_space",
    "check_space",
    "SpaceError",
]


class SpaceError(DocumentError):
    """An invalid search space; one line per problem (``space.<path>: ...``)."""

    kind = "search space"

# Block options governed by the spec-wide ``activation`` / ``conv`` dimensions instead.
_GLOBAL_OPTIONS = ("act", "conv")
# ``activation: default`` keeps each block's paper activation; ``conv: plain`` is the plain 3x3.
DEFAULT_ACTIVATION = "default"
# Distillation teacher when the space searches distillation without naming one (official x4
# weights; the proxy pilot measured +0.1 dB from it at 600 iterations).
DEFAULT_TEACHER = "rlfn"

DEFAULT_SPACE: dict[str, Any] = {
    "scale": 4,
    "input_range": 255.0,
    # Sized for the CPU default run (nas launch --budget 8 in < 10 min on 2 cores): mean training
    # cost of a sample ~ the anchors'; widen both for GPU searches.
    "channels": {"low": 16, "high": 48, "step": 8},
    "depth": {"low": 2, "high": 6},
    # Body stages, each with its own block family, depth, options and width (the first at the
    # trunk's ``channels``, a second at ``body2.channels`` from the same dimension, between 1x1
    # projections): 1, 2 or [1, 2]. With 1 nothing is sampled for a second stage.
    "stages": 1,
    # ``own``: a second stage samples its width; ``shared``: it keeps the trunk's (as measured
    # before stage widths existed, docs/case_study_ntire.md).
    "stage_width": "own",
    # Block families (registry names); per family, dimensions for its options. Options with
    # registry ``choices`` are searched over all of them unless narrowed here; other options
    # (e.g. ``mid_channels``) keep the block default unless given a dimension here.
    "blocks": {"erb": {}, "imdb": {}, "nrb": {}, "rb": {}, "rfdb": {}, "rlfb": {},
               "spab": {}, "spabv2": {}, "reecb": {}},
    "attention": {"type": ["none", "esa", "cca", "hfab"], "every": {"low": 1, "high": 4},
                  "esa": {}, "cca": {}, "hfab": {"num_erb": [1, 2]}},
    "fusion": ["sequential", "aggregate", "hff", "bff", "mbff", "span"],
    "global_residual": [True, False],
    "last_conv": [True, False],
    "activation": [DEFAULT_ACTIVATION, "relu", "lrelu0.05", "lrelu0.1", "gelu", "silu"],
    # Conv unit of every block with a ``conv`` option; ``rrrb`` (FMEN) and ``conv3xc`` (SPAN) =
    # re-parameterisable training.
    "conv": {"type": ["plain", "rrrb", "conv3xc"], "rrrb": {"expand_ratio": [2]},
             "conv3xc": {"gain": [2]}},
    "upsampler": ["pixelshuffle", "pixelshuffle_multi"],
    # SPAN-F's learnable nearest-neighbour branch on a pixelshuffle tail.
    "near": [False, True],
    "input_skip": [False, True],
    # Training hyperparameters; null = the proxy preset's value (not searched).
    "train": {"lr": None, "batch_size": None, "lr_patch": None,
              "distill": None, "teacher": None, "distill_weight": None},
}

_TOP_KEYS = tuple(DEFAULT_SPACE)
# parameter prefixes of the body stages, in order
STAGE_PREFIXES = ("body", "body2")
STAGE_WIDTHS = ("own", "shared")
_RANGE_KEYS = ("low", "high", "step", "log")
_TRAIN_KEYS = tuple(DEFAULT_SPACE["train"])


def attention_stages() -> list[str]:
    """Blocks that may be inserted as their own attention stage (registry tag ``attention``)."""
    import search_space.blocks  # noqa: F401  (registers the catalogue)

    return list_blocks(tag="attention")


# ---------------------------------------------------------------------------- dimensions
def _is_range(dim: Any) -> bool:
    return isinstance(dim, Mapping) and "low" in dim


def _suggest(trial: Any, name: str, dim: Any) -> Any:
    """One ``suggest_*`` call for a dimension (scalar, list or range)."""
    if _is_range(dim):
        low, high, step = dim["low"], dim["high"], dim.get("step")
        if all(isinstance(v, int) and not isinstance(v, bool) for v in (low, high, step or 1)):
            return trial.suggest_int(name, low, high, step=step or 1, log=bool(dim.get("log")))
        return trial.suggest_float(name, float(low), float(high), step=step,
                                   log=bool(dim.get("log")))
    choices = list(dim) if isinstance(dim, (list, tuple)) else [dim]
    return trial.suggest_categorical(name, choices)


def _dim_values(dim: Any) -> list[Any] | None:
    """The finite values of a dimension (None for a range)."""
    if _is_range(dim):
        return None
    return list(dim) if isinstance(dim, (list, tuple)) else [dim]


def _option_dims(entry: Any, overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Dimensions of a block's / conv unit's options: registry choices, narrowed by overrides."""
    dims: dict[str, Any] = {}
    for option in entry.options():
        if option in _GLOBAL_OPTIONS:
            continue
        if option in overrides:
            dims[option] = overrides[option]
        elif option in entry.choices:
            dims[option] = list(entry.choices[option])
    return dims


# ---------------------------------------------------------------------------- sampling
def suggest_arch(trial: Any, space: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Sample one architecture (and training hyperparameters) define-by-run.

    Args:
        trial: Anything with Optuna's ``suggest_categorical/int/float`` (``optuna.Trial``,
            ``optuna.trial.FixedTrial``, Ray's captor).
        space: A space mapping (see module docstring); None for :data:`DEFAULT_SPACE`. Partial
            mappings are completed from the defaults by :func:`resolve_space`.

    Returns:
        The parameters, name -> value; :func:`spec_from_params` turns them into a spec.
    """
    import search_space.blocks  # noqa: F401  (registers the catalogue)

    space = resolve_space(space)
    p: dict[str, Any] = {}
    p["scale"] = _suggest(trial, "scale", space["scale"])
    p["input_range"] = _suggest(trial, "input_range", space["input_range"])
    p["channels"] = _suggest(trial, "channels", space["channels"])
    stages = 1  # nothing sampled for a single stage: a default run's draws stay as they were
    if space["stages"] != 1:
        stages = p["stages"] = _suggest(trial, "stages", space["stages"])
    for stage in STAGE_PREFIXES[:stages]:
        if stage != STAGE_PREFIXES[0] and space["stage_width"] == "own":
            p[f"{stage}.channels"] = _suggest(trial, f"{stage}.channels", space["channels"])
        p[f"{stage}.depth"] = _suggest(trial, f"{stage}.depth", space["depth"])
        block = p[f"{stage}.block"] = _suggest(trial, f"{stage}.block", list(space["blocks"]))
        for option, dim in _option_dims(get_block(block), space["blocks"][block]).items():
            p[f"{stage}.{block}.{option}"] = _suggest(trial, f"{stage}.{block}.{option}", dim)

    att = space["attention"]
    kind = p["attention.type"] = _suggest(trial, "attention.type", att["type"])
    if kind != "none":
        p["attention.every"] = _suggest(trial, "attention.every", att["every"])
        for option, dim in _option_dims(get_block(kind), att.get(kind) or {}).items():
            p[f"attention.{kind}.{option}"] = _suggest(trial, f"attention.{kind}.{option}", dim)

    for key in ("fusion", "global_residual", "last_conv", "activation"):
        p[key] = _suggest(trial, key, space[key])
    unit = p["conv"] = _suggest(trial, "conv", space["conv"]["type"])
    for option, dim in _option_dims(get_conv_unit(unit), space["conv"].get(unit) or {}).items():
        p[f"conv.{unit}.{option}"] = _suggest(trial, f"conv.{unit}.{option}", dim)
    p["upsampler"] = _suggest(trial, "upsampler", space["upsampler"])
    if p["upsampler"] == "pixelshuffle":
        p["upsampler.pixelshuffle.near"] = _suggest(trial, "upsampler.pixelshuffle.near",
                                                    space["near"])
    p["input_skip"] = _suggest(trial, "input_skip", space["input_skip"])
    p.update(_suggest_train(trial, space["train"]))
    return p


def _upsampler(params: Mapping[str, Any]) -> Any:
    name = params.get("upsampler", "pixelshuffle")
    return {"type": name, "near": True} if params.get(f"upsampler.{name}.near") else name


def _suggest_train(trial: Any, train: Mapping[str, Any]) -> dict[str, Any]:
    p: dict[str, Any] = {}
    for key in ("lr", "batch_size", "lr_patch"):
        if train.get(key) is not None:
            p[f"train.{key}"] = _suggest(trial, f"train.{key}", train[key])
    if train.get("distill") is not None:
        on = p["train.distill"] = _suggest(trial, "train.distill", train["distill"])
        if on:
            p["train.distill.teacher"] = _suggest(trial, "train.distill.teacher",
                                                  train.get("teacher") or DEFAULT_TEACHER)
            weight = train.get("distill_weight")
            p["train.distill.weight"] = _suggest(trial, "train.distill.weight",
                                                 1.0 if weight is None else weight)
    return p


# ---------------------------------------------------------------------------- params -> spec
def _sub_options(params: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    return {k[len(prefix):]: v for k, v in params.items() if k.startswith(prefix)}


def _body(params: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Each stage's ``depth`` blocks, with an attention stage after every complete group of
    ``every`` blocks of a stage."""
    body = []
    for stage in STAGE_PREFIXES:
        if f"{stage}.block" in params:
            body += _stage(params, stage)
    return body


def _stage(params: Mapping[str, Any], stage: str) -> list[dict[str, Any]]:
    """A stage's blocks; at a width of its own (other than the trunk's) each group of blocks
    between attention stages is a projected stage, the attention stays at the trunk width."""
    block, depth = params[f"{stage}.block"], params[f"{stage}.depth"]
    group = {"block": block, "args": _sub_options(params, f"{stage}.{block}.")}
    width = params.get(f"{stage}.channels", params["channels"])
    if width != params["channels"]:
        group["channels"] = width
    kind = params.get("attention.type", "none")
    if kind == "none":
        return [{**group, "repeat": depth}]
    every = params["attention.every"]
    att_args = _sub_options(params, f"attention.{kind}.")
    body, left = [], depth
    while left > 0:
        n = min(every, left)
        body.append({**group, "repeat": n})
        if n == every:
            body.append({"block": kind, "repeat": 1, "args": att_args})
        left -= n
    return body


def spec_from_params(params: Mapping[str, Any], *, name: str = "") -> tuple[ArchSpec, dict]:
    """Parameters from :func:`suggest_arch` -> (validated ArchSpec, training hyperparameters).

    Args:
        params: Name -> value, as sampled (extra keys outside the space's names are ignored).
        name: Label stored in the spec (not part of its identity).

    Returns:
        ``(spec, hparams)`` with hparams keys among ``lr``, ``batch_size``, ``lr_patch`` and
        ``distill`` (``{"teacher", "weight"}`` or None).
    """
    missing = [k for k in ("scale", "channels", "body.depth", "body.block") if k not in params]
    if missing:
        raise InputError(f"parameters: missing {', '.join(missing)}; not a search-space sample")
    unit = params.get("conv", "plain")
    conv_options = _sub_options(params, f"conv.{unit}.")
    conv: Any = None
    if unit != "plain":
        conv = {"type": unit, **conv_options} if conv_options else unit
    activation = params.get("activation", DEFAULT_ACTIVATION)
    data = {
        "name": name,
        "scale": params["scale"],
        "channels": params["channels"],
        "input_range": float(params.get("input_range", 1.0)),
        "body": _body(params),
        "fusion": params.get("fusion", "sequential"),
        "global_residual": params.get("global_residual", True),
        "last_conv": params.get("last_conv", True),
        "activation": None if activation == DEFAULT_ACTIVATION else activation,
        "conv": conv,
        "upsampler": _upsampler(params),
        "input_skip": params.get("input_skip", False),
    }
    spec = ArchSpec.from_dict(data, what="sampled ArchSpec")
    return spec, _hparams(params)


def _hparams(params: Mapping[str, Any]) -> dict[str, Any]:
    h = {k: params[f"train.{k}"] for k in ("lr", "batch_size", "lr_patch")
         if f"train.{k}" in params}
    if "train.distill" in params:
        h["distill"] = ({"teacher": params["train.distill.teacher"],
                         "weight": params["train.distill.weight"]}
                        if params["train.distill"] else None)
    return h


# ---------------------------------------------------------------------------- validation
def resolve_space(space: Mapping[str, Any] | None) -> dict[str, Any]:
    """Complete a partial space from :data:`DEFAULT_SPACE` (``blocks`` is replaced, not merged).

    Raises:
        InputError: listing every problem (``space.<path>: ...``), see :func:`check_space`.
    """
    if space is None:
        return copy.deepcopy(DEFAULT_SPACE)
    if not isinstance(space, Mapping):
        raise InputError(f"space: expected a mapping, got {short(space)}")
    merged = copy.deepcopy(DEFAULT_SPACE)
    for key, value in space.items():
        if key in ("attention", "conv", "train") and isinstance(value, Mapping):
            merged[key].update(copy.deepcopy(dict(value)))
        else:
            merged[key] = copy.deepcopy(value)
    raise_problems(check_space(merged), SpaceError)
    return merged


def check_space(space: Mapping[str, Any], path: str = "space") -> list[str]:
    """Every problem of a complete space, one line each (path, value, what is allowed)."""
    import search_space.blocks  # noqa: F401  (registers the catalogue)

    problems = unknown_keys(path, space, _TOP_KEYS)
    problems += _check_dim(f"{path}.scale", space["scale"], C.SCALES)
    problems += _check_dim(f"{path}.input_range", space["input_range"], None, positive=True)
    problems += _check_dim(f"{path}.channels", space["channels"], None, positive=True, integer=True,
                           high=MAX_CHANNELS)
    problems += _check_dim(f"{path}.depth", space["depth"], None, positive=True, integer=True,
                           high=MAX_REPEAT)
    problems += _check_dim(f"{path}.stages", space["stages"], (1, 2))
    problem = Rule(choices=STAGE_WIDTHS).apply(f"{path}.stage_width", space["stage_width"])[1]
    problems += [problem] if problem else []

    blocks = space["blocks"]
    searchable = list_blocks(searchable_only=True)
    if not isinstance(blocks, Mapping) or not blocks:
        problems.append(f"{path}.blocks: expected a non-empty mapping family -> {{option: dim}}, "
                        f"got {short(blocks)}")
    else:
        for block, options in blocks.items():
            if block not in searchable:
                problems.append(not_allowed(f"{path}.blocks", block, searchable))
            else:
                problems += _check_options(f"{path}.blocks.{block}", get_block(block), options)

    att = space["attention"]
    if not isinstance(att, Mapping):
        problems.append(f"{path}.attention: expected a mapping with type, every, "
                        f"<type>: {{option: dim}}, got {short(att)}")
    else:
        allowed = ("none", *attention_stages())
        problems += _check_dim(f"{path}.attention.type", att.get("type"), allowed)
        problems += _check_dim(f"{path}.attention.every", att.get("every"), None, positive=True,
                               integer=True)
        for key, options in att.items():
            if key in ("type", "every"):
                continue
            if key not in allowed[1:]:
                problems.append(not_allowed(f"{path}.attention", key,
                                            ("type", "every") + allowed[1:]))
            else:
                problems += _check_options(f"{path}.attention.{key}", get_block(key), options)

    for key, allowed in (("fusion", C.FUSIONS), ("global_residual", (True, False)),
                         ("last_conv", (True, False)),
                         ("activation", (DEFAULT_ACTIVATION,) + C.ACTIVATIONS),
                         ("upsampler", C.UPSAMPLERS), ("near", (True, False)),
                         ("input_skip", (True, False))):
        problems += _check_dim(f"{path}.{key}", space[key], allowed)

    conv = space["conv"]
    units = list_conv_units()
    if not isinstance(conv, Mapping):
        problems.append(f"{path}.conv: expected a mapping with type, <unit>: {{option: dim}}, "
                        f"got {short(conv)}")
    else:
        problems += _check_dim(f"{path}.conv.type", conv.get("type"), units)
        for key, options in conv.items():
            if key == "type":
                continue
            if key not in units:
                problems.append(not_allowed(f"{path}.conv", key, ["type", *units]))
            else:
                problems += _check_options(f"{path}.conv.{key}", get_conv_unit(key), options)
    problems += _check_train(f"{path}.train", space["train"], space["scale"])
    return problems


def _value_rule(allowed: Sequence[Any] | None, *, positive: bool = False, integer: bool = False,
                high: float | None = None) -> Rule:
    """The rule of one value of a dimension: among ``allowed``, or a number (> 0, integer)."""
    if allowed is not None:
        return Rule(choices=allowed)
    return Rule(kind=int if integer else float, low=0 if positive else None, low_open=positive,
                high=high)


def _check_dim(path: str, dim: Any, allowed: Sequence[Any] | None, *, positive: bool = False,
               integer: bool = False, high: float | None = None) -> list[str]:
    """A dimension's form, and its values against ``allowed`` (or > 0 / integer for numbers)."""
    if dim is None:
        return [f"{path}: required"]
    value_rule = _value_rule(allowed, positive=positive, integer=integer, high=high)
    if isinstance(dim, Mapping):
        return _check_range(path, dim, value_rule) if allowed is None else \
            [f"{path}: expected a value or a list of values among {_names(allowed)}, got a range"]
    values = _dim_values(dim)
    if not values:
        return [f"{path}: expected at least one value, got []"]
    problems = []
    for v in values:
        if isinstance(v, (Mapping, list, tuple)):
            problems.append(f"{path}: expected scalar values, got {short(v)}")
            continue
        problem = value_rule.apply(path, v)[1]
        problems += [problem] if problem else []
    return problems


def _check_range(path: str, dim: Mapping[str, Any], value_rule: Rule) -> list[str]:
    """``{low, high[, step][, log]}``: both ends follow ``value_rule``, low <= high."""
    problems = unknown_keys(path, dim, _RANGE_KEYS)
    for key in ("low", "high"):
        problem = value_rule.apply(f"{path}.{key}", dim.get(key))[1]
        problems += [problem] if problem else []
    if problems:
        return problems
    low, high, step = dim["low"], dim["high"], dim.get("step")
    if low > high:
        return [f"{path}: low <= high must hold, got low={low}, high={high}"]
    step_rule = Rule(kind=value_rule.kind, low=0, low_open=True, optional=True)
    problem = step_rule.apply(f"{path}.step", step)[1]
    if problem:
        return [problem]
    if dim.get("log") and (low <= 0 or step is not None):
        return [f"{path}: a log range needs low > 0 and no step, got low={low}, step={step}"]
    return []


def _check_options(path: str, entry: Any, options: Any) -> list[str]:
    """Dimensions for a block's / conv unit's options: known names, values among its choices."""
    if options is None:
        return []
    if not isinstance(options, Mapping):
        return [f"{path}: expected a mapping option -> dimension, got {options!r}"]
    problems = []
    known = [o for o in entry.options() if o not in _GLOBAL_OPTIONS]
    for option, dim in options.items():
        if option not in known:
            problems.append(f"{path}.{option}: not a searchable option of {entry.name!r}; "
                            f"allowed: {_names(known)}{did_you_mean(option, known)}")
        elif option in entry.choices:
            problems += _check_dim(f"{path}.{option}", dim, entry.choices[option])
        elif _is_range(dim):
            problems += _check_range(f"{path}.{option}", dim, Rule(kind=float))
        else:
            problems += _check_dim(f"{path}.{option}", dim, None)
    return problems


def _check_train(path: str, train: Any, scale: Any) -> list[str]:
    if not isinstance(train, Mapping):
        return [f"{path}: expected a mapping, got {train!r}"]
    problems = unknown_keys(path, train, _TRAIN_KEYS)
    for key, integer in (("lr", False), ("batch_size", True), ("lr_patch", True),
                         ("distill_weight", False)):
        if train.get(key) is not None:
            problems += _check_dim(f"{path}.{key}", train[key], None, positive=True,
                                   integer=integer)
    if train.get("distill") is not None:
        problems += _check_dim(f"{path}.distill", train["distill"], (True, False))
    if train.get("teacher") is not None or train.get("distill") is not None:
        problems += _check_teachers(f"{path}.teacher", train.get("teacher") or DEFAULT_TEACHER,
                                    scale)
    return problems


def _check_teachers(path: str, dim: Any, scale: Any) -> list[str]:
    with_weights = [a for a in list_anchors() if get_anchor(a).has_official_weights]
    problems = []
    for name in _dim_values(dim) or []:
        if name not in with_weights:
            problems.append(not_allowed(path, name, with_weights))
            continue
        official_scale = get_anchor(name).official_scale
        if isinstance(scale, int) and scale != official_scale:
            problems.append(f"{path}: teacher {name!r} has official weights only at "
                            f"x{official_scale}, the space's scale is {scale}")
    return problems


def _names(values: Sequence[Any]) -> str:
    return ", ".join(str(v) for v in values)
