"""AMCANet's multi-head convolutional block (MHCB): multi-scale conv attention + a gated FFN.

Source: the NTIRE 2026 efficient-SR entry AMCANet (team17), Amazingren/NTIRE2026_ESR
``models/team17_AMCANet.py``.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from search_space.layers import conv1x1
from search_space.registry import register_block

__all__ = ["MHCB", "ConvAttentionHead", "MIN_SIZE"]

# Smallest height/width a block with two or more heads accepts: head 1 max-pools with a 7x7
# window (stride 4) and no padding.
MIN_SIZE = 7


def _depthwise(channels: int) -> nn.Conv2d:
    return nn.Conv2d(channels, channels, 3, padding=1, groups=channels)


class ConvAttentionHead(nn.Module):
    """One attention head of width m at scale ``index``.

    1x1 C -> 2m splits into ``qk`` and ``v``; ``r = dw(qk)``; head ``i > 0`` max-pools ``r``
    with window ``2s - 1`` and stride ``s = min(4 i, 16)``, then two depthwise 3x3 convs and a
    1x1 conv, bilinear upsampling back (head 0 stays at full resolution), ``+ r``, a 1x1 conv and
    a sigmoid gate ``v`` after its own depthwise 3x3 conv.
    """

    def __init__(self, channels: int, head_channels: int, *, index: int) -> None:
        super().__init__()
        self.stride = min(4 * index, 16)
        self.project_in = conv1x1(channels, 2 * head_channels)
        self.dwconv_res = _depthwise(head_channels)
        self.dwconv_1 = _depthwise(head_channels)
        self.dwconv_2 = _depthwise(head_channels)
        self.dwconv_v = _depthwise(head_channels)
        self.pwconv = conv1x1(head_channels, head_channels)
        self.gate_conv = conv1x1(head_channels, head_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        qk, v = self.project_in(x).chunk(2, dim=1)
        qk_res = self.dwconv_res(qk)
        qk = qk_res
        if self.stride:
            qk = F.max_pool2d(qk, kernel_size=2 * self.stride - 1, stride=self.stride)
        qk = self.pwconv(self.dwconv_2(self.dwconv_1(qk)))
        if self.stride:
            qk = F.interpolate(qk, x.shape[-2:], mode="bilinear", align_corners=False)
        gate = torch.sigmoid(self.gate_conv(qk + qk_res))
        return gate * self.dwconv_v(v)


class GatedFFN(nn.Module):
    """1x1 C -> 2m, split; ``x2 * sigmoid(1x1(dw(x1)))``; 1x1 m -> C (official FSG, m = C)."""

    def __init__(self, channels: int, *, growth: float = 2.0) -> None:
        super().__init__()
        hidden = int(channels * growth) // 2
        self.project_in = conv1x1(channels, 2 * hidden)
        self.dwconv = _depthwise(hidden)
        self.gate_conv = conv1x1(hidden, hidden)
        self.project_out = conv1x1(hidden, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1, x2 = self.project_in(x).chunk(2, dim=1)
        return self.project_out(torch.sigmoid(self.gate_conv(self.dwconv(x1))) * x2)


# Four heads (the official constructor's default; the NTIRE 2026 weights use two) pool with a 23x23
# window: too large for the 20-pixel inputs every searchable choice must run on.
@register_block("mhcb", choices={"num_heads": (1, 2)})
class MHCB(nn.Module):
    """AMCANet's block: ``x = amca(l2n(x)) + x``, ``y = ffn(l2n(x)) + x``.

    ``amca`` runs ``num_heads`` :class:`ConvAttentionHead` of width C / heads on the input and
    fuses their concatenation with a 1x1 conv; ``l2n`` is the per-pixel L2 normalisation over the
    channels. With two or more heads the input must be at least ``MIN_SIZE`` (7) pixels high and
    wide. Source: NTIRE 2026 ESR team17 AMCANet, https://github.com/Amazingren/NTIRE2026_ESR.

    Args:
        channels: Feature width C (a multiple of ``num_heads``); output shape == input shape.
        num_heads: Attention heads, head i at pooling stride min(4 i, 16). Option: 1 | 2
            (default 2, as the NTIRE 2026 weights).
    """

    def __init__(self, channels: int, *, num_heads: int = 2) -> None:
        super().__init__()
        head_channels = channels // num_heads
        self.heads = nn.ModuleList(ConvAttentionHead(channels, head_channels, index=i)
                                   for i in range(num_heads))
        self.fusion_conv = conv1x1(head_channels * num_heads, channels)
        self.ffn = GatedFFN(channels)

    @staticmethod
    def check_options(channels: int, *, num_heads: int = 2, **_: object) -> list[str]:
        if channels % num_heads == 0:
            return []
        return [f"`channels % num_heads == 0` must hold, got channels={channels}, "
                f"num_heads={num_heads}"]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.normalize(x)
        x = self.fusion_conv(torch.cat([head(h) for head in self.heads], 1)) + x
        return self.ffn(F.normalize(x)) + x
