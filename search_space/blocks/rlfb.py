"""Residual local feature block (RLFB) of RLFN.

Paper: Residual Local Feature Network for Efficient Super-Resolution (CVPRW 2022),
https://arxiv.org/abs/2205.07514. The NTIRE 2022 submission ("RLFN_cut", ofsoundof/NTIRE2022_ESR
``models/team04_rlfn.py``) is the ``rlfn`` anchor.
"""

from __future__ import annotations

import torch
from torch import nn

from search_space.blocks.esa import ESA, ESA_OR_NONE, build_esa
from search_space.choices import ACTIVATIONS
from search_space.layers import conv1x1, make_act
from search_space.registry import build_conv, register_block

__all__ = ["RLFB"]


@register_block("rlfb", choices={"esa": ESA_OR_NONE, "act": ACTIVATIONS})
class RLFB(nn.Module):
    """Residual local feature block: three activated 3x3 convs plus the input, 1x1 conv, ESA.

    ``y = esa(conv_out(act(conv3(act(conv2(act(conv1(x)))))) + x))`` with 3x3 convs C -> m -> m -> C
    and a 1x1 conv C -> C. Paper: Residual Local Feature Network for Efficient Super-Resolution,
    https://arxiv.org/abs/2205.07514.

    Args:
        channels: Feature width C; output shape == input shape.
        mid_channels: Width m of the inner 3x3 convs (default 0: same as ``channels``; RLFN_cut
            uses 48 at C=46).
        esa: Attention after the 1x1 conv. Option: none | rfdn | rlfn | slim (default ``rlfn``,
            as the paper: one 3x3 conv after the pool).
        esa_channels: ESA width f (default 16, as RLFN; 0 means C // 4).
        act: Activation after each 3x3 conv (default LeakyReLU 0.05, as RLFN). Option: relu |
            lrelu0.05 | lrelu0.1 | lrelu0.2 | gelu | silu.
        conv: Conv unit of the three 3x3 convs, a name or ``{type: name, ...}`` (default plain).
    """

    def __init__(
        self,
        channels: int,
        *,
        mid_channels: int = 0,
        esa: str = "rlfn",
        esa_channels: int = 16,
        act: str = "lrelu0.05",
        conv: str | dict | None = None,
    ) -> None:
        super().__init__()
        mid = mid_channels or channels
        self.conv1 = build_conv(conv, channels, mid)
        self.conv2 = build_conv(conv, mid, mid)
        self.conv3 = build_conv(conv, mid, channels)
        self.act = make_act(act)
        self.conv_out = conv1x1(channels, channels)
        self.esa = build_esa(esa, channels, esa_channels)

    @staticmethod
    def check_options(
        channels: int, *, esa: str = "rlfn", esa_channels: int = 16, **_: object
    ) -> list[str]:
        if esa == "none":
            return []
        return ESA.check_options(channels, esa_channels=esa_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act(self.conv1(x))
        out = self.act(self.conv2(out))
        out = self.act(self.conv3(out)) + x
        return self.esa(self.conv_out(out))
