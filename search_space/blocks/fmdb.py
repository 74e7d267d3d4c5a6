"""FMDN's distillation block (FMDB): multi-range depthwise units, a two-branch padded ESA, a
frequency-split refinement (or a channel attention) and a gated feed-forward unit.

Source: the NTIRE 2025 efficient-SR entry FMDN (team26), Amazingren/NTIRE2025_ESR
``models/team26_FMDN.py``: an RFDN-style distillation block whose refine units chain depthwise
3x3, 5x3, 3x5 (and 3x3-3x3) convs over channel groups (the official ``MRConv``), followed by an
ESA with reflect-padded stride-2 BSConv-U units, max-pool and local-variance branches (``HVSA``),
then either a high/low-frequency refinement (``FRB``; the first three blocks) or a
depthwise conv + CCA with MogaNet's feature decomposition (``RCCA``; the last block), then a
LayerNorm + gated feed-forward unit with 5x2 / 2x5 depthwise convs (``AFFN``), plus the block input.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from search_space.blocks.bsconv import BSConvU
from search_space.blocks.cca import CCA
from search_space.blocks.eadb import strided_local_variance
from search_space.blocks.safm import ChannelLayerNorm, GatedFeedForward
from search_space.layers import check_min_size, conv1x1, distill_concat, make_act
from search_space.registry import register_block

__all__ = ["FMDB", "ChainedDepthwise", "MultiRangeConv", "TwoBranchESA", "FRB", "RCCA",
           "FMDB_MIN_SIZE", "FMDB_ATTENTIONS"]

# Smallest height/width: the attention's stride-2 units halve n (ceil), and its 7x7 / stride-3
# pool and 7x7 local variance (both padded by 1) need ceil(n / 2) >= 5; the official code fails
# below 9 too.
FMDB_MIN_SIZE = 9
# The refinement after the ESA: FRB (FMDN's first three blocks) or RCCA (its last block).
FMDB_ATTENTIONS = ("frb", "rcca")
# Depthwise kernels of the chained groups, in order (the fourth group: two 3x3 convs in a row).
_CHAIN_KERNELS = (((3, 3),), ((5, 3),), ((3, 5),), ((3, 3), (3, 3)))


def _depthwise(channels: int, kernel: tuple[int, int]) -> nn.Conv2d:
    """Depthwise conv with bias and ``k // 2`` zero padding per side (odd kernels: "same")."""
    return nn.Conv2d(channels, channels, kernel, padding=(kernel[0] // 2, kernel[1] // 2),
                     groups=channels)


class ChainedDepthwise(nn.Module):
    """Hierarchical depthwise convs over ``parts`` equal channel groups ``x_1 .. x_n``:
    ``s_1 = gelu(d_1(x_1))``, ``s_i = gelu(d_i(x_i + s_{i-1}))``, returns ``cat(s_1 .. s_n)``.

    ``d_1 .. d_4`` are depthwise 3x3, 5x3, 3x5 and two 3x3 convs in a row (all with bias), so
    the receptive field grows from group to group (FMDN's ``MRConv``; 3 or 4 groups).
    """

    def __init__(self, channels: int, parts: int) -> None:
        super().__init__()
        width = channels // parts
        self.parts = parts
        self.convs = nn.ModuleList(
            _depthwise(width, ks[0]) if len(ks) == 1
            else nn.Sequential(*(_depthwise(width, k) for k in ks))
            for ks in _CHAIN_KERNELS[:parts])
        self.act = make_act("gelu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = []
        for i, (group, conv) in enumerate(zip(x.chunk(self.parts, dim=1), self.convs,
                                              strict=True)):
            outs.append(self.act(conv(group if i == 0 else group + outs[-1])))
        return torch.cat(outs, 1)


class MultiRangeConv(nn.Module):
    """``gelu(chained(1x1(x)) + x)``: a 1x1 conv (with bias), :class:`ChainedDepthwise` over
    ``parts`` groups, the input added back (the official ``MRConv`` / ``MRConv_basic``)."""

    def __init__(self, channels: int, parts: int) -> None:
        super().__init__()
        self.project = conv1x1(channels, channels)
        self.chain = ChainedDepthwise(channels, parts)
        self.act = make_act("gelu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.chain(self.project(x)) + x)


class TwoBranchESA(nn.Module):
    """FMDN's padded two-branch ESA (the official ``HVSA``), plus the input.

    ``c = 1x1(x)`` (C -> f = C / 4); four stride-2 BSConv-U units of ``c`` (reflect padding)
    feed a 5x5/s3 max-pool, a 7x7/s3 max-pool, a 7x7/s3 and a 5x5/s3 local variance (unbiased;
    all padded by 1, the variances by reflection); branch 1 = 5x5 pool + 5x5 variance, branch 2 =
    7x7 pool + 7x7 variance, each through ``MultiRangeConv, ReLU, MultiRangeConv`` (3 groups) and
    upsampled bilinearly; ``m = sigmoid(1x1(b1 + b2 + 1x1(c)))`` (f -> C). Returns
    ``x * m + x``.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        f = channels // 4
        self.conv1 = conv1x1(channels, f)
        self.conv_f = conv1x1(f, f)
        self.down = nn.ModuleList(BSConvU(f, f, stride=2, padding_mode="reflect")
                                  for _ in range(4))
        self.conv_max = nn.ModuleList(MultiRangeConv(f, 3) for _ in range(2))
        self.conv3 = nn.ModuleList(MultiRangeConv(f, 3) for _ in range(2))
        self.conv4 = conv1x1(f, channels)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        c1 = self.conv1(x)
        pooled = (F.max_pool2d(self.down[0](c1), 5, stride=3, padding=1)
                  + strided_local_variance(self.down[3](c1), kernel=5),
                  F.max_pool2d(self.down[1](c1), 7, stride=3, padding=1)
                  + strided_local_variance(self.down[2](c1), kernel=7))
        c3 = [F.interpolate(conv3(self.relu(conv_max(p))), size, mode="bilinear",
                            align_corners=False)
              for p, conv_max, conv3 in zip(pooled, self.conv_max, self.conv3, strict=True)]
        m = torch.sigmoid(self.conv4(c3[0] + c3[1] + self.conv_f(c1)))
        return x * m + x


class FRB(nn.Module):
    """FMDN's frequency refinement: ``a, b = split(1x1_{C -> 2C}(l2n(x)))``;
    high part ``a * nearest(gelu(1x1(dw3x3(maxpool_{H/8}(a)) * alpha + var(a) * beta)))``, low
    part ``chained(b) + b`` (3 groups); returns ``1x1(low + high) + x``.

    ``l2n`` is the per-pixel L2 normalisation over the channels, ``var`` the unbiased per-channel
    variance over H, W; ``alpha`` (ones) and ``beta`` (zeros) are learnable per-channel scales.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.expand = conv1x1(channels, 2 * channels)
        self.dwconv = _depthwise(channels, (3, 3))
        self.alpha = nn.Parameter(torch.ones(1, channels, 1, 1))
        self.beta = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.gate_conv = conv1x1(channels, channels)
        self.chain = ChainedDepthwise(channels, 3)
        self.project = conv1x1(channels, channels)
        self.act = make_act("gelu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        a, b = self.expand(F.normalize(x)).chunk(2, dim=1)
        variance = torch.var(a, dim=(-2, -1), keepdim=True)
        pooled = self.dwconv(F.adaptive_max_pool2d(a, (h // 8, w // 8)))
        gate = self.act(self.gate_conv(pooled * self.alpha + variance * self.beta))
        high = a * F.interpolate(gate, size=(h, w), mode="nearest")
        low = self.chain(b) + b
        return self.project(low + high) + x


class RCCA(nn.Module):
    """FMDN's last-block refinement: ``h = gelu(dw3x3(x))``;
    ``sigma * (h - gelu(1x1_{C -> 1}(h))) + cca(h) + x`` (MogaNet's feature decomposition with a
    learnable per-channel ``sigma``, 1e-5 at init, and a CCA with a C -> 4 -> C bottleneck)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.dwconv = _depthwise(channels, (3, 3))
        self.decompose = conv1x1(channels, 1)
        self.sigma = nn.Parameter(torch.full((1, channels, 1, 1), 1e-5))
        self.cca = CCA(channels, reduction=max(1, channels // 4))
        self.act = make_act("gelu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.act(self.dwconv(x))
        return self.sigma * (h - self.act(self.decompose(h))) + self.cca(h) + x


@register_block("fmdb", choices={"attention": FMDB_ATTENTIONS})
class FMDB(nn.Module):
    """FMDN's distillation block.

    Three steps ``d_i = gelu(1x1_{C -> C/2}(r_{i-1}))``, ``r_i = gelu(u_i(r_{i-1}) + r_{i-1})``
    with multi-range units ``u_i`` (:class:`MultiRangeConv`, 4 groups),
    ``r_4 = gelu(bsconv_{C -> C/2}(r_3))`` (reflect-padded depthwise conv);
    ``h = 1x1(cat(d_1, d_2, d_3, r_4))`` (2C -> C), the two-branch ESA, the refinement
    (``attention``), then ``h = ffn(LayerNorm(h)) + h`` with a gated feed-forward unit
    (1x1 C -> 4C, depthwise 5x2 then 2x5, ``gelu(x1) * x2``, 1x1 2C -> C, bias-free), plus the
    input. Inputs must be at least ``FMDB_MIN_SIZE`` (9) pixels high and wide. Source: NTIRE 2025
    ESR team26 FMDN, https://github.com/Amazingren/NTIRE2025_ESR.

    Args:
        channels: Feature width C (a multiple of 12: groups of C / 4 and C / 3, and the
            attention's C / 4 in groups of three).
        attention: The refinement after the ESA. Option: frb (frequency refinement, FMDN's
            blocks 1-3) | rcca (depthwise conv, feature decomposition and CCA, its block 4).
    """

    min_input_size = FMDB_MIN_SIZE
    channel_multiple = 12

    def __init__(self, channels: int, *, attention: str = "frb") -> None:
        super().__init__()
        half = channels // 2
        self.distill = nn.ModuleList(conv1x1(channels, half) for _ in range(3))
        self.refine = nn.ModuleList(MultiRangeConv(channels, 4) for _ in range(3))
        self.last = BSConvU(channels, half, padding_mode="reflect")
        self.fuse = conv1x1(4 * half, channels)
        self.esa = TwoBranchESA(channels)
        self.attention = FRB(channels) if attention == "frb" else RCCA(channels)
        self.norm = ChannelLayerNorm(channels, eps=1e-5, pixels_first=True)
        self.ffn = GatedFeedForward(channels, 2 * channels, kernels=((5, 2), (2, 5)), gelu=True)
        self.act = make_act("gelu")

    @staticmethod
    def check_options(channels: int, **_: object) -> list[str]:
        if channels % 12 == 0:
            return []
        return [f"`channels % 12 == 0` must hold (groups of C / 4 and C / 3; the attention's "
                f"C / 4 in three groups), got channels={channels}"]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_min_size(x, FMDB_MIN_SIZE, "FMDB", "stride-2 attention, 7x7 pools")
        h = self.fuse(distill_concat(x, self.distill, self.refine, self.last, self.act))
        h = self.attention(self.esa(h))
        return self.ffn(self.norm(h)) + h + x
