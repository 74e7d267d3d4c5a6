"""Importers for the NTIRE 2024-2026 entries built from feature-modulation and distillation blocks
(SAFMN family: ``EGFMN``, ``GFMN``, ``SAFMN_Deep15``; ``SMFAN``, ``MVFMNet``, ``AMCANet``,
``SGSDN``, ``LKFN``, ``MSN``, ``FMDN``).

The official ``to_feat`` / ``feats.i`` (``blocks.i``) / ``to_img.0`` (``upsampler.0``) are our
``head`` / ``body.i`` / ``tail.conv``; inside a block ``norm1``, ``safm.mfr.k``, ``safm.aggr`` and
``norm2`` keep their names (Deep15 wraps its GroupNorm as ``norm1.norm``) and the official
feed-forward (``ffd``; Deep15's ``ffn.0`` / ``ffn.2``) is our ``ffn``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch
from torch import nn

from search_space.anchors.importers._registry import (
    conv_keys,
    map_keys,
    register_importer,
    strip_prefix,
)

__all__ = ["import_amcanet", "import_egfmn", "import_fmdn", "import_gfmn", "import_lkfn",
           "import_mvfmnet", "import_msn", "import_safmn_deep15", "import_safmnv3",
           "import_sgsdn", "import_smfan"]


def _body_keys(model: nn.Module, prefix: str, renames: Iterable[tuple[str, str]]) -> dict:
    """``body.<rest>`` -> ``<prefix><rest>`` for every tensor of the body, with the substring
    ``renames`` applied in order (the challenge files name the same modules differently)."""
    renames = tuple(renames)
    out = {}
    for ours in model.state_dict():
        if ours.startswith("body."):
            theirs = prefix + ours[len("body."):]
            for a, b in renames:
                theirs = theirs.replace(a, b)
            out[ours] = theirs
    return out


@register_importer("egfmn")
def import_egfmn(official: Mapping[str, torch.Tensor], model: nn.Module) -> dict:
    """NTIRE 2024 ``EGFMN`` (team43): the ``params_ema`` state, as its test_demo loads."""
    if "params_ema" in official:
        official = official["params_ema"]
    official = strip_prefix(official)
    mapping = conv_keys((("head", "to_feat"), ("tail.conv", "to_img.0")))
    for ours in model.state_dict():
        if ours.startswith("body."):
            mapping[ours] = "feats." + ours[len("body."):].replace(".ffn.", ".ffd.")
    return map_keys(official, model, mapping, what="EGFMN official weights")


@register_importer("gfmn")
def import_gfmn(official: Mapping[str, torch.Tensor], model: nn.Module) -> dict:
    """NTIRE 2024 ``GFMN`` (team22): the ``params`` state (its test_demo loads ``params``).

    Its mean shift is a plain attribute (in no state dict); ours is the ``rgb_mean`` buffer, a
    constant, which is taken from the model itself.
    """
    if "params" in official:
        official = official["params"]
    official = dict(strip_prefix(official))
    official["rgb_mean"] = model.state_dict()["rgb_mean"]
    mapping = {"rgb_mean": "rgb_mean"}
    mapping.update(conv_keys((("head", "to_feat"), ("tail.conv", "to_img.0"))))
    renames = ((".ffn.", ".ffd."), (".safm.proj.", ".safm.proj_1."),
               (".safm.sigma", ".safm.sigma.scale"), (".ffd.sigma", ".ffd.sigma.scale"))
    mapping.update(_body_keys(model, "feats.", renames))
    return map_keys(official, model, mapping, what="GFMN official weights")


@register_importer("safmn_deep15")
def import_safmn_deep15(official: Mapping[str, torch.Tensor], model: nn.Module) -> dict:
    """NTIRE 2026 ``SAFMN_Deep15`` (team21): GroupNorm blocks with a 1x1 GELU MLP."""
    official = strip_prefix(official)
    mapping = conv_keys((("head", "to_feat"), ("tail.conv", "upsampler.0")))
    renames = ((".norm1.", ".norm1.norm."), (".norm2.", ".norm2.norm."),
               (".ffn.project_in.", ".ffn.0."), (".ffn.project_out.", ".ffn.2."))
    mapping.update(_body_keys(model, "blocks.", renames))
    return map_keys(official, model, mapping, what="SAFMN-Deep15 official weights")


@register_importer("smfan")
def import_smfan(official: Mapping[str, torch.Tensor], model: nn.Module) -> dict:
    """NTIRE 2024 ``SMFAN`` (team24): the ``params_ema`` state, as its test_demo loads;
    bias-free ``to_feat`` and ``to_img.0``."""
    if "params_ema" in official:
        official = official["params_ema"]
    official = strip_prefix(official)
    mapping = {"head.weight": "to_feat.weight", "tail.conv.weight": "to_img.0.weight"}
    renames = {"smfa.project_in": "smfa.linear_0", "smfa.modulation_conv": "smfa.linear_1",
               "smfa.project_out": "smfa.linear_2", "smfa.dwconv": "smfa.dw_conv",
               "smfa.detail_dwconv": "smfa.lde.conv_0.0", "smfa.detail_pwconv": "smfa.lde.conv_0.1",
               "smfa.detail_out": "smfa.lde.conv_1", "pcfn.project_in": "pcfn.conv_0",
               "pcfn.partial_conv": "pcfn.conv_1", "pcfn.project_out": "pcfn.conv_2"}
    for ours in model.state_dict():
        if ours.startswith("body."):
            _, index, rest = ours.split(".", 2)  # body.{i}.{module}.{param}
            module, param = rest.rsplit(".", 1)
            mapping[ours] = f"feats.{index}.{renames[module]}.{param}"
    return map_keys(official, model, mapping, what="SMFAN official weights")


@register_importer("mvfmnet")
def import_mvfmnet(official: Mapping[str, torch.Tensor], model: nn.Module) -> dict:
    """NTIRE 2025 ``MVFMNet`` (team27): a plain state dict, loaded strictly by its test_demo."""
    official = strip_prefix(official)
    mapping = conv_keys((("head", "to_feat"), ("tail.conv", "to_img.0")))
    renames = ((".attention_coarse.dwconv.", ".sa1.dw_conv."),
               (".attention_fine.dwconv.", ".sa2.dw_conv."),
               (".attention_coarse.", ".sa1."), (".attention_fine.", ".sa2."),
               (".local_in.", ".linear.0."), (".local_dwconv.", ".linear.2."),
               (".norm.", ".pixel_norm."), (".beta", ".belt"))
    mapping.update(_body_keys(model, "feats.", renames))
    return map_keys(official, model, mapping, what="MVFMNet official weights")


@register_importer("amcanet")
def import_amcanet(official: Mapping[str, torch.Tensor], model: nn.Module) -> dict:
    """NTIRE 2026 ``AMCANet`` (team17): the ``params_ema`` state, as its test_demo loads."""
    if "params_ema" in official:
        official = official["params_ema"]
    official = strip_prefix(official)
    n = len(model.body) - 1  # the last stage is the 1x1 conv before the long residual
    mapping = conv_keys((("head", "head"), (f"body.{n}.conv", "conv1x1"),
                         ("tail.conv", "tail")))
    renames = ((".heads.", ".amca.heads."), (".fusion_conv.", ".amca.fusion_conv."),
               (".project_in.", ".conv1x1."), (".dwconv_res.", ".conv3x3_1."),
               (".dwconv_1.", ".conv3x3_2."), (".dwconv_2.", ".conv3x3_3."),
               (".dwconv_v.", ".conv3x3_v."), (".pwconv.", ".conv1x1_2."),
               (".gate_conv.", ".conv1x1_3."))
    ffn_renames = ((".ffn.project_in.", ".fsg.conv1x1_1."), (".ffn.dwconv.", ".fsg.conv3x3_2."),
                   (".ffn.gate_conv.", ".fsg.conv1x1_2."),
                   (".ffn.project_out.", ".fsg.conv1x1_3."))
    for ours in model.state_dict():
        if ours.startswith("body.") and not ours.startswith(f"body.{n}."):
            theirs = "blocks." + ours[len("body."):]
            for a, b in ffn_renames if ".ffn." in ours else renames:
                theirs = theirs.replace(a, b)
            mapping[ours] = theirs
    return map_keys(official, model, mapping, what="AMCANet official weights")


@register_importer("sgsdn")
def import_sgsdn(official: Mapping[str, torch.Tensor], model: nn.Module) -> dict:
    """NTIRE 2025 ``SGSDN`` (team18): the ``params_ema`` state, as its test_demo loads."""
    if "params_ema" in official:
        official = official["params_ema"]
    official = strip_prefix(official)
    mapping = conv_keys((("head", "fea_conv"), ("tail.conv", "upsampler.0")))
    renames = ((".units.0.", ".VA1."), (".units.1.", ".VA2."), (".units.2.", ".VA3."),
               (".expand.", ".pw1."), (".large_kernel.", ".LKA35."), (".large_out.", ".pw2."),
               (".local_dwconv.", ".conv_0."), (".local_out.", ".conv_1."),
               (".ffn_dwconv.", ".VSD.conv_0."), (".ffn_out.", ".VSD.conv_1."))
    mapping.update(_body_keys(model, "feats.", renames))
    return map_keys(official, model, mapping, what="SGSDN official weights")


@register_importer("lkfn")
def import_lkfn(official: Mapping[str, torch.Tensor], model: nn.Module) -> dict:
    """NTIRE 2024 ``LKFN`` (team03): fea_conv (BSConv-U on the image repeated 4 times), B1..B8,
    c1 (the aggregate fusion), c2 (BSConv-U last conv), upsampler.0; a plain state dict."""
    official = strip_prefix(official)
    mapping = {"head.pw.weight": "fea_conv.pw.weight", "last_conv.pw.weight": "c2.pw.weight"}
    mapping.update(conv_keys((("head.dw", "fea_conv.dw"), ("last_conv.dw", "c2.dw"),
                         ("fusion.conv", "c1"), ("tail.conv", "upsampler.0"))))
    renames = ((".distill.0.", ".c1_d."), (".distill.1.", ".c2_d."), (".distill.2.", ".c3_d."),
               (".refine.0.", ".c1_r."), (".refine.1.", ".c2_r."), (".refine.2.", ".c3_r."),
               (".last.", ".c4."), (".fuse.", ".c5."), (".attention.conv", ".atten.conv_layer"),
               (".project.", ".c6."), (".norm.", ".pixel_norm."))
    for ours in model.state_dict():
        if ours.startswith("body."):
            _, index, rest = ours.split(".", 2)
            theirs = f"B{int(index) + 1}.{rest}"
            for a, b in renames:
                theirs = theirs.replace(a, b)
            mapping[ours] = theirs
    return map_keys(official, model, mapping, what="LKFN official weights")


@register_importer("safmnv3")
def import_safmnv3(official: Mapping[str, torch.Tensor], model: nn.Module) -> dict:
    """NTIRE 2025 ``SAFMN_NTIRE25`` (team19 SAFMNv3): bias-free convs; a plain state dict."""
    official = strip_prefix(official)
    mapping = {"head.weight": "to_feat.weight", "tail.conv.weight": "to_img.0.weight"}
    renames = {"modulated_conv": "conv1.conv1", "plain_conv": "conv1.conv2",
               "dwconv": "conv1.dwconv", "gate_conv": "conv1.conv3", "mix": "conv1.out",
               "ffn_in": "conv2.conv1", "ffn_out": "conv2.conv2"}
    for ours in model.state_dict():
        if ours.startswith("body."):
            _, index, module, param = ours.split(".")
            mapping[ours] = f"feats.{index}.{renames[module]}.{param}"
    return map_keys(official, model, mapping, what="SAFMNv3 official weights")


# MSN: our EADB module path prefix -> the official one (first match wins).
_MSN_PREFIXES = (
    *((f"distill.{k}.", f"c{k + 1}_d.") for k in range(3)),
    *((f"refine.{k}.", f"c{k + 1}_r.") for k in range(3)),
    ("last.", "c4."), ("fuse.", "c5."), ("esa.norm.", "esa.body.0.ln."),
    *((f"esa.down.{k}.", f"esa.body.0.conv2_{k}.") for k in range(4)),
    *((f"esa.conv_max.{k}.", f"esa.body.0.conv_max_{k}.") for k in range(3)),
    *((f"esa.conv3.{k}.", f"esa.body.0.conv3_{k}.") for k in range(3)),
    ("esa.", "esa.body.0."), ("ecca.project.", "cca.body.0."),
    ("ecca.cca.squeeze.", "cca.body.2.conv_du.0."), ("ecca.cca.excite.", "cca.body.2.conv_du.2."),
    ("ecca.dwconv.", "cca.body.3."),
)


@register_importer("msn")
def import_msn(official: Mapping[str, torch.Tensor], model: nn.Module) -> dict:
    """NTIRE 2024 ``MSN`` (team28): fea_conv, B1..B8 (EADB), c1 (the sum fusion), c2 (separable
    BSConv-U last conv), upsampler.upsampleOneStep.0; the ``params_ema`` state, as its test_demo
    loads. Its mean shift is a plain attribute (in no state dict); ours is the ``rgb_mean``
    buffer, a constant, which is taken from the model itself."""
    if "params_ema" in official:
        official = official["params_ema"]
    official = dict(strip_prefix(official))
    official["rgb_mean"] = model.state_dict()["rgb_mean"]
    mapping = {"rgb_mean": "rgb_mean", "last_conv.pw.weight": "c2.pw.weight"}
    mapping.update(conv_keys((("head", "fea_conv"), ("last_conv.dw1", "c2.dw1"),
                         ("last_conv.dw2", "c2.dw2"), ("fusion.conv", "c1"),
                         ("tail.conv", "upsampler.upsampleOneStep.0"))))
    for ours in model.state_dict():
        if ours.startswith("body."):
            _, index, rest = ours.split(".", 2)
            a, b = next((a, b) for a, b in _MSN_PREFIXES if rest.startswith(a))
            mapping[ours] = f"B{int(index) + 1}.{b}{rest[len(a):]}"
    return map_keys(official, model, mapping, what="MSN official weights")


# FMDN: our FMDB module path prefix -> the official one (first match wins). Inside a multi-range
# unit ``project`` is ``conv1`` and ``chain.convs.k`` is ``conv2_{k+1}`` (the fourth group's two
# convs: ``conv2_4.0`` / ``.1``); the official ``cca`` is our ``attention`` (FRB or RCCA).
_FMDN_PREFIXES = (
    *((f"distill.{k}.", f"c{k + 1}_d.") for k in range(3)),
    *((f"refine.{k}.", f"c{k + 1}_r.") for k in range(3)),
    ("last.", "c4."), ("fuse.", "c5."),
    *((f"esa.down.{k}.", f"esa.body.0.conv2_{k + 1}.") for k in range(4)),
    *((f"esa.conv_max.{k}.", f"esa.body.0.conv_max_{k + 1}.") for k in range(2)),
    *((f"esa.conv3.{k}.", f"esa.body.0.conv3_{k + 1}.") for k in range(2)),
    ("esa.", "esa.body.0."),
    ("attention.expand.", "cca.linear_0."), ("attention.gate_conv.", "cca.conv0."),
    ("attention.project.", "cca.linear_2."), ("attention.beta", "cca.belt"),
    *((f"attention.chain.convs.{k}.", f"cca.conv2_{k + 1}.") for k in range(3)),
    ("attention.sigma", "cca.sigma.scale"), ("attention.cca.squeeze.", "cca.cca.conv_du.0."),
    ("attention.cca.excite.", "cca.cca.conv_du.2."), ("attention.", "cca."),
    ("norm.", "ea.norm4.body."), ("ffn.dwconv.0.", "ea.restormer_ffn.dwconv1."),
    ("ffn.dwconv.1.", "ea.restormer_ffn.dwconv2."), ("ffn.", "ea.restormer_ffn."),
)
# Inside a unit (after the prefix): our names -> the official ones.
_FMDN_UNIT = (("project.", "conv1."), *((f"chain.convs.{k}.", f"conv2_{k + 1}.") for k in range(4)))


@register_importer("fmdn")
def import_fmdn(official: Mapping[str, torch.Tensor], model: nn.Module) -> dict:
    """NTIRE 2025 ``FMDN`` (team26): fea_conv, B1..B3 (FMDB_basic: FRB), c1 (the hff fusion),
    B4 (FMDB: RCCA, our refine block), c2 (BSConv-U last conv), upsampler.0; the ``params_ema``
    state, as its test_demo loads. Its mean shift is a plain attribute (in no state dict); ours is
    the ``rgb_mean`` buffer, a constant, which is taken from the model itself."""
    if "params_ema" in official:
        official = official["params_ema"]
    official = dict(strip_prefix(official))
    official["rgb_mean"] = model.state_dict()["rgb_mean"]
    mapping = {"rgb_mean": "rgb_mean", "last_conv.pw.weight": "c2.pw.weight"}
    mapping.update(conv_keys((("head", "fea_conv"), ("last_conv.dw", "c2.dw"),
                              ("fusion.conv", "c1"), ("tail.conv", "upsampler.0"))))
    for ours in model.state_dict():
        if ours.startswith("body."):
            _, index, rest = ours.split(".", 2)
            a, b = next((a, b) for a, b in _FMDN_PREFIXES if rest.startswith(a))
            rest = rest[len(a):]
            if a.startswith(("refine.", "esa.conv_max.", "esa.conv3.")):  # a multi-range unit
                u, v = next((u, v) for u, v in _FMDN_UNIT if rest.startswith(u))
                rest = v + rest[len(u):]
            mapping[ours] = f"B{int(index) + 1}.{b}{rest}"
    return map_keys(official, model, mapping, what="FMDN official weights")
