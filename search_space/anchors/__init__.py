"""The paper models as specs (anchors), with their published figures and official weights.

Each anchor is one YAML file beside this module::

    name: fmen_s
    paper: {title: ..., url: ..., venue: ...}
    spec: {...}                       # an ArchSpec at x4
    published: {...}                  # figures from the paper / challenge report, training recipe
    reference:                        # figures computed from the official code
      params: {x2: .., x3: .., x4: ..}        # deploy form (what the spec-built model must have)
      params_train: {x4: ..}                  # training form, where known
      torch_macs_g_256: ..                    # and activations_m_256, num_conv, metrics_x4 ...
    official:                         # only where official weights are shipped
      weights: fmen_s__team03_fmen.pth
      importer: fmen_s               # key in anchors.importers
      scale: 4
      source: {repo: ..., commit: ..., file: ..., license: ...}
    notes: [...]

``load(name, scale=4, weights="official")`` returns a ready model whose ``input_range`` tells
callers how to scale inputs, so nobody has to remember that FMEN-S works in 0..255 and IMDN in
0..1. Importing the registry imports no torch; ``load`` imports the builder when called.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from search_space.choices import SCALES
from search_space.errors import InputError, did_you_mean
from search_space.spec import ArchSpec

__all__ = ["Anchor", "get_anchor", "list_anchors", "load", "ANCHOR_DIR", "WEIGHTS_DIR"]

ANCHOR_DIR = Path(__file__).resolve().parent
WEIGHTS_DIR = ANCHOR_DIR / "weights"


@dataclass(frozen=True)
class Anchor:
    name: str
    spec: ArchSpec
    paper: dict[str, Any] = field(default_factory=dict)
    published: dict[str, Any] = field(default_factory=dict)
    official: dict[str, Any] | None = None
    reference: dict[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    @property
    def has_official_weights(self) -> bool:
        return self.official is not None

    @property
    def official_scale(self) -> int | None:
        """The scale the official weights are for (x4 unless the file says otherwise)."""
        return None if self.official is None else int(self.official.get("scale", 4))


@functools.cache
def _anchors() -> dict[str, Anchor]:
    out = {}
    for path in sorted(ANCHOR_DIR.glob("*.yaml")):
        data = yaml.safe_load(path.read_text())
        spec = ArchSpec.from_dict(data["spec"], what=f"anchor spec {path.name}")
        out[data["name"]] = Anchor(
            name=data["name"],
            spec=spec,
            paper=data.get("paper") or {},
            published=data.get("published") or {},
            official=data.get("official"),
            reference=data.get("reference") or {},
            notes=tuple(data.get("notes") or ()),
        )
    return out


def list_anchors() -> list[str]:
    return sorted(_anchors())


def get_anchor(name: str) -> Anchor:
    anchors = _anchors()
    if name not in anchors:
        raise InputError(f"{name!r} is not a known anchor; allowed: {', '.join(sorted(anchors))}"
                         f"{did_you_mean(name, anchors)}")
    return anchors[name]


def load(name: str, *, scale: int = 4, weights: str | Path | None = None, deploy: bool = True):
    """Build anchor ``name`` at ``scale``; eval mode when ``deploy``.

    Args:
        name: Anchor name (``list_anchors()``).
        scale: 2, 3 or 4.
        weights: None (random init), ``"official"`` (the shipped official checkpoint) or a path
            to an esrnas checkpoint / state dict.
        deploy: Return the re-parameterised inference form.
    """
    # deferred: building imports torch and the block catalogue, which the registry does not need
    from search_space.builder import build_net
    from search_space.checkpoint import load_weights

    anchor = get_anchor(name)
    if scale not in SCALES:
        raise InputError(f"scale: {scale!r} not allowed; allowed: 2, 3, 4")
    spec = anchor.spec.with_scale(scale)
    model = build_net(spec, deploy=deploy)
    if weights is None:
        return model
    if str(weights) == "official":
        return _load_official(anchor, model, scale, deploy)
    load_weights(model, weights, deploy=deploy)
    return model.eval() if deploy else model


def _load_official(anchor: Anchor, model, scale: int, deploy: bool):
    import torch

    from search_space.anchors.importers import get_importer


    off = anchor.official
    if off is None:
        with_weights = [a for a in list_anchors() if get_anchor(a).has_official_weights]
        raise InputError(f"anchor {anchor.name!r} has no official weights; anchors with official "
                         f"weights: {', '.join(with_weights)}")
    if scale != anchor.official_scale:
        raise InputError(f"anchor {anchor.name!r}: official weights exist only at "
                         f"x{anchor.official_scale}, got scale={scale}")
    if not deploy:
        raise InputError(f"anchor {anchor.name!r}: official weights are in deploy form; "
                         "load them with deploy=True")
    state = torch.load(WEIGHTS_DIR / off["weights"], map_location="cpu", weights_only=True)
    mapped = get_importer(off["importer"])(state, model)
    model.load_state_dict(mapped, strict=True)
    return model.eval()
