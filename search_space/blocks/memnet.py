"""MemNet's memory blocks, with their dense long-term memory.

Paper: MemNet: A Persistent Memory Network for Image Restoration (Tai, Yang, Liu and Xu, ICCV
2017), https://arxiv.org/abs/1708.02209. A pre-upsampling luminance network: in a spec, ``head:
none`` (the block's feature extractor maps the image), this block, ``upsampler: pre_bicubic``
(the reconstruction's conv), ``input_skip: true`` and ``y_only: true``.
"""

from __future__ import annotations

import torch
from torch import nn

from search_space.layers import ChannelAffine, conv
from search_space.registry import register_block

__all__ = ["MemNetBody"]


class BNReLUConv(nn.Module):
    """MemNet's pre-activated conv: BN, ReLU, conv (BN becomes :class:`ChannelAffine` in the
    deploy form: same parameters, exact output)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3) -> None:
        super().__init__()
        self.norm: nn.Module = nn.BatchNorm2d(in_channels)
        self.act = nn.ReLU()
        self.conv = conv(in_channels, out_channels, kernel_size)
        self.deploy = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.act(self.norm(x)))

    @torch.no_grad()
    def reparameterize(self) -> None:
        if not self.deploy:
            self.norm = ChannelAffine(self.norm)
            self.deploy = True


class MemoryBlock(nn.Module):
    """One memory block: a recursive unit (one residual unit of two pre-activated 3x3 convs,
    applied ``recursions`` times with the same weights, BN included) keeps each recursion's
    output (short-term memory); a gate unit (pre-activated 1x1 conv) maps them and every earlier
    block's output (long-term memory) to C.

    The BNs are shared with the weights, so one set of running statistics serves inputs that
    drift from recursion to recursion (an assumption: separate BNs per recursion would add
    7,680 parameters to M6R6, +2.6% from the printed 677K)."""

    def __init__(self, channels: int, recursions: int, memories: int) -> None:
        super().__init__()
        self.recursions = recursions
        self.conv1 = BNReLUConv(channels, channels)
        self.conv2 = BNReLUConv(channels, channels)
        self.gate = BNReLUConv((recursions + memories) * channels, channels, 1)

    def forward(self, x: torch.Tensor, long_term: list[torch.Tensor]) -> torch.Tensor:
        short_term = []
        for _ in range(self.recursions):
            x = x + self.conv2(self.conv1(x))
            short_term.append(x)
        return self.gate(torch.cat(short_term + long_term, 1))


@register_block("memnet", searchable=False)
class MemNetBody(nn.Module):
    """MemNet's body: [feature extractor], M memory blocks, then the reconstruction's BN and
    ReLU (its conv is the spec's tail). Memory block m gates the R short-term maps together with
    the feature extractor's and blocks 1..m-1's outputs, so the blocks are tied and form one
    block here. MemNet M6R6 (the SR model): C = 64, M = R = 6.

    The paper's multi-supervised output (a weighted sum of a reconstruction per memory block) is
    not built: the last block's reconstruction is the output, as the published Mult-Adds count
    (2,662.4 G for a 720p output, CARN's table; this block and the tail: the same).

    Args:
        channels: Feature width C; output shape == input shape (but with ``in_channels``).
        in_channels: Input width; set (to the image's) with ``head: none``, which adds the
            feature extractor, a pre-activated 3x3 conv in_channels -> C.
        memory_blocks: M (default 6).
        recursions: R, the recursions of each block's residual unit (default 6).
    """

    def __init__(self, channels: int, *, in_channels: int | None = None, memory_blocks: int = 6,
                 recursions: int = 6) -> None:
        super().__init__()
        self.extract = BNReLUConv(in_channels, channels) if in_channels else None
        self.blocks = nn.ModuleList(MemoryBlock(channels, recursions, m)
                                    for m in range(1, memory_blocks + 1))
        self.out_norm = nn.BatchNorm2d(channels)
        self.out_act = nn.ReLU()
        self.deploy = False

    @staticmethod
    def check_options(channels: int, *, memory_blocks: int = 6, recursions: int = 6,
                      **_: object) -> list[str]:
        return [f"`{name} >= 1` must hold, got {name}={value}"
                for name, value in (("memory_blocks", memory_blocks), ("recursions", recursions))
                if value < 1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.extract is not None:
            x = self.extract(x)
        long_term = [x]
        for block in self.blocks:
            x = block(x, long_term)
            long_term.append(x)
        return self.out_act(self.out_norm(x))

    @torch.no_grad()
    def reparameterize(self) -> None:
        if not self.deploy:
            self.out_norm = ChannelAffine(self.out_norm)
            self.deploy = True
