"""SPANV2 (NTIRE 2026 ESR, team22 xiaomiMM): the gated SPAB and its separable tail conv.

Source: Amazingren/NTIRE2026_ESR ``models/team22_SPANV2_ESR.py`` (classes ``SPABV2``,
``SPANV2_ESR``). Its inference path calls a CUDA kernel (``span_attention``) that computes, per
pixel, ``(x + f3) * (W f3 + b)``; the file's own pure-PyTorch branch (``use_span_attn=False``),
written here, computes the same function and is the trainable form.
"""

from __future__ import annotations

import torch
from torch import nn

from search_space.choices import ACTIVATIONS
from search_space.layers import conv, conv1x1, conv3x3, make_act
from search_space.registry import register_block, register_conv_unit

__all__ = ["SPABV2", "SeparableConv", "separable_unit"]


@register_block("spabv2", choices={"act": ACTIVATIONS, "bias": (False, True)})
class SPABV2(nn.Module):
    """SPANV2's block: three 3x3 convs, then a gate ``(x + f3) * conv1x1(f3)``.

    ``f1 = act(conv1(x))``, ``f2 = act(conv2(f1))``, ``f3 = conv3(f2)``,
    ``y = (x + f3) * guidance(f3)`` with ``guidance`` a 1x1 conv C -> C with bias (the only
    biased conv of the block by default). With ``in_channels`` set to another width (the first
    block, on the image) there is no gate: ``y = act(f3)``. Source: Amazingren/NTIRE2026_ESR
    ``models/team22_SPANV2_ESR.py`` (SPANV2, NTIRE 2026 ESR), https://github.com/Amazingren/NTIRE2026_ESR.

    Args:
        channels: Feature width C; output shape == input shape.
        in_channels: Input width (default: ``channels``); another width gives the stem form
            without the gate (used on the image when the spec has ``head: none``).
        act: Activation after the first two convs (and the stem's third; default ReLU, as
            SPANV2). Option: relu | lrelu0.05 | lrelu0.1 | lrelu0.2 | gelu | silu.
        bias: Biases in the three 3x3 convs (default False, as SPANV2). Option: false | true.
    """

    def __init__(
        self,
        channels: int,
        *,
        in_channels: int | None = None,
        act: str = "relu",
        bias: bool = False,
    ) -> None:
        super().__init__()
        in_channels = in_channels or channels
        self.conv1 = conv3x3(in_channels, channels, bias=bias)
        self.conv2 = conv3x3(channels, channels, bias=bias)
        self.conv3 = conv3x3(channels, channels, bias=bias)
        self.act = make_act(act)
        self.guidance = conv1x1(channels, channels) if in_channels == channels else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f1 = self.act(self.conv1(x))
        f2 = self.act(self.conv2(f1))
        f3 = self.conv3(f2)
        if self.guidance is None:
            return self.act(f3)
        gate = self.guidance(f3)
        return (x + f3) * gate


class SeparableConv(nn.Module):
    """Depthwise 3x3 then pointwise 1x1, both without bias and without an activation between.

    SPANV2's tail conv (``depthwise_conv`` + ``pointwise_conv``). Unlike the ``mobilenet_v1``
    unit of the ICLR'19 study it is linear and bias-free.

    Args:
        in_channels: Input width (depthwise, one filter per channel).
        out_channels: Output width of the pointwise conv.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.depthwise = conv(in_channels, in_channels, 3, groups=in_channels, bias=False)
        self.pointwise = conv1x1(in_channels, out_channels, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x))


@register_conv_unit("separable")
def separable_unit(in_channels: int, out_channels: int) -> nn.Module:
    """Linear, bias-free depthwise 3x3 + pointwise 1x1 (SPANV2's tail conv)."""
    return SeparableConv(in_channels, out_channels)
