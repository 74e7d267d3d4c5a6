"""SAFMNv3's block: a simplified spatially-adaptive feature modulation plus a 1x1 GELU MLP.

Source: the NTIRE 2025 efficient-SR entry SAFMNv3 (team19), Amazingren/NTIRE2025_ESR
``models/team19_SAFMNv3.py``, by the SAFMN authors (SAFMN: https://arxiv.org/abs/2302.13800).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from search_space.layers import conv1x1, conv3x3, make_act
from search_space.registry import register_block

__all__ = ["SimpleSAFMB"]


@register_block("simple_safmb")
class SimpleSAFMB(nn.Module):
    """SAFMNv3 block (all convs bias-free): modulation, then an MLP, plus the input.

    Modulation: ``x0 = conv3x3_{C -> s}(x)``, ``x1 = conv3x3_{C -> C-s}(x)``; ``x0`` max-pooled to
    ``H // 8`` (at least 1), depthwise 3x3, plus the per-channel spatial variance of ``x0``, 1x1,
    bilinear upsampling, GELU, times ``x0``; ``m = 1x1(gelu(cat(x1, that)))``. Then
    ``y = 1x1(gelu(1x1_{C -> int(C * ffn_scale)}(m))) + x``. Paper: SAFMN,
    https://arxiv.org/abs/2302.13800 (this form: NTIRE 2025 ESR team19).

    Args:
        channels: Feature width C; output shape == input shape.
        split_channels: Width s of the modulated part (12, as SAFMNv3; below C).
        ffn_scale: Hidden width of the MLP, ``int(C * ffn_scale)`` (SAFMNv3: 1.5).
    """

    def __init__(self, channels: int, *, split_channels: int = 12,
                 ffn_scale: float = 1.5) -> None:
        super().__init__()
        hidden = int(channels * ffn_scale)
        self.modulated_conv = conv3x3(channels, split_channels, bias=False)
        self.plain_conv = conv3x3(channels, channels - split_channels, bias=False)
        self.dwconv = nn.Conv2d(split_channels, split_channels, 3, padding=1,
                                groups=split_channels, bias=False)
        self.gate_conv = conv1x1(split_channels, split_channels, bias=False)
        self.mix = conv1x1(channels, channels, bias=False)
        self.ffn_in = conv1x1(channels, hidden, bias=False)
        self.ffn_out = conv1x1(hidden, channels, bias=False)
        self.act = make_act("gelu")

    @staticmethod
    def check_options(channels: int, *, split_channels: int = 12, **_: object) -> list[str]:
        if 0 < split_channels < channels:
            return []
        return [f"`0 < split_channels < channels` must hold, got split_channels="
                f"{split_channels}, channels={channels}"]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        x0, x1 = self.modulated_conv(x), self.plain_conv(x)
        pooled = F.adaptive_max_pool2d(x0, (max(1, h // 8), max(1, w // 8)))
        gate = self.gate_conv(self.dwconv(pooled) + torch.var(x0, dim=(-2, -1), keepdim=True))
        gate = F.interpolate(gate, size=(h, w), mode="bilinear", align_corners=False)
        m = self.mix(self.act(torch.cat([x1, self.act(gate) * x0], 1)))
        return self.ffn_out(self.act(self.ffn_in(m))) + x
