"""Blueprint separable convolution (BSConv-U) as a conv unit.

Paper: Rethinking Depthwise Separable Convolutions: How Intra-Kernel Correlations Lead to
Improved MobileNets (BSConv, CVPR 2020), https://arxiv.org/abs/2003.13549; the efficient-SR
networks built on it (BSRN, NTIRE 2022; LKFN, NTIRE 2024) use the unconstrained form BSConv-U.
MSN (NTIRE 2024) factorises its depthwise conv into a reflect-padded ``k x 1`` and ``1 x k`` pair
(``bsconv_sep``); FMDN (NTIRE 2025) reflect-pads the depthwise conv of its units
(``bsconv`` with ``padding_mode: reflect``), some of them with stride 2.
"""

from __future__ import annotations

import torch
from torch import nn

from search_space.layers import conv1x1
from search_space.registry import register_conv_unit

__all__ = ["BSConvU", "SeparableBSConvU", "bsconv_unit", "bsconv_sep_unit", "PADDING_MODES"]

# Padding of BSConv-U's depthwise conv: zeros (BSRN, LKFN) or reflect (FMDN).
PADDING_MODES = ("zeros", "reflect")


class BSConvU(nn.Module):
    """A bias-free 1x1 conv ``in -> out`` then a depthwise ``k x k`` conv with bias.

    With ``input_copies = n`` the input is first concatenated with itself n times (BSRN's and
    LKFN's first conv sees the image repeated four times), so the 1x1 conv is ``n * in -> out``.

    Args:
        in_channels: Input width.
        out_channels: Output width.
        kernel_size: Depthwise kernel (3).
        input_copies: Copies of the input the 1x1 conv sees (1).
        stride: Stride of the depthwise conv (1; FMDN's attention: 2).
        padding_mode: Padding of the depthwise conv, ``k // 2`` pixels. Option: zeros (BSRN,
            LKFN) | reflect (FMDN).
    """

    def __init__(self, in_channels: int, out_channels: int, *, kernel_size: int = 3,
                 input_copies: int = 1, stride: int = 1, padding_mode: str = "zeros") -> None:
        super().__init__()
        self.input_copies = input_copies
        self.pw = conv1x1(in_channels * input_copies, out_channels, bias=False)
        self.dw = nn.Conv2d(out_channels, out_channels, kernel_size, stride=stride,
                            padding=kernel_size // 2, groups=out_channels,
                            padding_mode=padding_mode)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.input_copies > 1:
            x = torch.cat([x] * self.input_copies, 1)
        return self.dw(self.pw(x))


@register_conv_unit("bsconv", choices={"padding_mode": PADDING_MODES})
def bsconv_unit(in_channels: int, out_channels: int, *, input_copies: int = 1,
                padding_mode: str = "zeros") -> nn.Module:
    """BSConv-U: bias-free 1x1 then depthwise 3x3 with bias (``input_copies``: see BSConvU;
    ``padding_mode: reflect``: FMDN's reflect-padded depthwise conv)."""
    return BSConvU(in_channels, out_channels, input_copies=input_copies,
                   padding_mode=padding_mode)


class SeparableBSConvU(nn.Module):
    """A bias-free 1x1 conv ``in -> out``, then a depthwise ``k x 1`` and a depthwise ``1 x k``
    conv (each with bias, reflect padding ``k // 2`` along its own axis).

    ``stride`` applies to both depthwise convs in both directions, as in MSN's code: a stride-2
    unit shrinks H and W to ``ceil(ceil(n / 2) / 2)``, a quarter, not a half.

    Args:
        in_channels: Input width.
        out_channels: Output width.
        kernel_size: Length of each depthwise kernel (3).
        stride: Stride of both depthwise convs (1).
    """

    def __init__(self, in_channels: int, out_channels: int, *, kernel_size: int = 3,
                 stride: int = 1) -> None:
        super().__init__()
        pad = kernel_size // 2
        self.pw = conv1x1(in_channels, out_channels, bias=False)
        self.dw1 = nn.Conv2d(out_channels, out_channels, (kernel_size, 1), stride=stride,
                             padding=(pad, 0), groups=out_channels, padding_mode="reflect")
        self.dw2 = nn.Conv2d(out_channels, out_channels, (1, kernel_size), stride=stride,
                             padding=(0, pad), groups=out_channels, padding_mode="reflect")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dw2(self.dw1(self.pw(x)))


@register_conv_unit("bsconv_sep")
def bsconv_sep_unit(in_channels: int, out_channels: int) -> nn.Module:
    """BSConv-U with a separable depthwise conv: bias-free 1x1, then reflect-padded depthwise
    3x1 and 1x3 convs with bias (MSN, NTIRE 2024)."""
    return SeparableBSConvU(in_channels, out_channels)
