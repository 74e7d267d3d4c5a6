"""Importers for the official RLFN (NTIRE 2022 ``RLFN_cut``) and SRN (NTIRE 2023) weights.

Sources: ofsoundof/NTIRE2022_ESR ``models/team04_rlfn.py`` + ``model_zoo/team04_rlfn.pth`` and
wnxbwyc/SRN ``models/team25_SRN.py`` + ``model_zoo/team25_srn.pt``. Both are plain state dicts of
the deploy form; our ESA keeps the official sub-module names, so only the prefixes change.
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

__all__ = ["import_rlfn", "import_srn", "import_rlfn_ntire24", "import_r2net"]

_RLFN_ESA = ("conv1", "conv_f", "conv2", "conv3", "conv4")
_SRN_ESA = ("conv1", "conv2", "conv3", "conv4")


@register_importer("rlfn")
def import_rlfn(official: Mapping[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """``RLFN_cut``: fea_conv, B1..B4 (c1_r, c2_r, c3_r, c5, esa.*), LR_conv, upsampler.0."""
    official = strip_prefix(official)
    pairs = [("head", "fea_conv"), ("last_conv", "LR_conv"), ("tail.conv", "upsampler.0")]
    for i in range(len(model.body)):
        ours, theirs = f"body.{i}", f"B{i + 1}"
        pairs += [
            (f"{ours}.conv1", f"{theirs}.c1_r"),
            (f"{ours}.conv2", f"{theirs}.c2_r"),
            (f"{ours}.conv3", f"{theirs}.c3_r"),
            (f"{ours}.conv_out", f"{theirs}.c5"),
        ]
        pairs += [(f"{ours}.esa.{c}", f"{theirs}.esa.{c}") for c in _RLFN_ESA]
    return map_keys(official, model, conv_keys(pairs), what="rlfn (team04_rlfn.pth)")


@register_importer("srn_s_ntire23")
def import_srn(official: Mapping[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """NTIRE 2023 ``SRN``: head, recon_trunk.i (conv1, conv2, ESA.*), tail."""
    official = strip_prefix(official)
    pairs = [("head", "head"), ("tail.conv", "tail")]
    for i in range(len(model.body)):
        ours, theirs = f"body.{i}", f"recon_trunk.{i}"
        pairs += [(f"{ours}.conv1", f"{theirs}.conv1"), (f"{ours}.conv2", f"{theirs}.conv2")]
        pairs += [(f"{ours}.esa.{c}", f"{theirs}.ESA.{c}") for c in _SRN_ESA]
    return map_keys(official, model, conv_keys(pairs), what="srn_s_ntire23 (team25_srn.pt)")


@register_importer("rlfn_ntire24")
def import_rlfn_ntire24(official: Mapping[str, torch.Tensor],
                        model: nn.Module) -> dict[str, torch.Tensor]:
    """NTIRE 2024 RLFN derivatives: ``LightRLFN`` (team16: conv_1, block_1..4, conv_2,
    upsampler.0) and ``SlimRLFN`` (team21: block_list.i, upsampler.upsample_conv, slim ESA)."""
    official = strip_prefix(official)
    listed = any(k.startswith("block_list.") for k in official)
    tail = "upsampler.upsample_conv" if "upsampler.upsample_conv.weight" in official \
        else "upsampler.0"
    pairs = [("head", "conv_1"), ("last_conv", "conv_2"), ("tail.conv", tail)]
    for i in range(len(model.body)):
        ours, theirs = f"body.{i}", f"block_list.{i}" if listed else f"block_{i + 1}"
        pairs += [(f"{ours}.conv1", f"{theirs}.c1_r"), (f"{ours}.conv2", f"{theirs}.c2_r"),
                  (f"{ours}.conv3", f"{theirs}.c3_r"), (f"{ours}.conv_out", f"{theirs}.c5")]
        esa = _RLFN_ESA if model.body[i].esa.conv_f is not None else _SRN_ESA
        pairs += [(f"{ours}.esa.{c}", f"{theirs}.esa.{c}") for c in esa]
    return map_keys(official, model, conv_keys(pairs), what="NTIRE 2024 RLFN official weights")


@register_importer("r2net")
def import_r2net(official: Mapping[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """NTIRE 2024 ``R2Net`` (team29, bias-free): conv_1, block_1..4 (c1_r, c3_r, slim ESA),
    conv_2 (1x1, our body's last stage), upsampler.0."""
    official = strip_prefix(official)
    n = len(model.body) - 1
    pairs = [("head", "conv_1"), (f"body.{n}.conv", "conv_2"), ("tail.conv", "upsampler.0")]
    for i in range(n):
        ours, theirs = f"body.{i}", f"block_{i + 1}"
        pairs += [(f"{ours}.conv1", f"{theirs}.c1_r"), (f"{ours}.conv2", f"{theirs}.c3_r")]
        pairs += [(f"{ours}.esa.{c}", f"{theirs}.esa.{c}") for c in _SRN_ESA]
    mapping = {f"{ours}.weight": f"{theirs}.weight" for ours, theirs in pairs}
    return map_keys(official, model, mapping, what="R2Net official weights")
