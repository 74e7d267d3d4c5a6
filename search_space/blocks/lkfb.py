"""LKFN's large-kernel feature distillation block (LKFB) with a Fourier-domain attention.

Source: the NTIRE 2024 efficient-SR entry LKFN (team03), Amazingren/NTIRE2024_ESR
``models/team03_LKFN.py``: a BSRN-style distillation block (BSConv-U units, here with 5x5
partial depthwise kernels) whose attention is a pointwise MLP on the real and imaginary parts of
the feature map's 2-D FFT.
"""

from __future__ import annotations

import torch
from torch import nn

from search_space.blocks.bsconv import BSConvU
from search_space.layers import conv1x1, make_act
from search_space.registry import register_block

__all__ = ["LKFB", "PartialBSConvU", "FourierAttention"]


class PartialBSConvU(nn.Module):
    """A depthwise ``k x k`` conv (with bias) on the first half of the channels only, then a
    bias-free 1x1 conv over all of them (official ``PartialBSConvU``)."""

    def __init__(self, channels: int, *, kernel_size: int = 5, dilation: int = 1) -> None:
        super().__init__()
        self.half = channels // 2
        self.pdw = nn.Conv2d(self.half, self.half, kernel_size, groups=self.half,
                             padding=dilation * (kernel_size - 1) // 2, dilation=dilation)
        self.pw = conv1x1(channels, channels, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1, x2 = x.split([self.half, x.shape[1] - self.half], dim=1)
        return self.pw(torch.cat([self.pdw(x1), x2], 1))


class FourierAttention(nn.Module):
    """``x * irfft2(F + mlp(F))``, ``F = rfft2(x)`` (orthonormal), the same pointwise MLP
    (1x1 C -> C/2, LeakyReLU 0.2, 1x1, LeakyReLU 0.2, 1x1 C/2 -> C) added to the real and to the
    imaginary part."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = conv1x1(channels, channels // 2)
        self.conv2 = conv1x1(channels // 2, channels // 2)
        self.conv3 = conv1x1(channels // 2, channels)
        self.act = make_act("lrelu0.2")

    def _mlp(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv3(self.act(self.conv2(self.act(self.conv1(x)))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        spectrum = torch.fft.rfftn(x, dim=(-2, -1), norm="ortho")
        real = spectrum.real + self._mlp(spectrum.real)
        imag = spectrum.imag + self._mlp(spectrum.imag)
        attention = torch.fft.irfftn(torch.complex(real, imag), s=x.shape[-2:], dim=(-2, -1),
                                     norm="ortho")
        return x * attention


@register_block("lkfb")
class LKFB(nn.Module):
    """Large-kernel feature distillation block.

    Three steps ``d_i = gelu(1x1_{C -> C/2}(r_{i-1}))``, ``r_i = gelu(pbs_i(r_{i-1}))`` with
    partial BSConv-U units (5x5; the third dilated by 3), ``r_4 = gelu(bsconv_{C -> C/2}(r_3))``;
    ``h = 1x1(cat(d_1, d_2, d_3, r_4))`` (2C -> C), the Fourier attention, a 1x1 conv, a per-pixel
    LayerNorm over the channels, plus the input. Source: NTIRE 2024 ESR team03 LKFN,
    https://github.com/Amazingren/NTIRE2024_ESR.

    Args:
        channels: Feature width C (even); output shape == input shape.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        half = channels // 2
        self.distill = nn.ModuleList(conv1x1(channels, half) for _ in range(3))
        self.refine = nn.ModuleList([PartialBSConvU(channels), PartialBSConvU(channels),
                                     PartialBSConvU(channels, dilation=3)])
        self.last = BSConvU(channels, half)
        self.fuse = conv1x1(4 * half, channels)
        self.attention = FourierAttention(channels)
        self.project = conv1x1(channels, channels)
        self.norm = nn.LayerNorm(channels)
        self.act = make_act("gelu")

    @staticmethod
    def check_options(channels: int, **_: object) -> list[str]:
        if channels % 2 == 0:
            return []
        return [f"`channels % 2 == 0` must hold (distilled halves), got channels={channels}"]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        distilled, r = [], x
        for distill, refine in zip(self.distill, self.refine, strict=True):
            distilled.append(self.act(distill(r)))
            r = self.act(refine(r))
        h = self.fuse(torch.cat([*distilled, self.act(self.last(r))], 1))
        h = self.project(self.attention(h))
        h = self.norm(h.permute(0, 2, 3, 1)).permute(0, 3, 1, 2).contiguous()
        return h + x
