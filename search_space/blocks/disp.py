"""DISP (NTIRE 2026 ESR, team18): the REECB block and the 1x1 conv unit of its trunk end.

Source: Amazingren/NTIRE2026_ESR ``models/team18_DISP.py`` (classes ``REECB``, ``DISP``): a SPAN
derivative without attention, plain 3x3 convs (no re-parameterisation branch in the file).
"""

from __future__ import annotations

import torch
from torch import nn

from search_space.choices import ACTIVATIONS
from search_space.layers import conv1x1, make_act
from search_space.registry import build_conv, register_block, register_conv_unit

__all__ = ["REECB", "pointwise_unit"]


@register_block("reecb", choices={"num_convs": (2, 3, 4, 5, 6), "act": ACTIVATIONS})
class REECB(nn.Module):
    """DISP's block: n activated 3x3 convs plus the input; no attention.

    ``h = act(conv_1(x))``, ``h = act(conv_i(h))`` for the next convs, ``y = act(conv_n(h)) + x``
    (activations in place, official SiLU). DISP uses four convs (official ``REECB`` with one
    ``extern_conv``). Source: Amazingren/NTIRE2026_ESR ``models/team18_DISP.py`` (DISP, NTIRE
    2026 ESR), https://github.com/Amazingren/NTIRE2026_ESR.

    Args:
        channels: Feature width C; output shape == input shape.
        num_convs: Number of 3x3 convs (default 4, as DISP). Option: 2 | 3 | 4 | 5 | 6.
        act: Activation after every conv (default SiLU, as DISP). Option: relu | lrelu0.05 |
            lrelu0.1 | lrelu0.2 | gelu | silu.
        conv: Conv unit of the 3x3 convs, a name or ``{type: name, ...}`` (default plain).
    """

    def __init__(
        self,
        channels: int,
        *,
        num_convs: int = 4,
        act: str = "silu",
        conv: str | dict | None = None,
    ) -> None:
        super().__init__()
        self.convs = nn.ModuleList(build_conv(conv, channels, channels) for _ in range(num_convs))
        self.act = make_act(act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # The first conv's output stays live to the end, as the official local ``out1``.
        first = self.act(self.convs[0](x))
        h = first
        for conv in self.convs[1:-1]:
            h = self.act(conv(h))
        return self.act(self.convs[-1](h)) + x


@register_conv_unit("pointwise")
def pointwise_unit(in_channels: int, out_channels: int, *, bias: bool = True) -> nn.Module:
    """A 1x1 convolution (DISP's ``conv_2`` before its long residual; bias-free: R2Net's)."""
    return conv1x1(in_channels, out_channels, bias=bias)
