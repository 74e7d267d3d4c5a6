"""Importers for the official E-RFDN and NTIRE-baseline IMDN weights.

E-RFDN: ``team00_rfdn.pth`` (wnxbwyc/SRN; byte-identical to njulj/RFDN ``RFDN_AIM.pth``), class
``RFDN`` with attributes ``fea_conv``, ``B1``..``B4``, ``c``, ``LR_conv``, ``upsampler``.
IMDN baseline: ``imdn_baseline.pth`` (ofsoundof/NTIRE2022_ESR), KAIR's ``IMDN`` built as one
``nn.Sequential`` ``model``: ``0`` head, ``1.sub.{0..nb-1}`` IMDBs, ``1.sub.{nb}`` the conv inside
the long shortcut, ``2`` the tail conv.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from search_space.anchors.importers._registry import (
    conv_keys,
    map_keys,
    register_importer,
    strip_prefix,
)

__all__ = ["import_e_rfdn", "import_imdn_ntire"]

# Official RFDB / ESA attribute -> ours (relative to the block).
_RFDB_KEYS = {
    "c1_d": "distill.0",
    "c2_d": "distill.1",
    "c3_d": "distill.2",
    "c1_r": "refine.0",
    "c2_r": "refine.1",
    "c3_r": "refine.2",
    "c4": "last",
    "c5": "fuse",
    **{
        f"esa.{name}": f"esa.{name}"
        for name in ("conv1", "conv_f", "conv2", "conv_max", "conv3", "conv3_", "conv4")
    },
}
# KAIR IMDBlock attribute -> ours; its "C" + activation convs are Sequentials (conv at index 0).
_KAIR_IMDB_KEYS = {
    "conv1.0": "convs.0",
    "conv2.0": "convs.1",
    "conv3.0": "convs.2",
    "conv4": "last",
    "conv1x1": "fuse",
}


@register_importer("e_rfdn")
def import_e_rfdn(official: Mapping[str, torch.Tensor], model: nn.Module) -> dict:
    """E-RFDN (4 RFDBs, aggregate fusion) -> the ``e_rfdn`` anchor."""
    official = strip_prefix(official)
    pairs = {
        "head": "fea_conv",
        "fusion.conv": "c.0",
        "last_conv": "LR_conv",
        "tail.conv": "upsampler.0",
    }
    for i in range(len(model.body)):
        pairs.update(
            {f"body.{i}.{ours}": f"B{i + 1}.{theirs}" for theirs, ours in _RFDB_KEYS.items()}
        )
    return map_keys(official, model, conv_keys(pairs), what="e_rfdn official weights")


@register_importer("imdn_ntire")
def import_imdn_ntire(official: Mapping[str, torch.Tensor], model: nn.Module) -> dict:
    """KAIR/NTIRE 2022 baseline IMDN (8 IMDBs without CCA) -> the ``imdn_ntire`` anchor."""
    official = strip_prefix(official)
    blocks = len(model.body)
    pairs = {"head": "model.0", "last_conv": f"model.1.sub.{blocks}", "tail.conv": "model.2"}
    for i in range(blocks):
        pairs.update(
            {
                f"body.{i}.{ours}": f"model.1.sub.{i}.{theirs}"
                for theirs, ours in _KAIR_IMDB_KEYS.items()
            }
        )
    return map_keys(official, model, conv_keys(pairs), what="imdn_ntire official weights")
