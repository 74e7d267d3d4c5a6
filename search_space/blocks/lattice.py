"""LatticeNet's lattice blocks and backward feature fusion.

Paper: LatticeNet: Towards Lightweight Image Super-resolution with Lattice Block (Luo, Xie, Zhang,
Qu, Li and Fu, ECCV 2020), https://www.ecva.net/papers/eccv_2020/papers_ECCV/papers/123670273.pdf.
The network: two linear 3x3 convs (in a spec: the head and a ``conv`` block), this block (the
lattice blocks, tied by the backward fusion), then a linear 3x3 conv (``last_conv``) and the
sub-pixel tail.
"""

from __future__ import annotations

import torch
from torch import nn

from search_space.layers import conv, conv1x1, make_act
from search_space.registry import register_block

__all__ = ["LatticeBody", "LatticeBlock", "CombinationCoefficient"]


class CombinationCoefficient(nn.Module):
    """Per-channel coefficients in (0, 1) of a feature map: the mean of two squeeze-excitation
    branches, one on the channel means, one on the channel standard deviations."""

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        mid = max(channels // reduction, 1)
        self.from_mean = self._branch(channels, mid)
        self.from_std = self._branch(channels, mid)

    @staticmethod
    def _branch(channels: int, mid: int) -> nn.Sequential:
        return nn.Sequential(conv1x1(channels, mid), nn.ReLU(), conv1x1(mid, channels),
                             nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # (B, C, H, W) -> (B, C, 1, 1). The unbiased std, as the reference; the floor keeps the
        # gradient finite on a constant channel.
        mean = x.mean(dim=(2, 3), keepdim=True)
        std = x.var(dim=(2, 3), keepdim=True).clamp_min(1e-12).sqrt()
        return (self.from_mean(mean) + self.from_std(std)) / 2


class LatticeBlock(nn.Module):
    """Two butterfly structures: a three-conv branch each, whose output and input are combined
    both ways with learned per-channel coefficients; a 1x1 conv fuses the two results."""

    def __init__(self, channels: int, mid_channels: int, act: str) -> None:
        super().__init__()
        self.branch1 = self._branch(channels, mid_channels, act)
        self.branch2 = self._branch(channels, mid_channels, act)
        self.a1, self.b1, self.a2, self.b2 = (CombinationCoefficient(channels) for _ in range(4))
        self.fuse = conv1x1(2 * channels, channels)

    @staticmethod
    def _branch(channels: int, mid: int, act: str) -> nn.Sequential:
        return nn.Sequential(conv(channels, mid), make_act(act), conv(mid, mid), make_act(act),
                             conv(mid, channels), make_act(act))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.branch1(x)
        p1 = x + self.a1(h) * h
        q1 = h + self.b1(x) * x
        g = self.branch2(p1)
        q2 = q1 + self.b2(g) * g
        p2 = g + self.a2(q1) * q1
        return self.fuse(torch.cat([p2, q2], 1))


@register_block("lattice", searchable=False)
class LatticeBody(nn.Module):
    """LatticeNet's body: n lattice blocks, their outputs fused backward (last to first: each
    1x1-reduced to C/2 and activated, joined with the running fusion by a 1x1 conv C -> C/2, also
    activated; the first is concatenated, giving C), plus the input. The fusion ties the blocks,
    so they form one block here. LatticeNet: C = 64, n = 4, branch width 48, LeakyReLU 0.05 in
    the branches and ReLU in the fusion.

    Args:
        channels: Feature width C (even); output shape == input shape.
        lattice_blocks: n (default 4).
        mid_channels: Width of the lattice blocks' branches (default 48).
        act: Activation of the branches (default lrelu0.05).
    """

    def __init__(self, channels: int, *, lattice_blocks: int = 4, mid_channels: int = 48,
                 act: str = "lrelu0.05") -> None:
        super().__init__()
        half = channels // 2
        self.blocks = nn.ModuleList(LatticeBlock(channels, mid_channels, act)
                                    for _ in range(lattice_blocks))
        self.reduce = nn.ModuleList(conv1x1(channels, half) for _ in range(lattice_blocks))
        self.join = nn.ModuleList(conv1x1(channels, half) for _ in range(lattice_blocks - 2))
        self.act = nn.ReLU()

    @staticmethod
    def check_options(channels: int, *, lattice_blocks: int = 4, **_: object) -> list[str]:
        problems = []
        if lattice_blocks < 2:
            problems.append(f"`lattice_blocks >= 2` must hold, got lattice_blocks={lattice_blocks}")
        if channels % 2:
            problems.append(f"`channels % 2 == 0` must hold, got channels={channels}")
        return problems

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = []
        h = x
        for block in self.blocks:
            h = block(h)
            outs.append(h)
        reduced = [self.act(r(o)) for r, o in zip(self.reduce, outs, strict=True)]
        fused = reduced[-1]
        for join, r in zip(self.join, reversed(reduced[1:-1]), strict=True):
            fused = self.act(join(torch.cat([fused, r], 1)))
        return torch.cat([fused, reduced[0]], 1) + x
