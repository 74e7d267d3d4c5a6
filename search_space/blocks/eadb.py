"""MSN's distillation block (EADB) with a multi-scale spatial attention and an enhanced CCA.

Source: the NTIRE 2024 efficient-SR entry MSN (team28), Amazingren/NTIRE2024_ESR
``models/team28_MSN.py``: an RFDN-style distillation block whose refine convs are BSConv-U units
with a separable, reflect-padded depthwise pair (``bsconv_sep``), followed by a padded
multi-scale ESA (three pooled branches, one of them local variance; the official ``MDSA``) and a
contrast-aware channel attention between a 1x1 and a depthwise 3x3 conv (``ECCA``), plus the
block input.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from search_space.blocks.bsconv import SeparableBSConvU
from search_space.blocks.cca import CCA
from search_space.blocks.safm import ChannelLayerNorm
from search_space.layers import check_min_size, conv1x1, distill_concat, make_act
from search_space.registry import register_block

__all__ = ["EADB", "MultiScaleESA", "ECCA", "EADB_MIN_SIZE", "strided_local_variance"]

# Smallest height/width the attention accepts: its stride-2 units shrink n to ceil(n / 4), and the
# 5x5 / 7x7 pools must leave maps of at least 2 pixels for the reflect-padded units after them:
# ceil(n / 4) >= 8. The official code fails below this size too.
EADB_MIN_SIZE = 29


def strided_local_variance(x: torch.Tensor, kernel: int = 7, stride: int = 3,
                           padding: int = 1) -> torch.Tensor:
    """Unbiased variance of each ``kernel x kernel`` window (reflect padding, ``stride``): the
    pooling of MSN's fourth attention branch. (B, C, H, W) -> (B, C, H', W')."""
    padded = F.pad(x, [padding] * 4, mode="reflect")
    windows = padded.unfold(2, kernel, stride).unfold(3, kernel, stride)
    return torch.var(windows, dim=(-1, -2), unbiased=True)


class MultiScaleESA(nn.Module):
    """Padded multi-scale ESA (the official ``ESA`` inside ``MDSA``), plus the input.

    ``n = LayerNorm(x)``, ``c = 1x1(n)`` (C -> f = C / 4); four stride-2 ``bsconv_sep`` units of
    ``c`` feed a 3x3/s3 max-pool, a 5x5/s3 max-pool, and a 7x7/s3 max-pool plus a 7x7/s3 local
    variance (summed); each of the three branches runs ``unit, GELU, unit``, is upsampled
    bilinearly, and the three plus ``1x1(c)`` give ``m = sigmoid(1x1(.))`` (f -> C). Returns
    ``n * m + x``.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        f = channels // 4
        self.norm = ChannelLayerNorm(channels)
        self.conv1 = conv1x1(channels, f)
        self.conv_f = conv1x1(f, f)
        self.down = nn.ModuleList(SeparableBSConvU(f, f, stride=2) for _ in range(4))
        self.conv_max = nn.ModuleList(SeparableBSConvU(f, f) for _ in range(3))
        self.conv3 = nn.ModuleList(SeparableBSConvU(f, f) for _ in range(3))
        self.conv4 = conv1x1(f, channels)
        self.act = make_act("gelu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        n = self.norm(x)
        c1 = self.conv1(n)
        pooled = (F.max_pool2d(self.down[0](c1), 3, stride=3, padding=1),
                  F.max_pool2d(self.down[1](c1), 5, stride=3),
                  F.max_pool2d(self.down[2](c1), 7, stride=3, padding=1)
                  + strided_local_variance(self.down[3](c1)))
        c3 = [F.interpolate(conv3(self.act(conv_max(p))), size, mode="bilinear",
                            align_corners=False)
              for p, conv_max, conv3 in zip(pooled, self.conv_max, self.conv3, strict=True)]
        m = torch.sigmoid(self.conv4(c3[0] + c3[1] + c3[2] + self.conv_f(c1)))
        return n * m + x


class ECCA(nn.Module):
    """Enhanced contrast-aware channel attention: ``dw3x3(cca(gelu(1x1(x)))) + x`` (CCA with a
    C -> C/r -> C bottleneck, r = 16)."""

    def __init__(self, channels: int, *, reduction: int = 16) -> None:
        super().__init__()
        self.project = conv1x1(channels, channels)
        self.act = make_act("gelu")
        self.cca = CCA(channels, reduction=reduction)
        self.dwconv = nn.Conv2d(channels, channels, 3, padding=1, groups=channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dwconv(self.cca(self.act(self.project(x)))) + x


@register_block("eadb")
class EADB(nn.Module):
    """MSN's distillation block.

    Three steps ``d_i = gelu(1x1_{C -> C/2}(r_{i-1}))``, ``r_i = gelu(u_i(r_{i-1}) + r_{i-1})``
    with ``bsconv_sep`` units ``u_i``, ``r_4 = gelu(u_{C -> C/2}(r_3))``;
    ``h = 1x1(cat(d_1, d_2, d_3, r_4))`` (2C -> C), the multi-scale ESA, ECCA, plus the input.
    Inputs must be at least ``EADB_MIN_SIZE`` (29) pixels high and wide. Source: NTIRE 2024 ESR
    team28 MSN, https://github.com/Amazingren/NTIRE2024_ESR.

    Args:
        channels: Feature width C (even, at least 16: the CCA bottleneck is C // 16).
    """

    min_input_size = EADB_MIN_SIZE

    def __init__(self, channels: int) -> None:
        super().__init__()
        half = channels // 2
        self.distill = nn.ModuleList(conv1x1(channels, half) for _ in range(3))
        self.refine = nn.ModuleList(SeparableBSConvU(channels, channels) for _ in range(3))
        self.last = SeparableBSConvU(channels, half)
        self.fuse = conv1x1(4 * half, channels)
        self.esa = MultiScaleESA(channels)
        self.ecca = ECCA(channels)
        self.act = make_act("gelu")

    @staticmethod
    def check_options(channels: int, **_: object) -> list[str]:
        if channels % 2 == 0 and channels >= 16:
            return []
        return [f"`channels % 2 == 0 and channels >= 16` must hold (distilled halves, CCA "
                f"bottleneck C // 16), got channels={channels}"]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_min_size(x, EADB_MIN_SIZE, "EADB", "stride-4 attention, 7x7 pools")
        h = self.fuse(distill_concat(x, self.distill, self.refine, self.last, self.act))
        return self.ecca(self.esa(h)) + x
