"""Plain convolution blocks (FMEN's warm-up conv; VDSR's conv + ReLU layers)."""

from __future__ import annotations

import torch
from torch import nn

from search_space.layers import make_act
from search_space.registry import build_conv, register_block

__all__ = ["ConvBlock"]


@register_block("conv", choices={"post_act": ("none", "relu", "lrelu0.05", "lrelu0.1", "lrelu0.2",
                                         "gelu", "silu")})
class ConvBlock(nn.Module):
    """One C -> C conv unit (3x3 by default) with an optional activation.

    Args:
        channels: Feature width; output shape == input shape.
        in_channels: Input width (default: ``channels``); the image's with ``head: none``
            (VDSR's first conv + ReLU).
        conv: Conv unit name or ``{type: name, ...}`` (default plain 3x3).
        post_act: Activation after the conv; ``none`` for a linear conv (not overridden by
            the spec-wide ``activation``).
    """

    def __init__(self, channels: int, *, in_channels: int | None = None,
                 conv: str | dict | None = None, post_act: str = "none") -> None:
        super().__init__()
        self.conv = build_conv(conv, in_channels or channels, channels)
        self.act = nn.Identity() if post_act == "none" else make_act(post_act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv(x))
