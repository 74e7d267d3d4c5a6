"""Importers: official state dict -> state dict of the spec-built deploy model.

An importer ``fn(official: dict[str, Tensor], model: SRNet) -> dict[str, Tensor]`` must use every
official tensor and fill every model tensor with the same shape; :func:`map_keys` enforces both.
One module per family registers its importers with :func:`register_importer`.
"""

from search_space.anchors.importers import fmen, rfdn_imdn, rlfn_srn, safmn, span  # noqa: F401
from search_space.anchors.importers._registry import (
    conv_keys,
    get_importer,
    map_keys,
    register_importer,
    strip_prefix,
)

__all__ = ["register_importer", "get_importer", "map_keys", "strip_prefix", "conv_keys"]
