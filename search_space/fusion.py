"""How the body's block outputs are combined (the ``fusion`` field of ArchSpec).

A fusion module owns the chain: ``forward(x, blocks, kept=None)`` runs the blocks and returns the
fused features, so plain chains keep only one feature map alive (peak memory matters here). Given
a ``kept`` list, a fusion appends the intermediates it would otherwise free (every block output
but the one it returns, partial fusions), so that the caller holds them as long as an official
forward holds its Python locals: the peak memory of such a model depends on it.
"""

from __future__ import annotations

import torch
from torch import nn

from search_space.layers import channel_shuffle, conv1x1, make_act, maybe_weight_norm

__all__ = ["build_fusion", "Sequential", "Aggregate", "BinarizedFusion"]


class Sequential(nn.Module):
    """Plain chain: the last block's output."""

    def forward(self, x: torch.Tensor, blocks: nn.ModuleList,
                kept: list[torch.Tensor] | None = None) -> torch.Tensor:
        for i, block in enumerate(blocks):
            x = block(x)
            if kept is not None and i < len(blocks) - 1:
                kept.append(x)
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

    def forward(self, x: torch.Tensor, blocks: nn.ModuleList,
                kept: list[torch.Tensor] | None = None) -> torch.Tensor:
        outs = []
        for block in blocks:
            x = block(x)
            outs.append(x)
        if kept is not None:
            kept.extend(outs)
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

    def forward(self, x: torch.Tensor, blocks: nn.ModuleList,
                kept: list[torch.Tensor] | None = None) -> torch.Tensor:
        # As the official FFG: all blocks first (every x_i stays live), then the pairwise fusion.
        n = len(blocks)
        xs = []
        for i, block in enumerate(blocks):
            x = block(x) + x if self.modified and 0 < i < n - 1 else block(x)
            xs.append(x)
        res = xs[0]
        partial = []
        for reduce, xi in zip(self.reduce, xs[1:], strict=True):
            res = reduce(channel_shuffle(torch.cat([res, xi], 1), 2))
            partial.append(res)
        if kept is not None:
            kept.extend(xs + partial[:-1])
        return res


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
    raise ValueError(f"unknown fusion {name!r}")
