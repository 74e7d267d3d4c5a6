"""Models by spec or by name: the factory above the builder and the anchor registry.

The builder knows specs, the registry knows anchors; this module joins them (as timm's
``_factory`` sits above its builders), so the builder never imports the registry. Loading an
anchor with its official weights is the registry's own ``search_space.anchors.load``.
"""

from __future__ import annotations

from search_space.anchors import get_anchor
from search_space.builder import SRNet, build_net
from search_space.spec import ArchSpec

__all__ = ["build_model"]


def build_model(spec: ArchSpec | str, *, deploy: bool = False) -> SRNet:
    """Build the training form of ``spec`` (an ArchSpec or an anchor name).

    Args:
        spec: The architecture, or the name of a registered anchor.
        deploy: Return the re-parameterised inference form (eval mode) instead.
    """
    if isinstance(spec, str):
        spec = get_anchor(spec).spec
    return build_net(spec, deploy=deploy)
