"""Blocks of CARN and CARN-M: the residual block, the efficient residual-E block and the cascading
block.

Paper: Fast, Accurate, and Lightweight Super-Resolution with Cascading Residual Network (Ahn, Kang
and Sohn, ECCV 2018), https://arxiv.org/abs/1803.08664; official code nmhkahn/CARN-pytorch
(``carn/model/ops.py``, ``carn.py``, ``carn_m.py``). CARN = 3 cascading blocks of 3 residual
blocks at 64 channels, with cascading 1x1 fusions inside each block and over the blocks (the
``cascade`` fusion); CARN-M = residual-E blocks with 4 groups, one per cascading block applied
three times (recursive weight sharing).
"""

from __future__ import annotations

import torch
from torch import nn

from search_space.choices import ACTIVATIONS
from search_space.fusion import Cascade
from search_space.layers import conv, conv1x1, make_act
from search_space.registry import register_block

__all__ = ["CARNResidualBlock", "EResidualBlock", "CascadingBlock", "RESIDUAL_BLOCKS"]

GROUPS = (1, 2, 4)


def _check_groups(channels: int, groups: int) -> list[str]:
    if groups >= 1 and channels % groups == 0:
        return []
    return [f"`channels % groups == 0` must hold, got channels={channels}, groups={groups}"]


@register_block("carn_rb", choices={"groups": GROUPS, "act": ACTIVATIONS})
class CARNResidualBlock(nn.Module):
    """CARN residual block: ``act(x + conv(act(conv(x))))``, 3x3 convs, the activation after the
    sum (unlike EDSR's ``rb``).

    Paper: Fast, Accurate, and Lightweight Super-Resolution with Cascading Residual Network,
    https://arxiv.org/abs/1803.08664 (official ``ops.ResidualBlock``).

    Args:
        channels: Feature width C; output shape == input shape.
        groups: Groups of both 3x3 convs (default 1, as CARN). Option: 1 | 2 | 4.
        act: Activation (default ``relu``, as CARN). Option: relu | lrelu0.05 | lrelu0.1 |
            lrelu0.2 | gelu | silu.
    """

    def __init__(self, channels: int, *, groups: int = 1, act: str = "relu") -> None:
        super().__init__()
        self.body = nn.Sequential(
            conv(channels, channels, 3, groups=groups),
            make_act(act),
            conv(channels, channels, 3, groups=groups),
        )
        self.act = make_act(act)

    @staticmethod
    def check_options(channels: int, *, groups: int = 1, **_: object) -> list[str]:
        return _check_groups(channels, groups)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.body(x) + x)


@register_block("carn_erb", choices={"groups": GROUPS, "act": ACTIVATIONS})
class EResidualBlock(nn.Module):
    """Efficient residual (residual-E) block of CARN-M: grouped 3x3, act, grouped 3x3, act, 1x1,
    plus the input, act.

    Paper: Fast, Accurate, and Lightweight Super-Resolution with Cascading Residual Network,
    https://arxiv.org/abs/1803.08664 (official ``ops.EResidualBlock``): the 1x1 conv mixes the
    groups, as the pointwise conv of a depthwise-separable unit does.

    Args:
        channels: Feature width C; output shape == input shape.
        groups: Groups of both 3x3 convs (default 4, as CARN-M). Option: 1 | 2 | 4.
        act: Activation (default ``relu``, as CARN). Option: relu | lrelu0.05 | lrelu0.1 |
            lrelu0.2 | gelu | silu.
    """

    def __init__(self, channels: int, *, groups: int = 4, act: str = "relu") -> None:
        super().__init__()
        self.body = nn.Sequential(
            conv(channels, channels, 3, groups=groups),
            make_act(act),
            conv(channels, channels, 3, groups=groups),
            make_act(act),
            conv1x1(channels, channels),
        )
        self.act = make_act(act)

    @staticmethod
    def check_options(channels: int, *, groups: int = 4, **_: object) -> list[str]:
        return _check_groups(channels, groups)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.body(x) + x)


RESIDUAL_BLOCKS = {"carn_rb": CARNResidualBlock, "carn_erb": EResidualBlock}


@register_block("carn", choices={"residual": tuple(RESIDUAL_BLOCKS), "groups": GROUPS,
                                 "shared": (False, True), "act": ACTIVATIONS})
class CascadingBlock(nn.Module):
    """CARN's cascading block: residual blocks joined by cascading 1x1 convs (local cascading).

    ``c = o = x``; for each residual block ``R_i``: ``c = cat(c, R_i(o))``, ``o = act(1x1_i(c))``
    ((i + 2) C -> C); the last ``o`` is the output (:class:`~search_space.fusion.Cascade`).

    Paper: Fast, Accurate, and Lightweight Super-Resolution with Cascading Residual Network,
    https://arxiv.org/abs/1803.08664 (official ``carn.Block`` and ``carn_m.Block``). CARN:
    ``residual=carn_rb``; CARN-M: ``residual=carn_erb, groups=4, shared=true``.

    Args:
        channels: Feature width C; output shape == input shape.
        num_blocks: Residual blocks per cascading block (default 3, as CARN).
        residual: The residual block. Option: carn_rb (CARN) | carn_erb (residual-E, CARN-M).
        groups: Groups of the residual blocks' 3x3 convs (default 1; CARN-M 4). Option: 1 | 2 | 4.
        shared: One residual block applied ``num_blocks`` times (CARN-M's recursive weight
            sharing; the 1x1 fusions stay separate) instead of ``num_blocks`` blocks.
        act: Activation of the residual blocks and the fusions (default ``relu``). Option: relu |
            lrelu0.05 | lrelu0.1 | lrelu0.2 | gelu | silu.
    """

    def __init__(
        self,
        channels: int,
        *,
        num_blocks: int = 3,
        residual: str = "carn_rb",
        groups: int = 1,
        shared: bool = False,
        act: str = "relu",
    ) -> None:
        super().__init__()
        make = RESIDUAL_BLOCKS[residual]
        self.num_blocks = num_blocks
        self.shared = shared
        self.blocks = nn.ModuleList(
            make(channels, groups=groups, act=act) for _ in range(1 if shared else num_blocks)
        )
        self.fuse = Cascade(channels, num_blocks, act=act)

    @staticmethod
    def check_options(channels: int, *, num_blocks: int = 3, groups: int = 1,
                      **_: object) -> list[str]:
        problems = _check_groups(channels, groups)
        if num_blocks < 1:
            problems.append(f"`num_blocks >= 1` must hold, got num_blocks={num_blocks}")
        return problems

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        blocks = [self.blocks[0]] * self.num_blocks if self.shared else self.blocks
        return self.fuse(x, blocks)
