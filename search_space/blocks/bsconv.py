"""Blueprint separable convolution (BSConv-U) as a conv unit.

Paper: Rethinking Depthwise Separable Convolutions: How Intra-Kernel Correlations Lead to
Improved MobileNets (BSConv, CVPR 2020), https://arxiv.org/abs/2003.13549; the efficient-SR
networks built on it (BSRN, NTIRE 2022; LKFN, NTIRE 2024) use the unconstrained form BSConv-U.
"""

from __future__ import annotations

import torch
from torch import nn

from search_space.layers import conv1x1
from search_space.registry import register_conv_unit

__all__ = ["BSConvU", "bsconv_unit"]


class BSConvU(nn.Module):
    """A bias-free 1x1 conv ``in -> out`` then a depthwise ``k x k`` conv with bias.

    With ``input_copies = n`` the input is first concatenated with itself n times (BSRN's and
    LKFN's first conv sees the image repeated four times), so the 1x1 conv is ``n * in -> out``.

    Args:
        in_channels: Input width.
        out_channels: Output width.
        kernel_size: Depthwise kernel (3).
        input_copies: Copies of the input the 1x1 conv sees (1).
    """

    def __init__(self, in_channels: int, out_channels: int, *, kernel_size: int = 3,
                 input_copies: int = 1) -> None:
        super().__init__()
        self.input_copies = input_copies
        self.pw = conv1x1(in_channels * input_copies, out_channels, bias=False)
        self.dw = nn.Conv2d(out_channels, out_channels, kernel_size, padding=kernel_size // 2,
                            groups=out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.input_copies > 1:
            x = torch.cat([x] * self.input_copies, 1)
        return self.dw(self.pw(x))


@register_conv_unit("bsconv")
def bsconv_unit(in_channels: int, out_channels: int, *, input_copies: int = 1) -> nn.Module:
    """BSConv-U: bias-free 1x1 then depthwise 3x3 with bias (``input_copies``: see BSConvU)."""
    return BSConvU(in_channels, out_channels, input_copies=input_copies)
