"""Enhanced spatial attention (ESA) and its variants.

Paper: Residual Feature Aggregation Network for Image Super-Resolution (RFANet),
https://arxiv.org/abs/2004.12163; as used in RFDN (https://arxiv.org/abs/2009.11551),
RLFN (https://arxiv.org/abs/2205.07514) and SRN's slim form (NTIRE 2023, "A Single Residual
Network with ESA Modules and Distillation", https://doi.org/10.1109/CVPRW59228.2023.00191).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from search_space.errors import InputError
from search_space.layers import check_min_size, conv1x1, conv3x3
from search_space.registry import register_block

__all__ = ["ESA", "ESA_VARIANTS", "ESA_OR_NONE", "ESA_MIN_SIZE", "build_esa"]

# rfdn: three 3x3 convs after the pool (conv_max + ReLU, conv3 + ReLU, conv3_), 1x1 skip conv.
# rlfn: one 3x3 conv after the pool, 1x1 skip conv. slim (SRN): one 3x3 conv, identity skip.
ESA_VARIANTS = ("rfdn", "rlfn", "slim")
# Choices of a block's ``esa`` option (see build_esa).
ESA_OR_NONE = ("none", *ESA_VARIANTS)

# Smallest height/width ESA accepts: the unpadded stride-2 3x3 conv maps H to (H - 3) // 2 + 1,
# and the 7x7 max-pool needs at least 7 of those, so H >= 15.
ESA_MIN_SIZE = 15


@register_block("esa", choices={"variant": ESA_VARIANTS}, tags=("attention",))
class ESA(nn.Module):
    """Enhanced spatial attention: a strided, max-pooled branch gates ``x`` per pixel.

    ``c1 = conv1(x)`` (1x1, C -> f); a 3x3 stride-2 conv without padding, 7x7 max-pool with
    stride 3, the variant's 3x3 conv group, bilinear upsampling back to the input size, plus the
    skip (``conv_f(c1)``, or ``c1`` itself for ``slim``), 1x1 conv f -> C, sigmoid, times ``x``.
    Inputs must be at least ``ESA_MIN_SIZE`` (15) pixels high and wide.

    Args:
        channels: Feature width C; output shape == input shape.
        esa_channels: Reduced width f (default 0: C // 4).
        variant: Option: rfdn | rlfn | slim. ``rfdn`` (RFDN/E-RFDN): conv_max + ReLU, conv3 +
            ReLU, conv3_ after the pool and a 1x1 ``conv_f`` on the skip. ``rlfn`` (RLFN): one 3x3
            conv after the pool, 1x1 ``conv_f`` on the skip. ``slim`` (SRN): one 3x3 conv, identity
            skip.
        bias: Biases in its convs (default True; R2Net's are bias-free).
    """

    def __init__(self, channels: int, *, esa_channels: int = 0, variant: str = "rfdn",
                 bias: bool = True) -> None:
        super().__init__()
        if variant not in ESA_VARIANTS:
            raise InputError(
                f"ESA variant: {variant!r} not allowed; allowed: {', '.join(ESA_VARIANTS)}"
            )
        f = esa_channels or channels // 4
        self.variant = variant
        self.conv1 = conv1x1(channels, f, bias=bias)
        self.conv_f = conv1x1(f, f, bias=bias) if variant != "slim" else None
        # Unpadded stride-2 conv, as in the official code (it sets ESA_MIN_SIZE).
        self.conv2 = nn.Conv2d(f, f, 3, stride=2, padding=0, bias=bias)
        if variant == "rfdn":
            self.conv_max = conv3x3(f, f, bias=bias)
            self.conv3 = conv3x3(f, f, bias=bias)
            self.conv3_ = conv3x3(f, f, bias=bias)
        else:
            self.conv3 = conv3x3(f, f, bias=bias)
        self.conv4 = conv1x1(f, channels, bias=bias)

    @staticmethod
    def check_options(channels: int, *, esa_channels: int = 0, variant: str = "rfdn",
                      **_: object) -> list[str]:
        f = esa_channels or channels // 4
        if f >= 1:
            return []
        return [
            f"`esa_channels >= 1` must hold (0 means channels // 4), got esa_channels={f}, "
            f"channels={channels}"
        ]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # (torch.export sees the same bound from max_pool2d anyway)
        check_min_size(x, ESA_MIN_SIZE, "ESA", "stride-2 conv then 7x7 max-pool")
        height, width = x.shape[-2:]
        # Tensor lifetimes follow the official code (the strided map c1 of rfdn/rlfn and the
        # pre-sigmoid map c4 stay referenced until the product), so that the peak memory of the
        # anchors is the official models' peak, which the NTIRE memory figures measure.
        c1_ = self.conv1(x)
        c1 = self.conv2(c1_)
        pooled = F.max_pool2d(c1, kernel_size=7, stride=3)
        if self.variant == "slim":
            del c1  # SRN's code keeps only the pooled map
        if self.variant == "rfdn":
            c3 = self.conv3_(F.relu(self.conv3(F.relu(self.conv_max(pooled)))))
        else:
            c3 = self.conv3(pooled)
        c3 = F.interpolate(c3, (height, width), mode="bilinear", align_corners=False)
        cf = self.conv_f(c1_) if self.conv_f is not None else c1_
        c4 = self.conv4(c3 + cf)
        return x * torch.sigmoid(c4)


def build_esa(name: str, channels: int, esa_channels: int = 0, *, bias: bool = True) -> nn.Module:
    """Attention tail by name for blocks with an ``esa`` option: ``none`` or an ESA variant."""
    if name == "none":
        return nn.Identity()
    return ESA(channels, esa_channels=esa_channels, variant=name, bias=bias)
