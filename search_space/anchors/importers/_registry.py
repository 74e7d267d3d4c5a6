"""The importer registry and the strict key mapping every importer uses.

An importer ``fn(official: dict[str, Tensor], model: SRNet) -> dict[str, Tensor]`` must use every
official tensor and fill every model tensor with the same shape; :func:`map_keys` enforces both.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

import torch
from torch import nn

from search_space.errors import InputError

__all__ = ["register_importer", "get_importer", "map_keys", "strip_prefix", "conv_keys"]

Importer = Callable[[Mapping[str, torch.Tensor], nn.Module], dict[str, torch.Tensor]]
_IMPORTERS: dict[str, Importer] = {}


def register_importer(name: str) -> Callable[[Importer], Importer]:
    def deco(fn: Importer) -> Importer:
        _IMPORTERS[name] = fn
        return fn

    return deco


def get_importer(name: str) -> Importer:
    if name not in _IMPORTERS:
        raise InputError(f"no importer {name!r}; known: {', '.join(sorted(_IMPORTERS))}")
    return _IMPORTERS[name]


def strip_prefix(state: Mapping[str, torch.Tensor], prefix: str = "module.") -> dict:
    """Drop a DataParallel-style prefix if every key has it."""
    if state and all(k.startswith(prefix) for k in state):
        return {k[len(prefix):]: v for k, v in state.items()}
    return dict(state)


def conv_keys(pairs: Iterable[tuple[str, str]] | Mapping[str, str],
              params: tuple[str, ...] = ("weight", "bias")) -> dict[str, str]:
    """(our module, official module) pairs -> the key mapping of their ``params``."""
    pairs = pairs.items() if isinstance(pairs, Mapping) else pairs
    return {f"{ours}.{p}": f"{theirs}.{p}" for ours, theirs in pairs for p in params}


def map_keys(official: Mapping[str, torch.Tensor], model: nn.Module,
             mapping: Mapping[str, str], *, what: str) -> dict[str, torch.Tensor]:
    """Build the model's state dict from ``mapping`` (model key -> official key), strictly.

    Raises if a model tensor is unmapped, an official tensor is unused, or shapes differ.
    """
    target = model.state_dict()
    problems = []
    missing = sorted(set(target) - set(mapping))
    if missing:
        problems.append(f"model tensors without a source: {missing[:5]}")
    unused = sorted(set(official) - set(mapping.values()))
    if unused:
        problems.append(f"official tensors not used: {unused[:5]}")
    out = {}
    for ours, theirs in mapping.items():
        if theirs not in official:
            problems.append(f"official tensor {theirs!r} (for {ours!r}) not found")
            continue
        src = official[theirs]
        if ours in target and tuple(src.shape) != tuple(target[ours].shape):
            problems.append(f"{theirs} {tuple(src.shape)} -> {ours} {tuple(target[ours].shape)}")
            continue
        out[ours] = src.detach().to(torch.float32).clone()
    if problems:
        raise InputError(f"{what}: official weights do not fit the spec-built model: "
                         + "; ".join(problems))
    return out
