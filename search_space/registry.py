"""Registries of building blocks and convolution units.

A block is a shape-preserving ``nn.Module``: ``(B, C, H, W) -> (B, C, H, W)``, with ``channels``
as its first positional argument and every other option keyword-only. Registering it with
``choices`` gives one source of truth for spec validation and for the search space.

A conv unit replaces a plain ``C -> C`` 3x3 convolution inside a block (the efficient units of
the ICLR'19 efficiency study, or RRRB for re-parameterisable training); blocks that take a
``conv`` option build their 3x3 convs through :func:`build_conv`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from search_space.errors import InputError, did_you_mean

__all__ = [
    "BlockEntry",
    "ConvUnitEntry",
    "register_block",
    "register_conv_unit",
    "get_block",
    "get_conv_unit",
    "list_blocks",
    "list_conv_units",
    "build_conv",
]


@dataclass(frozen=True)
class BlockEntry:
    name: str
    cls: Callable[..., Any]
    choices: Mapping[str, Sequence[Any]] = field(default_factory=dict)
    searchable: bool = True
    tags: frozenset[str] = frozenset()

    def options(self) -> dict[str, inspect.Parameter]:
        """Keyword options of the constructor (everything but ``channels``)."""
        params = inspect.signature(self.cls).parameters
        return {k: p for k, p in params.items() if k != "channels" and p.kind == p.KEYWORD_ONLY}


@dataclass(frozen=True)
class ConvUnitEntry:
    name: str
    fn: Callable[..., Any]
    choices: Mapping[str, Sequence[Any]] = field(default_factory=dict)

    def options(self) -> dict[str, inspect.Parameter]:
        params = inspect.signature(self.fn).parameters
        return {k: p for k, p in params.items() if p.kind == p.KEYWORD_ONLY}


_BLOCKS: dict[str, BlockEntry] = {}
_CONV_UNITS: dict[str, ConvUnitEntry] = {}


# Tags a block may carry: "attention" = may be inserted as its own stage every k blocks.
TAGS = ("attention",)


def register_block(
    name: str, *, choices: Mapping[str, Sequence[Any]] | None = None, searchable: bool = True,
    tags: Sequence[str] = (),
) -> Callable[[type], type]:
    """Class decorator: register a block under ``name``.

    Args:
        name: Registry key, a lowercase paper acronym (``erb``, ``rlfb``).
        choices: Allowed values per option; validated in specs and sampled by the space.
        searchable: False for blocks that only exist to express a paper model.
        tags: Roles in the search space, among :data:`TAGS`.
    """

    def deco(cls: type) -> type:
        if name in _BLOCKS:
            raise ValueError(f"block {name!r} is already registered")
        if set(tags) - set(TAGS):
            raise ValueError(f"block {name!r}: unknown tags {sorted(set(tags) - set(TAGS))}")
        entry = BlockEntry(name, cls, dict(choices or {}), searchable, frozenset(tags))
        unknown = set(entry.choices) - set(entry.options())
        if unknown:
            raise ValueError(f"block {name!r}: choices for unknown options {sorted(unknown)}")
        _BLOCKS[name] = entry
        cls.block_name = name
        return cls

    return deco


def register_conv_unit(
    name: str, *, choices: Mapping[str, Sequence[Any]] | None = None
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator for a factory ``fn(in_channels, out_channels, *, ...) -> nn.Module``."""

    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        if name in _CONV_UNITS:
            raise ValueError(f"conv unit {name!r} is already registered")
        _CONV_UNITS[name] = ConvUnitEntry(name, fn, dict(choices or {}))
        return fn

    return deco


def _lookup(table: Mapping[str, Any], name: str, kind: str) -> Any:
    try:
        return table[name]
    except KeyError:
        allowed = ", ".join(sorted(table))
        raise InputError(
            f"{name!r} is not a registered {kind}; allowed: {allowed}{did_you_mean(name, table)}"
        ) from None


def get_block(name: str) -> BlockEntry:
    return _lookup(_BLOCKS, name, "block")


def get_conv_unit(name: str) -> ConvUnitEntry:
    return _lookup(_CONV_UNITS, name, "conv unit")


def list_blocks(*, searchable_only: bool = False, tag: str | None = None) -> list[str]:
    """Registered block names, optionally only searchable ones / those with ``tag``."""
    return sorted(n for n, e in _BLOCKS.items() if (e.searchable or not searchable_only)
                  and (tag is None or tag in e.tags))


def list_conv_units() -> list[str]:
    return sorted(_CONV_UNITS)


def build_conv(
    unit: str | Mapping[str, Any] | None, in_channels: int, out_channels: int, **overrides: Any
) -> Any:
    """Build a 3x3 conv unit. ``unit`` is a name, ``{"type": name, **options}`` or None (plain)."""
    if unit is None:
        unit = "plain"
    if isinstance(unit, str):
        name, options = unit, {}
    else:
        options = dict(unit)
        name = options.pop("type")
    return get_conv_unit(name).fn(in_channels, out_channels, **{**options, **overrides})
