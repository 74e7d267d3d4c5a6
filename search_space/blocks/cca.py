"""Contrast-aware channel attention (CCA).

Paper: Lightweight Image Super-Resolution with Information Multi-distillation Network (IMDN),
https://arxiv.org/abs/1909.11856.
"""

from __future__ import annotations

import torch
from torch import nn

from search_space.layers import conv1x1
from search_space.registry import register_block

__all__ = ["CCA", "contrast_plus_mean"]

# A constant channel has zero variance; sqrt'(0) is infinite and would turn the gradient into NaN
# (the official code has that hazard). Flooring the variance changes no realistic forward value.
_MIN_VARIANCE = 1e-12


def contrast_plus_mean(x: torch.Tensor) -> torch.Tensor:
    """Per-channel standard deviation plus mean over H, W: (B, C, H, W) -> (B, C, 1, 1).

    The standard deviation is the population one (divided by H*W), as in the official code.
    """
    variance, mean = torch.var_mean(x, dim=(2, 3), correction=0, keepdim=True)
    return variance.clamp_min(_MIN_VARIANCE).sqrt() + mean


@register_block("cca", choices={"reduction": (4, 8, 16)}, tags=("attention",))
class CCA(nn.Module):
    """Contrast-aware channel attention: (std + mean) per channel gates ``x`` per channel.

    ``x * sigmoid(conv1x1(relu(conv1x1(std(x) + mean(x)))))`` with a C -> C/r -> C bottleneck.
    IMDN applies it inside each IMDB (``imdb(cca=True)``); as its own stage it is an attention
    block that can follow any other block.

    Args:
        channels: Feature width C; output shape == input shape.
        reduction: Bottleneck ratio r (C // r hidden channels). Option: 4 | 8 | 16. Default: 16.
    """

    def __init__(self, channels: int, *, reduction: int = 16) -> None:
        super().__init__()
        hidden = channels // reduction
        self.squeeze = conv1x1(channels, hidden)
        self.relu = nn.ReLU(inplace=True)
        self.excite = conv1x1(hidden, channels)

    @staticmethod
    def check_options(channels: int, *, reduction: int = 16) -> list[str]:
        if channels // reduction >= 1:
            return []
        return [
            f"`channels // reduction >= 1` must hold, got channels={channels}, "
            f"reduction={reduction}"
        ]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # (B, C, H, W) -> (B, C, 1, 1) weights -> broadcast over H, W
        weights = torch.sigmoid(self.excite(self.relu(self.squeeze(contrast_plus_mean(x)))))
        return x * weights
