"""Residual blocks of EDSR and RCAN: RB, PB, RCAB and the residual group RG.

EDSR: Enhanced Deep Residual Networks for Single Image Super-Resolution,
https://arxiv.org/abs/1707.02921. RCAN: Image Super-Resolution Using Very Deep Residual Channel
Attention Networks, https://arxiv.org/abs/1807.02758. The RCAN-lite baseline ("bl": 2 groups of 5
RCABs) and its efficient variants come from "Understanding Opportunities for Efficiency in
Single-Image Super Resolution Networks" (ICLR 2019 submission), which replaces the 3x3 convs of the
residual groups by the conv units of ``mobile.py`` and ``shuffle.py`` (the ``conv`` options here).
"""

from __future__ import annotations

import torch
from torch import nn

from search_space.choices import ACTIVATIONS
from search_space.layers import conv1x1, make_act
from search_space.registry import build_conv, register_block

__all__ = ["RB", "PB", "ChannelAttention", "RCAB", "RG"]


@register_block("rb", choices={"act": ACTIVATIONS})
class RB(nn.Module):
    """EDSR residual block: ``x + res_scale * conv(act(conv(x)))``, no batch norm.

    Paper: Enhanced Deep Residual Networks for Single Image Super-Resolution,
    https://arxiv.org/abs/1707.02921.

    Args:
        channels: Feature width C; output shape == input shape.
        res_scale: Scale of the residual branch (EDSR-baseline 1, EDSR 0.1).
        act: Activation between the convs (default ``relu``, as EDSR). Option: relu | lrelu0.05 |
            lrelu0.1 | lrelu0.2 | gelu | silu.
        conv: Conv unit of both 3x3 convs, a name or ``{type: name, ...}`` (default plain).
    """

    def __init__(
        self,
        channels: int,
        *,
        res_scale: float = 1.0,
        act: str = "relu",
        conv: str | dict | None = None,
    ) -> None:
        super().__init__()
        self.res_scale = res_scale
        self.body = nn.Sequential(
            build_conv(conv, channels, channels),
            make_act(act),
            build_conv(conv, channels, channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.res_scale * self.body(x)


@register_block("pb", choices={"act": ACTIVATIONS})
class PB(nn.Module):
    """Plain block: EDSR's residual block without the skip, ``conv(act(conv(x)))``.

    Paper: Enhanced Deep Residual Networks for Single Image Super-Resolution,
    https://arxiv.org/abs/1707.02921 (the block without its identity path).

    Args:
        channels: Feature width C; output shape == input shape.
        act: Activation between the convs (default ``relu``). Option: relu | lrelu0.05 |
            lrelu0.1 | lrelu0.2 | gelu | silu.
        conv: Conv unit of both 3x3 convs, a name or ``{type: name, ...}`` (default plain).
    """

    def __init__(self, channels: int, *, act: str = "relu", conv: str | dict | None = None) -> None:
        super().__init__()
        self.body = nn.Sequential(
            build_conv(conv, channels, channels),
            make_act(act),
            build_conv(conv, channels, channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class ChannelAttention(nn.Module):
    """Squeeze-and-excitation as in RCAN: GAP, 1x1 C -> C/r, ReLU, 1x1 C/r -> C, sigmoid, scale."""

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        hidden = max(1, channels // reduction)
        self.squeeze = conv1x1(channels, hidden)
        self.excite = conv1x1(hidden, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # (B, C, H, W) -> (B, C, 1, 1) weights; the gate is fixed ReLU/sigmoid as in RCAN.
        w = x.mean(dim=(2, 3), keepdim=True)
        w = torch.sigmoid(self.excite(torch.relu(self.squeeze(w))))
        return x * w


def _check_reduction(channels: int, reduction: int) -> list[str]:
    if reduction >= 1 and channels // reduction >= 1:
        return []
    return [
        f"`channels // reduction >= 1` must hold, got channels={channels}, reduction={reduction}"
    ]


@register_block("rcab", choices={"act": ACTIVATIONS, "reduction": (4, 8, 16)})
class RCAB(nn.Module):
    """Residual channel attention block: ``x + res_scale * CA(conv(act(conv(x))))``.

    Paper: Image Super-Resolution Using Very Deep Residual Channel Attention Networks,
    https://arxiv.org/abs/1807.02758. The channel attention (CA) is global average pooling, 1x1
    conv C -> C/reduction, ReLU, 1x1 conv back to C, sigmoid, times the features.

    Args:
        channels: Feature width C; output shape == input shape.
        reduction: Channel reduction of the attention (default 16, as RCAN). Option: 4 | 8 | 16.
        res_scale: Scale of the residual branch (default 1, as RCAN).
        act: Activation between the convs (default ``relu``). Option: relu | lrelu0.05 | lrelu0.1 |
            lrelu0.2 | gelu | silu.
        conv: Conv unit of both 3x3 convs, a name or ``{type: name, ...}`` (default plain; the
            ICLR'19 study's units replace these).
    """

    def __init__(
        self,
        channels: int,
        *,
        reduction: int = 16,
        res_scale: float = 1.0,
        act: str = "relu",
        conv: str | dict | None = None,
    ) -> None:
        super().__init__()
        self.res_scale = res_scale
        self.body = nn.Sequential(
            build_conv(conv, channels, channels),
            make_act(act),
            build_conv(conv, channels, channels),
            ChannelAttention(channels, reduction),
        )

    @staticmethod
    def check_options(channels: int, *, reduction: int = 16, **_: object) -> list[str]:
        return _check_reduction(channels, reduction)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.res_scale * self.body(x)


@register_block("rg", choices={"act": ACTIVATIONS, "reduction": (4, 8, 16)})
class RG(nn.Module):
    """Residual group of RCAN: ``x + conv(RCAB_n(... RCAB_1(x)))``.

    Paper: Image Super-Resolution Using Very Deep Residual Channel Attention Networks,
    https://arxiv.org/abs/1807.02758. The RCAN-lite baseline of the ICLR'19 efficiency study uses
    two groups of 5 RCABs at C=64.

    Args:
        channels: Feature width C; output shape == input shape.
        num_blocks: Number of RCABs (default 5, as the RCAN-lite baseline; RCAN 20).
        reduction: Channel reduction of each RCAB's attention. Option: 4 | 8 | 16.
        act: Activation inside each RCAB (default ``relu``). Option: relu | lrelu0.05 | lrelu0.1 |
            lrelu0.2 | gelu | silu.
        conv: Conv unit of every 3x3 conv of the group (both convs of each RCAB and the group's
            trailing conv), a name or ``{type: name, ...}`` (default plain).
        group_conv: Conv unit of the group's trailing conv alone (default None: ``conv``; the
            ICLR'19 study's "[rb]" models keep it ``plain``).
    """

    def __init__(
        self,
        channels: int,
        *,
        num_blocks: int = 5,
        reduction: int = 16,
        act: str = "relu",
        conv: str | dict | None = None,
        group_conv: str | dict | None = None,
    ) -> None:
        super().__init__()
        self.body = nn.Sequential(
            *(RCAB(channels, reduction=reduction, act=act, conv=conv) for _ in range(num_blocks)),
            build_conv(conv if group_conv is None else group_conv, channels, channels),
        )

    @staticmethod
    def check_options(
        channels: int, *, num_blocks: int = 5, reduction: int = 16, **_: object
    ) -> list[str]:
        problems = _check_reduction(channels, reduction)
        if num_blocks < 1:
            problems.append(f"`num_blocks >= 1` must hold, got num_blocks={num_blocks}")
        return problems

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)
