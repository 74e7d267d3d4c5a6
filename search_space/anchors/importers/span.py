"""Importers for the SPAN family's official challenge weights (NTIRE 2024-2026 ESR).

All files are deploy-form state dicts of the challenge classes (Amazingren/NTIRE2024_ESR,
NTIRE2025_ESR, NTIRE2026_ESR ``models/``): their ``Conv3XC`` holds only the merged 3x3 conv
``eval_conv``, which is our re-parameterised ``rep_conv``. Block ``i`` of the official
``block_1`` .. ``block_n`` is our ``body.{i-1}``; the convs the official forwards apply after the
blocks map onto our body's last stage (SPAN, DISP) or the tail (SPAN-F, PDS, PKDSR).
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
from search_space.errors import InputError

__all__ = ["import_span", "import_spanf", "import_spanv2", "import_disp", "import_errn2"]


def _spab_pairs(blocks: int, prefix: str = "block_") -> list[tuple[str, str]]:
    """SPAB convs ``c{k}_r.eval_conv`` of ``block_{i+1}`` -> ``body.i.conv{k}.rep_conv``."""
    return [(f"body.{i}.conv{k}.rep_conv", f"{prefix}{i + 1}.c{k}_r.eval_conv")
            for i in range(blocks) for k in (1, 2, 3)]


def _ema(official: Mapping) -> Mapping:
    """The ``params_ema`` state of a BasicSR checkpoint (what the challenge test_demo loads)."""
    return official["params_ema"] if "params_ema" in official else official


def _spab_count(model: nn.Module) -> int:
    return sum(type(b).__name__ == "SPAB" for b in model.body)


@register_importer("span")
def import_span(official: Mapping[str, torch.Tensor], model: nn.Module) -> dict:
    """NTIRE 2024 ``SPAN30`` (team38 ``span_ch28_slim``; also the 2026 baseline), DSCF, and the
    NTIRE 2025 team46 ``SPAN`` (its ``params_ema``, as its test_demo loads)."""
    official = strip_prefix(_ema(official))
    n = _spab_count(model)
    pairs = [("head.rep_conv", "conv_1.eval_conv"), (f"body.{n}.conv.rep_conv", "conv_2.eval_conv"),
             ("fusion.conv", "conv_cat"), ("tail.conv", "upsampler.0")] + _spab_pairs(n)
    return map_keys(official, model, conv_keys(pairs), what="SPAN official weights")


@register_importer("spanf")
def import_spanf(official: Mapping[str, torch.Tensor], model: nn.Module) -> dict:
    """NTIRE 2025 ``SPANF`` (team24), NTIRE 2026 ``PDS`` (team01, ``conv_cat_1``/``conv_2_1``)
    and ``SPANFPrunedKD`` (PKDSR, team16: the ``params_ema`` weights, as its test_demo loads)."""
    official = strip_prefix(_ema(official))
    suffix = "_1" if "conv_cat_1.weight" in official else ""
    pairs = [("fusion.conv", f"conv_cat{suffix}"),
             ("tail.conv.rep_conv", f"conv_2{suffix}.eval_conv")]
    mapping = conv_keys(pairs + _spab_pairs(len(model.body)))
    mapping["tail.near.weight"] = "conv_near.weight"
    return map_keys(official, model, mapping, what="SPAN-F official weights")


@register_importer("spanv2")
def import_spanv2(official: Mapping[str, torch.Tensor], model: nn.Module) -> dict:
    """NTIRE 2026 ``SPANV2_ESR`` (team22, c2): bias-free convs, guidance 1x1 with bias."""
    official = strip_prefix(official)
    mapping = {"tail.near.weight": "conv_near.weight",
               "tail.conv.depthwise.weight": "depthwise_conv.weight",
               "tail.conv.pointwise.weight": "pointwise_conv.weight"}
    for i in range(len(model.body)):
        convs = [(f"body.{i}.conv{k}", f"block_{i + 1}.c{k}.conv") for k in (1, 2, 3)]
        mapping.update(conv_keys(convs, ("weight",)))
        if model.body[i].guidance is not None:
            mapping.update(conv_keys([(f"body.{i}.guidance", f"block_{i + 1}.guidance_map_conv")]))
    return map_keys(official, model, mapping, what="SPANV2 official weights")


@register_importer("disp")
def import_disp(official: Mapping[str, torch.Tensor], model: nn.Module) -> dict:
    """NTIRE 2026 ``DISP`` (team18; 1x1 ``conv_2``) and NTIRE 2025 ``TSR`` (team31; 3x3
    ``conv_2.eval_conv``): ``blocks.i`` = c1_r, c2_r, the extern convs, c3_r."""
    official = strip_prefix(official)
    n = len(model.body) - 1  # the last stage is conv_2
    conv_2 = "conv_2.eval_conv" if "conv_2.eval_conv.weight" in official else "conv_2"
    pairs = [("head", "conv_1.eval_conv"), (f"body.{n}.conv", conv_2),
             ("tail.conv", "upsampler.0")]
    for i in range(n):
        convs = len(model.body[i].convs)
        if convs < 3:
            raise InputError(f"disp official weights: REECB has at least 3 convs, got {convs}")
        theirs = ["c1_r", "c2_r"] + [f"_extern_conv_block.{j}" for j in range(convs - 3)] + ["c3_r"]
        pairs += [(f"body.{i}.convs.{k}", f"blocks.{i}.{name}.eval_conv")
                  for k, name in enumerate(theirs)]
    return map_keys(official, model, conv_keys(pairs), what="DISP official weights")


@register_importer("errn2")
def import_errn2(official: Mapping[str, torch.Tensor], model: nn.Module) -> dict:
    """NTIRE 2026 ``ERRN2`` (team20): conv_1, block_1..6 (rep1..rep4, four-conv SPABs), conv_2
    (our last conv), upsampler.0; a plain state dict."""
    official = strip_prefix(official)
    pairs = [("head", "conv_1"), ("last_conv", "conv_2"), ("tail.conv", "upsampler.0")]
    for i, block in enumerate(model.body):
        convs = ["conv1", "conv2", "conv3"] + [f"extra_convs.{j}"
                                              for j in range(len(block.extra_convs))]
        pairs += [(f"body.{i}.{ours}", f"block_{i + 1}.rep{k + 1}.rep_conv")
                  for k, ours in enumerate(convs)]
    return map_keys(official, model, conv_keys(pairs), what="ERRN2 official weights")
