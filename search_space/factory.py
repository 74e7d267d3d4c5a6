"""Models by spec or by name: the factory above the builder and the anchor registry.

The builder knows specs, the registry knows anchors; this module joins them (as timm's
``_factory`` sits above its builders), so neither imports the other.
"""

from __future__ import annotations

from pathlib import Path

import torch

from search_space.anchors import WEIGHTS_DIR, Anchor, get_anchor, list_anchors
from search_space.anchors.importers import get_importer
from search_space.builder import SRNet, build_net
from search_space.checkpoint import load_weights
from search_space.choices import SCALES
from search_space.errors import InputError
from search_space.spec import ArchSpec

__all__ = ["build_model", "load_anchor"]


def build_model(spec: ArchSpec | str, *, deploy: bool = False) -> SRNet:
    """Build the training form of ``spec`` (an ArchSpec or an anchor name).

    Args:
        spec: The architecture, or the name of a registered anchor.
        deploy: Return the re-parameterised inference form (eval mode) instead.
    """
    if isinstance(spec, str):
        spec = get_anchor(spec).spec
    return build_net(spec, deploy=deploy)


def load_anchor(name: str, *, scale: int = 4, weights: str | Path | None = None,
                deploy: bool = True) -> SRNet:
    """Build anchor ``name`` at ``scale``; eval mode when ``deploy``.

    Args:
        name: Anchor name (``list_anchors()``).
        scale: 2, 3 or 4.
        weights: None (random init), ``"official"`` (the shipped official checkpoint) or a path
            to an esrnas checkpoint / state dict.
        deploy: Return the re-parameterised inference form.
    """
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


def _load_official(anchor: Anchor, model: SRNet, scale: int, deploy: bool) -> SRNet:

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
