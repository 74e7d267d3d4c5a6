"""SGSDN's block (LPF): three gated large-kernel units and a depthwise feed-forward unit.

Source: the NTIRE 2025 efficient-SR entry SGSDN (team18), Amazingren/NTIRE2025_ESR
``models/team18_SGSDN.py``.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from search_space.layers import conv1x1, make_act
from search_space.registry import register_block

__all__ = ["LPF", "GatedLargeKernelUnit"]


def _large_kernel(channels: int) -> nn.Sequential:
    """Separable depthwise large kernel: 1x5, dilated 1x11 (dilation 3, 31 wide), 5x1, 11x1."""
    return nn.Sequential(
        nn.Conv2d(channels, channels, (1, 5), padding=(0, 2), groups=channels),
        nn.Conv2d(channels, channels, (1, 11), padding=(0, 15), dilation=3, groups=channels),
        nn.Conv2d(channels, channels, (5, 1), padding=(2, 0), groups=channels),
        nn.Conv2d(channels, channels, (11, 1), padding=(15, 0), dilation=3, groups=channels),
    )


class GatedLargeKernelUnit(nn.Module):
    """Official SDC: ``a1, a2 = split(gelu(1x1_{C -> 2C}(x)))``; large-kernel half
    ``1x1(lk(a1) * a2)`` and local half ``gelu(1x1(dw3x3(a1) * a2))``, each C/2 wide,
    concatenated."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        half = channels // 2
        self.expand = conv1x1(channels, 2 * channels, bias=False)
        self.large_kernel = _large_kernel(channels)
        self.large_out = conv1x1(channels, half, bias=False)
        self.local_dwconv = nn.Conv2d(channels, channels, 3, padding=1, groups=channels)
        self.local_out = conv1x1(channels, half)
        self.act = make_act("gelu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a1, a2 = self.act(self.expand(x)).chunk(2, dim=1)
        y = self.large_out(self.large_kernel(a1) * a2)
        local = self.act(self.local_out(self.local_dwconv(a1) * a2))
        return torch.cat([local, y], 1)


@register_block("lpf")
class LPF(nn.Module):
    """SGSDN's block: three gated large-kernel units on L2-normalised inputs, then a depthwise
    feed-forward unit.

    ``x1 = u1(l2n(x))``, ``x2 = u2(l2n(x1))``, ``x3 = u3(l2n(x2)) + x``, ``y = ffn(x3) + x3``
    with ``ffn = 1x1_{2C -> C}(gelu(dw3x3_{C -> 2C}(.)))`` and ``l2n`` the per-pixel L2
    normalisation over the channels. Source: NTIRE 2025 ESR team18 SGSDN,
    https://github.com/Amazingren/NTIRE2025_ESR.

    Args:
        channels: Feature width C (even); output shape == input shape.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.units = nn.ModuleList(GatedLargeKernelUnit(channels) for _ in range(3))
        self.ffn_dwconv = nn.Conv2d(channels, 2 * channels, 3, padding=1, groups=channels)
        self.ffn_out = conv1x1(2 * channels, channels)
        self.act = make_act("gelu")

    @staticmethod
    def check_options(channels: int, **_: object) -> list[str]:
        if channels % 2 == 0:
            return []
        return [f"`channels % 2 == 0` must hold (two halves of C / 2), got channels={channels}"]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        for unit in self.units:
            h = unit(F.normalize(h))
        h = h + x
        return self.ffn_out(self.act(self.ffn_dwconv(h))) + h
