"""FMEN importers: official deploy-form state dicts -> the spec-built ``fmen_s`` deploy model.

Two official namings of the same deploy topology exist: the NTIRE 2022 class
(ofsoundof/NTIRE2022_ESR ``models/team03_fmen.py``: ``basic_blocks``, ``hfabs``) and the authors'
TEST_FMEN (NJU-Jet/FMEN ``test_fmen.py``: ``ERBs``, ``HFABs``). Both lay the body out as
``warmup = [conv, HFAB]`` then ``down_blocks`` x (ERB, HFAB); our body is the same chain, flat.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from search_space.anchors.importers._registry import (
    map_keys,
    register_importer,
    strip_prefix,
)

__all__ = ["import_fmen"]

# Official (trunk ERB, HFAB) module-list names: NTIRE team03, then the authors' repository.
_NAMINGS = (("basic_blocks", "hfabs"), ("ERBs", "HFABs"))
# Our top-level modules -> theirs (``tail.conv`` is ``tail.0`` in an nn.Sequential there).
_FIXED = {"head.": "head.", "last_conv.": "lr_conv.", "tail.conv.": "tail.0."}


def _official_key(ours: str, erbs: str, hfabs: str) -> str:
    for prefix, theirs in _FIXED.items():
        if ours.startswith(prefix):
            return theirs + ours[len(prefix) :]
    _, index, rest = ours.split(".", 2)  # "body.<i>.<rest>"
    i = int(index)
    if i == 0:  # warm-up conv block: our ConvBlock wraps the conv as ``.conv``
        return "warmup.0." + rest.removeprefix("conv.")
    if i == 1:
        return "warmup.1." + rest
    pair, is_hfab = divmod(i - 2, 2)
    return f"{hfabs if is_hfab else erbs}.{pair}.{rest}"


@register_importer("fmen_s")
def import_fmen(official: Mapping[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """Map an official FMEN deploy state dict (team03 or TEST_FMEN naming) onto ``model``."""
    official = strip_prefix(official)
    erbs, hfabs = next(
        (names for names in _NAMINGS if any(k.startswith(names[0] + ".") for k in official)),
        _NAMINGS[0],
    )
    mapping = {k: _official_key(k, erbs, hfabs) for k in model.state_dict()}
    return map_keys(official, model, mapping, what="FMEN official weights")
