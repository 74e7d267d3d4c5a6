"""MVFMNet's feature modulation module (FMM): multi-level variance modulation + symmetric gated FFN.

Source: the NTIRE 2025 efficient-SR entry MVFMNet (team27), Amazingren/NTIRE2025_ESR
``models/team27_MVFMNet.py``: an SMFANet derivative whose modulation uses the local variance
of pooled windows at two scales.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from search_space.layers import conv1x1, make_act
from search_space.registry import register_block

__all__ = ["FMM", "LVSA", "local_variance"]


def local_variance(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Unbiased variance of ``size[0] x size[1]`` windows tiling ``x`` (the last one larger).

    Window stride ``H // size[0]``, window height ``H - (size[0] - 1) * stride`` (so the windows
    cover the whole map), likewise in width: ``(B, C, H, W) -> (B, C, size[0], size[1])``.
    """
    h, w = x.shape[-2:]
    stride_h, stride_w = h // size[0], w // size[1]
    kernel_h, kernel_w = h - (size[0] - 1) * stride_h, w - (size[1] - 1) * stride_w
    windows = x.unfold(2, kernel_h, stride_h).unfold(3, kernel_w, stride_w)
    return torch.var(windows, dim=(-1, -2), unbiased=True)


class LVSA(nn.Module):
    """Local variance-aware spatial attention: ``x * up(gelu(1x1(alpha * dw(maxpool(x)) +
    beta * localvar(x))))``, pooled to ``H // down_scale`` (at least 1)."""

    def __init__(self, channels: int, *, down_scale: int) -> None:
        super().__init__()
        self.down_scale = down_scale
        self.conv = conv1x1(channels, channels)
        self.dwconv = nn.Conv2d(channels, channels, 3, padding=1, groups=channels)
        self.alpha = nn.Parameter(torch.ones(1, channels, 1, 1))
        self.beta = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.act = make_act("gelu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        size = (max(1, h // self.down_scale), max(1, w // self.down_scale))
        x_s = self.dwconv(F.adaptive_max_pool2d(x, size))
        x_v = local_variance(x, size)
        gate = self.act(self.conv(x_s * self.alpha + x_v * self.beta))
        return x * F.interpolate(gate, size=(h, w), mode="nearest")


class MVFMB(nn.Module):
    """Multi-level variance feature modulation: a 1x1 conv C -> 3C gives ``x_l, y, x_s``; ``y``
    through 1x1 (C -> 2C), GELU, depthwise 3x3, GELU, split; ``x_l`` / ``x_s`` through LVSA at
    pooling 7 / 5; ``1x1(cat(y_l + x_l, y_s + x_s))``."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.project_in = conv1x1(channels, 3 * channels)
        self.attention_coarse = LVSA(channels, down_scale=7)
        self.attention_fine = LVSA(channels, down_scale=5)
        self.local_in = conv1x1(channels, 2 * channels)
        self.local_dwconv = nn.Conv2d(2 * channels, 2 * channels, 3, padding=1,
                                      groups=2 * channels)
        self.project_out = conv1x1(2 * channels, channels)
        self.act = make_act("gelu")

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        x_l, y, x_s = self.project_in(f).chunk(3, dim=1)
        y_l, y_s = self.act(self.local_dwconv(self.act(self.local_in(y)))).chunk(2, dim=1)
        x_l, x_s = self.attention_coarse(x_l), self.attention_fine(x_s)
        return self.project_out(torch.cat([y_l + x_l, y_s + x_s], 1))


class SGFN(nn.Module):
    """Symmetric gated feed-forward: 1x1 C -> 4C, depthwise 3x3, four chunks,
    ``cat(gelu(x2) * x1, gelu(x3) * x4)``, 1x1 2C -> C (bias-free)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.project_in = conv1x1(channels, 4 * channels, bias=False)
        self.dwconv = nn.Conv2d(4 * channels, 4 * channels, 3, padding=1, groups=4 * channels,
                                bias=False)
        self.project_out = conv1x1(2 * channels, channels, bias=False)
        self.act = make_act("gelu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1, x2, x3, x4 = self.dwconv(self.project_in(x)).chunk(4, dim=1)
        return self.project_out(torch.cat([self.act(x2) * x1, self.act(x3) * x4], 1))


@register_block("fmm")
class FMM(nn.Module):
    """MVFMNet's feature modulation module: ``x = mvfmb(ln(x)) + x``, ``y = sgfn(ln(x)) + x``.

    ``ln`` is one per-pixel LayerNorm over the channels, shared by both halves (as the official
    ``pixel_norm``). Source: NTIRE 2025 ESR team27 MVFMNet,
    https://github.com/Amazingren/NTIRE2025_ESR (``models/team27_MVFMNet.py``).

    Args:
        channels: Feature width C; output shape == input shape.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.mvfmb = MVFMB(channels)
        self.sgfn = SGFN(channels)
        self.norm = nn.LayerNorm(channels)

    def _norm(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2).contiguous()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.mvfmb(self._norm(x)) + x
        return self.sgfn(self._norm(x)) + x
