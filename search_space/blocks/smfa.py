"""SMFANet's feature modulation block (FMB): self-modulation feature aggregation + partial FFN.

Paper: SMFANet: A Lightweight Self-Modulation Feature Aggregation Network for Efficient Image
Super-Resolution (ECCV 2024), https://github.com/Zheng-MJ/SMFANet. The NTIRE 2024 entry SMFAN
(team24, Amazingren/NTIRE2024_ESR ``models/team24_smfan.py``) is the ``smfan`` anchor.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from search_space.layers import conv1x1, make_act
from search_space.registry import register_block

__all__ = ["FMB", "SMFA", "PCFN"]


class SMFA(nn.Module):
    """Self-modulation feature aggregation.

    A 1x1 conv C -> 2C splits into ``y`` and ``x``. Non-local branch: ``x`` max-pooled to
    ``H // down_scale`` (at least 1), a depthwise 3x3 conv, plus the per-channel spatial variance
    of ``x``; a 1x1 conv, GELU, nearest upsampling; that map modulates ``x``. Local branch on
    ``y``: depthwise 3x3 (C -> 2C), 1x1, GELU, 1x1 2C -> C. Output: 1x1 conv of their sum.
    """

    def __init__(self, channels: int, *, down_scale: int = 8) -> None:
        super().__init__()
        self.down_scale = down_scale
        self.project_in = conv1x1(channels, 2 * channels)
        self.dwconv = nn.Conv2d(channels, channels, 3, padding=1, groups=channels)
        self.modulation_conv = conv1x1(channels, channels)
        # Local detail estimation (official DMlp, growth 2)
        self.detail_dwconv = nn.Conv2d(channels, 2 * channels, 3, padding=1, groups=channels)
        self.detail_pwconv = conv1x1(2 * channels, 2 * channels)
        self.detail_out = conv1x1(2 * channels, channels)
        self.project_out = conv1x1(channels, channels)
        self.act = make_act("gelu")

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        h, w = f.shape[-2:]
        y, x = self.project_in(f).chunk(2, dim=1)
        size = (max(1, h // self.down_scale), max(1, w // self.down_scale))
        x_s = self.dwconv(F.adaptive_max_pool2d(x, size))
        x_v = torch.var(x, dim=(-2, -1), keepdim=True)
        x_l = x * F.interpolate(self.act(self.modulation_conv(x_s + x_v)), size=(h, w),
                                mode="nearest")
        y_d = self.detail_out(self.act(self.detail_pwconv(self.detail_dwconv(y))))
        return self.project_out(x_l + y_d)


class PCFN(nn.Module):
    """Partial convolution feed-forward: 1x1 C -> m, GELU; a 3x3 conv + GELU on the first
    ``int(m * partial_rate)`` channels only; 1x1 m -> C."""

    def __init__(self, channels: int, *, ffn_scale: float = 2.0,
                 partial_rate: float = 0.25) -> None:
        super().__init__()
        hidden = int(channels * ffn_scale)
        self.partial = int(hidden * partial_rate)
        self.project_in = conv1x1(channels, hidden)
        self.partial_conv = nn.Conv2d(self.partial, self.partial, 3, padding=1)
        self.project_out = conv1x1(hidden, channels)
        self.act = make_act("gelu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.project_in(x))
        x1, x2 = x.split([self.partial, x.shape[1] - self.partial], dim=1)
        return self.project_out(torch.cat([self.act(self.partial_conv(x1)), x2], 1))


@register_block("fmb", choices={"down_scale": (4, 8)})
class FMB(nn.Module):
    """SMFANet feature modulation block: ``x = smfa(l2n(x)) + x``, ``y = pcfn(l2n(x)) + x``.

    ``l2n`` is the per-pixel L2 normalisation over the channels (``F.normalize``), SMFANet's
    parameter-free stand-in for a LayerNorm. Paper: SMFANet (ECCV 2024),
    https://github.com/Zheng-MJ/SMFANet.

    Args:
        channels: Feature width C; output shape == input shape.
        ffn_scale: Hidden width of the partial FFN, ``int(C * ffn_scale)`` (default 2; SMFAN 1.5).
        down_scale: Pooling factor of the non-local branch. Option: 4 | 8 (default 8).
    """

    def __init__(self, channels: int, *, ffn_scale: float = 2.0, down_scale: int = 8) -> None:
        super().__init__()
        self.smfa = SMFA(channels, down_scale=down_scale)
        self.pcfn = PCFN(channels, ffn_scale=ffn_scale)

    @staticmethod
    def check_options(channels: int, *, ffn_scale: float = 2.0, **_: object) -> list[str]:
        if int(int(channels * ffn_scale) * 0.25) >= 1:
            return []
        return [f"`int(int(channels * ffn_scale) / 4) >= 1` must hold (the partial conv's width), "
                f"got channels={channels}, ffn_scale={ffn_scale}"]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.smfa(F.normalize(x)) + x
        return self.pcfn(F.normalize(x)) + x
