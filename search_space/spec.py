"""ArchSpec: the declarative, YAML-serialisable description of an SR network.

An architecture is ``head (3x3 conv) -> body stages -> fusion -> upsampler``. The body is an ordered
list of stages, each ``{block: <registered name>, repeat: n, args: {...}}``; attention is expressed
as blocks too (inside a block via its options, e.g. ``rlfb(esa=...)``, or as its own stage, e.g.
``{block: esa}``), so the spec needs no separate attention field.

Specs are validated on construction from user data (:meth:`ArchSpec.from_dict`): every problem is
collected and reported in one :class:`SpecError`, each line naming the field path, the value and
what is allowed. :meth:`ArchSpec.arch_id` is a stable content hash used as the architecture's
identity in results tables and exports.
"""

from __future__ import annotations

import hashlib
import inspect
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import yaml

from search_space import choices as C
from search_space.errors import SpecError, did_you_mean, not_allowed
from search_space.io import plain
from search_space.registry import get_block, get_conv_unit, list_blocks, list_conv_units
from search_space.validation import Rule, check_fields, rule, short
from search_space.yaml_io import load_yaml, read_yaml

__all__ = ["StageSpec", "ArchSpec", "SPEC_VERSION", "split_named", "MAX_CHANNELS", "MAX_REPEAT",
           "MAX_DEPTH"]

SPEC_VERSION = 1
# Documented maxima (docs/validation.md), checked before anything is built: the widest anchor
# has 256 channels (EDSR), the deepest body 60 blocks (RCAN: 10 groups x 6 stages).
MAX_CHANNELS = 1024  # trunk width, and any integer block option (mid_channels, ...)
MAX_REPEAT = 256  # copies of one stage
MAX_DEPTH = 512  # blocks in the whole body
MAX_IN_CHANNELS = 4
MAX_KERNEL = 15
MAX_INPUT_RANGE = 65535.0


def _is_str(value: Any) -> str | None:
    return None if isinstance(value, str) else f"expected a string, got {short(value)}"


MAX_NAME_CHARS = 100


def _is_label(value: Any) -> str | None:
    """A name is a one-line label: it reaches messages, model cards and file headers."""
    if not isinstance(value, str):
        return f"expected a string, got {short(value)}"
    if len(value) > MAX_NAME_CHARS or not value.isprintable():
        return (f"expected a one-line printable label of at most {MAX_NAME_CHARS} characters, "
                f"got {short(value)}")
    return None


def _odd(value: int) -> str | None:
    return None if value % 2 == 1 else f"expected an odd kernel size, got {value}"


