"""Grouped conv units with channel shuffles (ICLR'19 study): ShuffleNet v1/v2 and ClcNet.

Paper: Understanding Opportunities for Efficiency in Single-Image Super Resolution Networks
(anonymous ICLR 2019 submission on OpenReview). Unit papers: ShuffleNet
https://arxiv.org/abs/1707.01083, ShuffleNet v2 https://arxiv.org/abs/1807.11164, clcNet
https://arxiv.org/abs/1712.06145. The conventions of ``mobile.py`` apply (no BN, ReLU inside, no
activation at the output, skip when ``in_channels == out_channels``).
"""

from __future__ import annotations

import torch
from torch import nn

from search_space.blocks.mobile import check_divisible, inner_width
from search_space.errors import InputError
from search_space.layers import ChannelShuffle, channel_shuffle, conv, conv1x1
from search_space.registry import register_conv_unit

__all__ = ["ShuffleUnit", "ShuffleV2Unit", "CLCBlock"]


class ShuffleUnit(nn.Module):
    """ShuffleNet v1 unit: grouped 1x1, ReLU, shuffle, depthwise 3x3, grouped 1x1, skip.

    Args:
        in_channels: Input width.
        out_channels: Output width; the skip is added when it equals ``in_channels``.
        ratio: Reduction r of the inner width (``out // r``).
        groups: Groups g of both 1x1 convs (and of the shuffle).
    """

    def __init__(
        self, in_channels: int, out_channels: int, *, ratio: int = 2, groups: int = 4
    ) -> None:
        super().__init__()
        mid = inner_width("shufflenet_v1", out_channels, ratio)
        check_divisible(
            "shufflenet_v1",
            groups,
            in_channels=in_channels,
            inner_width=mid,
            out_channels=out_channels,
        )
        self.residual = in_channels == out_channels
        self.body = nn.Sequential(
            conv1x1(in_channels, mid, groups=groups),
            nn.ReLU(inplace=True),
            ChannelShuffle(groups),
            # ShuffleNet puts no activation after the depthwise conv.
            conv(mid, mid, 3, groups=mid),
            conv1x1(mid, out_channels, groups=groups),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(x)
        return out + x if self.residual else out


def _shuffle_v2_branch(in_channels: int, out_channels: int) -> nn.Sequential:
    # 1x1, ReLU, depthwise 3x3, 1x1, ReLU: the main branch of ShuffleNet v2.
    return nn.Sequential(
        conv1x1(in_channels, out_channels),
        nn.ReLU(inplace=True),
        conv(out_channels, out_channels, 3, groups=out_channels),
        conv1x1(out_channels, out_channels),
        nn.ReLU(inplace=True),
    )


class ShuffleV2Unit(nn.Module):
    """ShuffleNet v2 unit: split the channels in half, transform one half, concat, shuffle.

    With ``in_channels == out_channels`` this is ShuffleNet v2's basic unit (one half passes
    through untouched). Otherwise both halves of the output are computed from the whole input, as
    in its down-sampling unit without the stride: depthwise 3x3 + 1x1 + ReLU on one side, the
    1x1 / depthwise 3x3 / 1x1 branch on the other.

    Args:
        in_channels: Input width (even for the basic unit).
        out_channels: Output width (even).
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        check_divisible("shufflenet_v2", 2, in_channels=in_channels, out_channels=out_channels)
        half = out_channels // 2
        self.split = in_channels == out_channels
        if self.split:
            self.passthrough = None
            self.branch = _shuffle_v2_branch(half, half)
        else:
            self.passthrough = nn.Sequential(
                conv(in_channels, in_channels, 3, groups=in_channels),
                conv1x1(in_channels, half),
                nn.ReLU(inplace=True),
            )
            self.branch = _shuffle_v2_branch(in_channels, half)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.split:
            kept, transformed = x.chunk(2, dim=1)
            out = torch.cat([kept, self.branch(transformed)], dim=1)
        else:
            out = torch.cat([self.passthrough(x), self.branch(x)], dim=1)
        return channel_shuffle(out, 2)


class CLCBlock(nn.Module):
    """clcNet's CLC block: interlaced grouped 3x3 conv, ReLU, grouped 1x1 conv.

    The 3x3 conv has groups of ``group_size`` input channels; its outputs are interlaced (a
    channel shuffle) so that every group of the 1x1 conv sees one output of each 3x3 group. The 1x1
    groups are then as large as the number of 3x3 groups, the smallest size that gives every
    output the full input receptive field (clcNet's rule, group size product >= channels); with
    C=64 and ``group_size=2`` that is 32 groups of 2 and 2 groups of 32.

    Args:
        in_channels: Input width.
        out_channels: Output width.
        group_size: Input channels per group of the 3x3 conv.
    """

    def __init__(self, in_channels: int, out_channels: int, *, group_size: int = 2) -> None:
        super().__init__()
        if group_size < 1 or in_channels % group_size:
            raise InputError(
                f"conv unit 'clcnet': `in_channels % group_size == 0` must hold, got "
                f"in_channels={in_channels}, group_size={group_size}"
            )
        groups_3x3 = in_channels // group_size
        # 1x1 groups of groups_3x3 channels each -> group_size groups.
        check_divisible("clcnet", group_size, out_channels=out_channels)
        self.body = nn.Sequential(
            conv(in_channels, in_channels, 3, groups=groups_3x3),
            nn.ReLU(inplace=True),
            ChannelShuffle(groups_3x3),
            conv1x1(in_channels, out_channels, groups=group_size),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


@register_conv_unit("shufflenet_v1", choices={"ratio": (2, 4), "groups": (2, 4, 8)})
def shufflenet_v1_unit(
    in_channels: int, out_channels: int, *, ratio: int = 2, groups: int = 4
) -> nn.Module:
    """ShuffleNet v1 unit (the study's ``bls1(r, g)``; r=2, g=4)."""
    return ShuffleUnit(in_channels, out_channels, ratio=ratio, groups=groups)


@register_conv_unit("shufflenet_v2")
def shufflenet_v2_unit(in_channels: int, out_channels: int) -> nn.Module:
    """ShuffleNet v2 unit (``bls2``)."""
    return ShuffleV2Unit(in_channels, out_channels)


@register_conv_unit("clcnet", choices={"group_size": (2, 4, 8)})
def clcnet_unit(in_channels: int, out_channels: int, *, group_size: int = 2) -> nn.Module:
    """clcNet CLC block (``blclc``)."""
    return CLCBlock(in_channels, out_channels, group_size=group_size)
