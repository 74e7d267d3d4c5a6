"""Enhanced spatial attention (ESA) and its variants.

Paper: Residual Feature Aggregation Network for Image Super-Resolution (RFANet),
https://arxiv.org/abs/2004.12163; as used in RFDN (https://arxiv.org/abs/2009.11551),
RLFN (https://arxiv.org/abs/2205.07514) and SRN's slim form.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from search_space.layers import conv, conv1x1, conv3x3
from search_space.registry import register_block

__all__ = ["ESA", "ESA_VARIANTS", "build_esa"]

# rfdn: three 3x3 convs after the pool (conv_max + ReLU, conv3 + ReLU, conv3_), 1x1 skip conv.
# rlfn: one 3x3 conv after the pool, 1x1 skip conv. slim (SRN): one 3x3 conv, identity skip.
ESA_VARIANTS = ("rfdn", "rlfn", "slim")


@register_block("esa", choices={"variant": ESA_VARIANTS})
class ESA(nn.Module):
    """Enhanced spatial attention: a strided, max-pooled branch gates ``x`` per pixel.

    Args:
        channels: Feature width C; output shape == input shape.
        esa_channels: Reduced width f (default C // 4).
        variant: Option: rfdn | rlfn | slim (see ``ESA_VARIANTS``).
    """

    def __init__(self, channels: int, *, esa_channels: int = 0, variant: str = "rfdn") -> None:
        super().__init__()
        f = esa_channels or channels // 4
        self.variant = variant
        self.conv1 = conv1x1(channels, f)
        self.conv_f = conv1x1(f, f) if variant != "slim" else None
        self.conv2 = conv(f, f, 3, stride=2)
        self.conv2.padding = (0, 0)  # stride-2 conv without padding, as the official code
        if variant == "rfdn":
            self.conv_max = conv3x3(f, f)
            self.conv3 = conv3x3(f, f)
            self.conv3_ = conv3x3(f, f)
        else:
            self.conv3 = conv3x3(f, f)
        self.conv4 = conv1x1(f, channels)

    @staticmethod
    def check_options(channels: int, *, esa_channels: int = 0, variant: str = "rfdn") -> list[str]:
        f = esa_channels or channels // 4
        return [] if f >= 1 else [f"esa_channels >= 1 must hold, got {f} (channels={channels})"]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c1_ = self.conv1(x)
        c1 = self.conv2(c1_)
        v = F.max_pool2d(c1, kernel_size=7, stride=3)
        if self.variant == "rfdn":
            v = F.relu(self.conv_max(v))
            v = F.relu(self.conv3(v))
            c3 = self.conv3_(v)
        else:
            c3 = self.conv3(v)
        c3 = F.interpolate(c3, (x.size(2), x.size(3)), mode="bilinear", align_corners=False)
        cf = self.conv_f(c1_) if self.conv_f is not None else c1_
        return x * torch.sigmoid(self.conv4(c3 + cf))


def build_esa(name: str, channels: int, esa_channels: int = 0) -> nn.Module:
    """Attention tail by name for blocks with an ``esa`` option: ``none`` or an ESA variant."""
    if name == "none":
        return nn.Identity()
    return ESA(channels, esa_channels=esa_channels, variant=name)
