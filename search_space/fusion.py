"""How the body's block outputs are combined (the ``fusion`` field of ArchSpec).

A fusion module owns the chain: ``forward(x, blocks)`` runs the blocks and returns the fused
features, so plain chains keep only one feature map alive (peak memory matters here).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from search_space.layers import channel_shuffle, conv1x1, make_act, maybe_weight_norm

__all__ = ["build_fusion", "Sequential", "Aggregate", "BinarizedFusion", "Cascade"]


class Sequential(nn.Module):
    """Plain chain: the last block's output."""

    def forward(self, x: torch.Tensor, blocks: nn.ModuleList) -> torch.Tensor:
        for block in blocks:
            x = block(x)
        return x


class Aggregate(nn.Module):
    """Concat of all block outputs -> 1x1 conv (n*C -> C) [-> activation].

    ``aggregate`` (RFDN/IMDN) uses an activation (LeakyReLU 0.05); ``hff`` (hierarchical feature
    fusion as in MAFFSRN's ablation) is the linear variant.
    """

    def __init__(self, channels: int, num_blocks: int, *, act: str | None,
                 weight_norm: bool = False) -> None:
        super().__init__()
        self.conv = maybe_weight_norm(conv1x1(channels * num_blocks, channels), weight_norm)
        self.act = make_act(act) if act else nn.Identity()

    def forward(self, x: torch.Tensor, blocks: nn.ModuleList) -> torch.Tensor:
        outs = []
        for block in blocks:
            x = block(x)
            outs.append(x)
        return self.act(self.conv(torch.cat(outs, dim=1)))


class BinarizedFusion(nn.Module):
    """BFF / M-BFF (MAFFSRN): progressive pairwise fusion, 1x1(shuffle(cat(res, x_i))).

    With ``modified=True`` (M-BFF) the middle blocks also get a residual connection:
    x_0 = B_0(x), x_i = B_i(x_{i-1}) + x_{i-1} for 0 < i < n-1, x_{n-1} = B_{n-1}(x_{n-2}).
    """

    def __init__(self, channels: int, num_blocks: int, *, modified: bool,
                 weight_norm: bool = False) -> None:
        super().__init__()
        self.modified = modified
        self.reduce = nn.ModuleList(
            maybe_weight_norm(conv1x1(2 * channels, channels), weight_norm)
            for _ in range(num_blocks - 1)
        )

    def forward(self, x: torch.Tensor, blocks: nn.ModuleList) -> torch.Tensor:
        n = len(blocks)
        res = None
        for i, block in enumerate(blocks):
            y = block(x)
            x = y + x if self.modified and 0 < i < n - 1 else y
            if res is None:
                res = x
            else:
                res = self.reduce[i - 1](channel_shuffle(torch.cat([res, x], 1), 2))
        return res


class Cascade(nn.Module):
    """Cascading connections (CARN): every block's output joins a growing concat, and a 1x1 conv
    + activation fuses it into the next block's input.

    ``c = x``; for block i: ``c = cat(c, B_i(o))``, ``o = act(1x1_i(c))`` ((i + 2) C -> C), with
    ``o = x`` at the start; the last ``o`` is the output. CARN uses it at the network level (over
    its cascading blocks) and inside each cascading block (over its residual blocks).
    """

    def __init__(self, channels: int, num_blocks: int, *, act: str = "relu",
                 weight_norm: bool = False) -> None:
        super().__init__()
        self.convs = nn.ModuleList(
            maybe_weight_norm(conv1x1((i + 2) * channels, channels), weight_norm)
            for i in range(num_blocks)
        )
        self.act = make_act(act)

    def forward(self, x: torch.Tensor, blocks: Iterable[nn.Module]) -> torch.Tensor:
        # ``blocks`` may repeat one module (CARN-M's recursive residual-E block).
        cat = out = x
        for block, conv in zip(blocks, self.convs, strict=True):
            cat = torch.cat([cat, block(out)], dim=1)
            out = self.act(conv(cat))
        return out


def build_fusion(name: str, channels: int, num_blocks: int, *, weight_norm: bool = False,
                 act: str | None = None) -> nn.Module:
    if name == "sequential" or num_blocks == 1:
        return Sequential()
    if name == "aggregate":
        return Aggregate(channels, num_blocks, act=act or "lrelu0.05", weight_norm=weight_norm)
    if name == "hff":
        return Aggregate(channels, num_blocks, act=None, weight_norm=weight_norm)
    if name in ("bff", "mbff"):
        return BinarizedFusion(channels, num_blocks, modified=name == "mbff",
                               weight_norm=weight_norm)
    if name == "cascade":
        return Cascade(channels, num_blocks, act=act or "relu", weight_norm=weight_norm)
    raise ValueError(f"unknown fusion {name!r}")