@dataclass(frozen=True)
class StageSpec:
    """``repeat`` copies of one registered block, built with ``args``.

    With ``channels`` the stage has a width of its own: its blocks run at that width between a
    1x1 conv from the trunk width and one back to it, and the fusion sees the stage as one block
    (``span`` takes no block features from inside it).
    """

    block: str
    repeat: int = 1
    args: Mapping[str, Any] = field(default_factory=dict)
    channels: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain data; ``channels`` only when set, so that no earlier spec changed identity."""
        d = {"block": self.block, "repeat": self.repeat, "args": plain(self.args)}
        return d if self.channels is None else {**d, "channels": self.channels}

    def __hash__(self) -> int:
        return hash(json.dumps(asdict(self), sort_keys=True, default=str))


@dataclass(frozen=True)
class ArchSpec:
    """A complete SR network.

    Args:
        scale: Upscaling factor, one of 2, 3, 4.
        channels: Trunk width C.
        body: Ordered stages; every block maps (B, C, H, W) -> (B, C, H, W), a stage with
            ``channels`` W runs its blocks at W between 1x1 convs C -> W and W -> C.
        name: Free label (not part of the identity).
        in_channels: Image channels (3).
        fusion: How block outputs are combined, a name or ``{type: span, **options}``. Option:
            sequential | aggregate | hff | bff | mbff | cascade | span | sum. ``{type: hff,
            refine: k, act: gelu}``: the last k blocks run after the 1x1 conv (FMDN).
        global_residual: Add the head output before the upsampler.
        last_conv: 3x3 conv C->C after the body/fusion (before the long residual).
        upsampler: A name or ``{type: pixelshuffle, near: .., conv: ..}``. Option: pixelshuffle |
            pixelshuffle_multi | pixelshuffle_staged | deconv | pixelshuffle_carn |
            pixelshuffle_carn_m | erum | erum_unit.
        input_skip: Add the upsampled input to the output (MAFFSRN: bicubic).
        activation: Overrides the ``act`` option of every block that has one (None: paper defaults).
        conv: Conv unit for every block with a ``conv`` option and for the ``erum_unit`` tail
            (None: plain 3x3), a name or ``{type: name, **options}``.
        weight_norm: Weight-normalise head, fusion and tail convs (MAFFSRN); folded at deploy.
        mean_shift: Subtract / add the DIV2K RGB mean around the network (EDSR), as buffers.
        input_range: Pixel range the network expects (1 or 255); callers scale inputs by it.
        y_only: Run the network on the BT.601 luma of the RGB input (one image channel in and
            out, as FSRCNN); Cb/Cr are bicubic-upsampled, so the model still maps RGB to RGB.
        head_kernel_size: Kernel of the head conv (3; FSRCNN's feature extraction: 5).
        head: Conv unit of the 3x3 head conv (None: plain; SPAN trains ``conv3xc``), or ``none``:
            no head, the first block maps the image to C (SPAN-F, SPANV2).
        input_norm: Option: none | span (``(x / input_range - DIV2K mean) * 255``, SPAN).
        keep_block_outputs: Hold every block output until the forward ends, as the official
            DISP / SPANV2 forwards hold them in Python locals; changes only the peak memory.
        input_skip_mode: How ``input_skip`` upsamples the input. Option: bicubic (MAFFSRN) |
            bilinear (SAFMN-Deep15).
        last_conv_unit: Conv unit of ``last_conv`` (None: plain 3x3; LKFN: ``bsconv``).

    The last seven fields are left out of :meth:`to_dict` (and so of :meth:`arch_id`) at their
    defaults, so that adding them changed no existing architecture's identity.
    """

    scale: int = field(metadata=rule(kind=int, choices=C.SCALES))
    channels: int = field(metadata=rule(kind=int, low=1, high=MAX_CHANNELS))
    body: tuple[StageSpec, ...] = field(metadata=rule())
    name: str = field(default="", metadata=rule(kind=None, check=_is_label,
                                                expected="a one-line label"))
    in_channels: int = field(default=3, metadata=rule(kind=int, low=1, high=MAX_IN_CHANNELS))
    fusion: str = "sequential"
    global_residual: bool = field(default=True, metadata=rule(kind=bool))
    last_conv: bool = field(default=True, metadata=rule(kind=bool))
    upsampler: str = "pixelshuffle"
    input_skip: bool = field(default=False, metadata=rule(kind=bool))
    activation: str | None = field(default=None, metadata=rule(kind=str, optional=True,
                                                                 choices=C.ACTIVATIONS))
    conv: Any = None
    weight_norm: bool = field(default=False, metadata=rule(kind=bool))
    mean_shift: bool = field(default=False, metadata=rule(kind=bool))
    input_range: float = field(default=1.0, metadata=rule(kind=float, low=0, low_open=True,
                                                            high=MAX_INPUT_RANGE))
    y_only: bool = field(default=False, metadata=rule(kind=bool))
    head_kernel_size: int = field(default=3, metadata=rule(kind=int, low=1, high=MAX_KERNEL,
                                                           check=_odd))
    head: Any = None
    input_norm: str = field(default="none", metadata=rule(kind=str, choices=C.INPUT_NORMS))
    keep_block_outputs: bool = field(default=False, metadata=rule(kind=bool))
    input_skip_mode: str = field(default="bicubic", metadata=rule(kind=str,
                                                                  choices=C.SKIP_MODES))
    last_conv_unit: Any = None
    spec_version: int = field(default=SPEC_VERSION, metadata=rule(kind=int, choices=(
        SPEC_VERSION,)))

    def __post_init__(self) -> None:
        """A spec validates itself, however it is made (``from_dict``, ``replace``, directly)."""
        problems = _validate(self._fields_dict())
        if problems:
            raise SpecError(problems)

    def _fields_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        if isinstance(d["body"], (list, tuple)):
            d["body"] = [s.to_dict() if isinstance(s, StageSpec) else s for s in d["body"]]
        return d

    # ---------------------------------------------------------------- identity
    def to_dict(self) -> dict[str, Any]:
        """Plain-data form (YAML/JSON-safe); ``from_dict(to_dict())`` round-trips."""
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["body"] = [s.to_dict() for s in self.body]
        for key in ("conv", "fusion", "upsampler", "head", "last_conv_unit"):
            d[key] = plain(d[key])
        for key, default in _OMITTED_AT_DEFAULT.items():
            if d[key] == default:
                del d[key]
        return d

    def arch_id(self) -> str:
        """First 12 hex digits of the sha1 of the canonical JSON (``name`` excluded)."""
        d = self.to_dict()
        d.pop("name")
        canon = json.dumps(d, sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha1(canon.encode()).hexdigest()[:12]

    def __hash__(self) -> int:
        return hash(self.arch_id())

    def has_identity_path(self) -> bool:
        """Whether the output gets an identity path: a long residual or the upsampled input.

        Without one (the SPAN family, FSRCNN, CARN) a network starts far below bicubic and a
        short proxy training mostly measures how fast it learns the identity.
        """
        return self.global_residual or self.input_skip

    def num_blocks(self) -> int:
        """Blocks in all, counting the blocks inside a stage of its own width."""
        return sum(s.repeat for s in self.body)

    def with_scale(self, scale: int) -> ArchSpec:
        return replace(self, scale=scale)

    # ---------------------------------------------------------------- I/O
    @classmethod
    def from_dict(cls, data: Any, *, what: str = "ArchSpec") -> ArchSpec:
        """Validate user data and build a spec; one :class:`SpecError` lists all problems."""
        problems = _validate(data)
        if problems:
            raise SpecError(problems, what)
        body = _normalise_body(data["body"])
        kwargs = {k: v for k, v in data.items() if k != "body"}
        if "input_range" in kwargs:
            kwargs["input_range"] = float(kwargs["input_range"])
        try:
            return cls(body=body, **kwargs)
        except SpecError as e:  # cannot happen after _validate, but keeps the document's name
            raise SpecError(e.problems, what) from None

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    @classmethod
    def from_yaml(cls, text: str, *, source: str = "spec") -> ArchSpec:
        data = load_yaml(text, source)
        if isinstance(data, dict) and "spec" in data and "body" not in data:
            data = data["spec"]  # an anchor file or an exported arch.yaml wrapper
        return cls.from_dict(data, what=f"ArchSpec in {source}")

    @classmethod
    def from_file(cls, path: str | Path) -> ArchSpec:
        data = read_yaml(path, "spec file")
        if isinstance(data, dict) and "spec" in data and "body" not in data:
            data = data["spec"]  # an anchor file or an exported arch.yaml wrapper
        return cls.from_dict(data, what=f"ArchSpec in {path}")


# Fields added after specs were in use: absent from to_dict() at their default, so every existing
# spec keeps its canonical form and its arch_id.
_OMITTED_AT_DEFAULT = {"y_only": False, "head_kernel_size": 3, "head": None, "input_norm": "none",
                       "keep_block_outputs": False, "input_skip_mode": "bicubic",
                       "last_conv_unit": None}

# ---------------------------------------------------------------------------- validation


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _normalise_body(body: Any) -> tuple[StageSpec, ...]:
    stages = [body] if isinstance(body, Mapping) else list(body)
    out = []
    for s in stages:
        if isinstance(s, str):
            s = {"block": s}
        out.append(StageSpec(s["block"], s.get("repeat", 1), dict(s.get("args") or {}),
                             s.get("channels")))
    return tuple(out)


def _validate(data: Any) -> list[str]:
    if not isinstance(data, Mapping):
        return [f"expected a mapping with keys scale, channels, body, got {type(data).__name__}"]
    problems: list[str] = []
    for key in ("scale", "channels", "body"):
        if key not in data:
            problems.append(f"{key}: required field is missing")
    check_fields(ArchSpec, data, "", problems, skip=("body",))
    if data.get("y_only") is True:
        if data.get("in_channels", 3) != 3:
            problems.append(f"in_channels: y_only takes an RGB input, so in_channels == 3 must "
                            f"hold, got in_channels={data['in_channels']}")
        if data.get("mean_shift") is True:
            problems.append("mean_shift: the DIV2K RGB mean does not apply to a y_only network; "
                            "set mean_shift: false")
    problems += _validate_fusion_and_tail(data)
    problems += _validate_head(data)
    if data.get("conv") is not None:
        problems += _validate_conv_unit("conv", data["conv"])
    if data.get("last_conv_unit") is not None:
        problems += _validate_conv_unit("last_conv_unit", data["last_conv_unit"])
    if "body" in data:
        problems += _validate_body(data["body"], data)
    return problems


_STAGE_KEYS = ("block", "repeat", "args", "channels")


def _validate_body(body: Any, data: Mapping[str, Any]) -> list[str]:
    import search_space.blocks  # noqa: F401  (registers the catalogue)

    if isinstance(body, (Mapping, str)):
        body = [body]
    if not isinstance(body, (list, tuple)):
        return [f"body: expected a list of stages, got {short(body)}"]
    if not body:
        return _check_empty_body(data)
    problems = []
    registered = list_blocks()
    depth = fused = 0  # blocks in all; blocks the fusion sees (a stage of its own width: one)
    for i, stage in enumerate(body):
        path = f"body[{i}]"
        if isinstance(stage, str):
            stage = {"block": stage}
        if not isinstance(stage, Mapping):
            problems.append(f"{path}: expected {{block: name, repeat: n, args: {{...}}}}, "
                            f"got {short(stage)}")
            continue
        for key in stage:
            if key not in _STAGE_KEYS:
                problems.append(f"{path}.{key}: unknown field; allowed: "
                                f"{', '.join(sorted(_STAGE_KEYS))}{did_you_mean(key, _STAGE_KEYS)}")
        repeat = stage.get("repeat", 1)
        if not _is_int(repeat) or not 1 <= repeat <= MAX_REPEAT:
            problems.append(f"{path}.repeat: expected an integer >= 1 and <= {MAX_REPEAT}, got "
                            f"{short(repeat)}")
        else:
            depth += repeat
            fused += repeat if stage.get("channels") is None else 1
        width_problems = _check_stage_width(path, stage.get("channels"), first=i == 0,
                                            data=data)
        problems += width_problems
        width = None if width_problems else stage.get("channels")
        block = stage.get("block")
        if not isinstance(block, str) or block not in registered:
            problems.append(
                f"{path}.block: {short(block)} is not a registered block; allowed: "
                f"{', '.join(registered)}{did_you_mean(block, registered)}"
            )
            continue
        args = stage.get("args") or {}
        if not isinstance(args, Mapping):
            problems.append(f"{path}.args: expected a mapping, got {short(args)}")
            continue
        problems += _validate_options(f"{path}.args", block, args,
                                      width or data.get("channels"))
        if "in_channels" in args:
            problems.append(f"{path}.args.in_channels: set by the builder (head: 'none' gives the "
                            "first block the image channels), not in a spec")
        stem_ok = "in_channels" in get_block(block).options()
        if i == 0 and data.get("head") == "none" and not stem_ok:
            stems = [b for b in registered if "in_channels" in get_block(b).options()]
            problems.append(f"head: 'none' needs a first block that maps the image to the trunk "
                            f"width (an in_channels option); {path}.block {block!r} has none; "
                            f"blocks that do: {', '.join(stems)}")
    if depth > MAX_DEPTH:
        problems.append(f"body: {depth} blocks in all; at most {MAX_DEPTH}")
    fusion = data.get("fusion")
    refine = fusion.get("refine", 0) if isinstance(fusion, Mapping) else 0
    if not problems and _is_int(refine) and refine >= fused > 0:
        problems.append(f"fusion.refine: the 1x1 conv needs at least one block, so refine < "
                        f"{fused} (the number of blocks the fusion sees) must hold, got "
                        f"refine={refine}")
    return problems


def _check_stage_width(path: str, width: Any, *, first: bool, data: Mapping) -> list[str]:
    if width is None:
        return []
    if not _is_int(width) or not 1 <= width <= MAX_CHANNELS:
        return [f"{path}.channels: expected the stage's own width, an integer >= 1 and <= "
                f"{MAX_CHANNELS}, got {short(width)}"]
    if first and data.get("head") == "none":
        return [f"{path}.channels: with head: 'none' the first stage maps the image to the "
                "trunk width, so it cannot have a width of its own"]
    return []


# block options that name a conv unit
_UNIT_OPTIONS = ("conv", "group_conv")


def _check_empty_body(data: Mapping[str, Any]) -> list[str]:
    """A network without blocks, head -> tail (SRCNN), needs a head and nothing to fuse."""
    fusion = split_named(data.get("fusion", "sequential"))[0]
    if fusion not in C.FUSIONS:  # already named by the fusion's own check
        fusion = "sequential"
    if data.get("head") == "none" or fusion != "sequential":
        return [f"body: an empty body (head -> tail, as SRCNN) needs a head and fusion: "
                f"sequential, got head={data.get('head')!r}, fusion={fusion!r}"]
    return []


def _validate_options(path: str, block: str, args: Mapping[str, Any],
                      channels: Any) -> list[str]:
    """A block's options (``channels``: the width it runs at, for its cross-field rules)."""
    entry = get_block(block)
    options = entry.options()
    problems = []
    for key, value in args.items():
        if key not in options:
            allowed = ", ".join(sorted(options)) or "(none)"
            problems.append(f"{path}.{key}: unknown option of block {block!r}; allowed: "
                            f"{allowed}{did_you_mean(key, options)}")
            continue
        if key in _UNIT_OPTIONS:
            problems += _validate_conv_unit(f"{path}.{key}", value)
            continue
        if key in entry.choices:
            if value not in entry.choices[key]:
                problems.append(not_allowed(f"{path}.{key}", value, entry.choices[key]))
            continue
        problems += _check_default_type(f"{path}.{key}", value, options[key])
    if not problems:  # cross-field rules only make sense on well-typed options
        problems += _check_block_invariants(path, entry, args, channels)
    return problems


def _check_default_type(path: str, value: Any, param: inspect.Parameter) -> list[str]:
    """An option without registry choices takes its default's type (numbers >= 0, bounded)."""
    default = param.default
    if default is inspect.Parameter.empty or default is None:
        return []
    kind = type(default)
    if kind not in (int, float, bool, str):
        return []
    bounds = {"low": 0, "high": MAX_CHANNELS} if kind is int else {"low": 0} \
        if kind is float else {}
    _, problem = Rule(kind=kind if kind is not str else None, check=None if kind is not str
                      else _is_str, **bounds).apply(path, value)
    return [problem] if problem else []


def _check_block_invariants(path: str, entry: Any, args: Mapping, channels: Any) -> list[str]:
    """Blocks may define ``check_options(channels, **args) -> list[str]`` for cross-field rules
    (``channels``: the width the block runs at)."""
    check = getattr(entry.cls, "check_options", None)
    if check is None or not _is_int(channels) or not 0 < channels <= MAX_CHANNELS:
        return []
    return [f"{path}: {msg}" for msg in check(channels, **args)]


def split_named(value: Any) -> tuple[str, dict[str, Any]]:
    """``name`` or ``{type: name, **options}`` -> ``(name, options)`` (conv, fusion, upsampler)."""
    if isinstance(value, Mapping):
        return value["type"], {k: v for k, v in value.items() if k != "type"}
    return value, {}


def _validate_fusion_and_tail(data: Mapping[str, Any]) -> list[str]:
    from search_space.fusion import fusion_options
    from search_space.upsamplers import check_upsampler, upsampler_options

    problems = []
    for key, allowed, options_of, default in (
        ("fusion", C.FUSIONS, fusion_options, "sequential"),
        ("upsampler", C.UPSAMPLERS, upsampler_options, "pixelshuffle"),
    ):
        value = data.get(key, default)
        if not isinstance(value, str) and not (isinstance(value, Mapping) and "type" in value):
            problems.append(f"{key}: expected a name or {{type: name, ...}}, got {short(value)}")
            continue
        name, options = split_named(value)
        if name not in allowed:
            problems.append(not_allowed(key, name, allowed))
            continue
        params = options_of(name)
        for option, v in options.items():
            if option not in params:
                problems.append(f"{key}.{option}: unknown option of {key} {name!r}; allowed: "
                                f"{', '.join(sorted(params)) or '(none)'}"
                                f"{did_you_mean(option, params)}")
            elif option == "conv":
                problems += _validate_conv_unit(f"{key}.conv", v)
            elif option == "act":
                if v not in C.ACTIVATIONS:
                    problems.append(not_allowed(f"{key}.act", v, C.ACTIVATIONS))
            else:
                problems += _check_default_type(f"{key}.{option}", v, params[option])
    if problems:
        return problems
    tail, tail_options = split_named(data.get("upsampler", "pixelshuffle"))
    problems += [f"upsampler.{p}" for p in check_upsampler(tail, tail_options)]
    width = split_named(data.get("fusion", "sequential"))[1].get("out_channels", 0)
    if width and width != data.get("channels"):  # the span fusion's 1x1 leaves the trunk width
        for key in ("last_conv", "global_residual"):
            if data.get(key, True):
                problems.append(f"fusion.out_channels: {key} needs out_channels == channels, "
                                f"got out_channels={width}, channels={data.get('channels')}")
    return problems


def _validate_head(data: Mapping[str, Any]) -> list[str]:
    head = data.get("head")
    if head is None:
        return []
    if head == "none":
        if data.get("global_residual", True):
            return ["global_residual: needs a head output to add, got head: 'none'"]
        return []
    problems = _validate_conv_unit("head", head)
    if not problems and head != "plain" and data.get("weight_norm") is True:
        problems.append(f"head: weight_norm applies to a plain head only, got head={head!r}")
    return problems


def _validate_conv_unit(path: str, unit: Any) -> list[str]:
    import search_space.blocks  # noqa: F401

    units = list_conv_units()
    if isinstance(unit, str):
        name, options = unit, {}
    elif isinstance(unit, Mapping) and "type" in unit:
        options = {k: v for k, v in unit.items() if k != "type"}
        name = unit["type"]
    else:
        return [f"{path}: expected a conv unit name or {{type: name, ...}}, got {short(unit)}"]
    if name not in units:
        return [not_allowed(path, name, units)]
    entry = get_conv_unit(name)
    problems = []
    opts = entry.options()
    for key, value in options.items():
        if key not in opts:
            problems.append(f"{path}.{key}: unknown option of conv unit {name!r}; allowed: "
                            f"{', '.join(sorted(opts)) or '(none)'}{did_you_mean(key, opts)}")
        elif key in entry.choices and value not in entry.choices[key]:
            problems.append(not_allowed(f"{path}.{key}", value, entry.choices[key]))
        else:
            problems += _check_default_type(f"{path}.{key}", value, opts[key])
    return problems
