"""Efficient conv units of the ICLR'19 study: bottleneck, ResNeXt, MobileNet v1/v2 and EffNet.

Paper: Understanding Opportunities for Efficiency in Single-Image Super Resolution Networks
(anonymous ICLR 2019 submission on OpenReview; no arXiv version, no code). Each unit replaces one
3x3 convolution (``in -> out``) inside a block with a ``conv`` option; the study removed batch
normalisation from every unit, and so do we. Unit papers: ResNet https://arxiv.org/abs/1512.03385,
ResNeXt https://arxiv.org/abs/1611.05431, MobileNet v1 https://arxiv.org/abs/1704.04861, MobileNet
v2 https://arxiv.org/abs/1801.04381, EffNet https://arxiv.org/abs/1801.06434.

Conventions shared by all units (here and in ``shuffle.py``):

- ReLU between the unit's layers (the study drops BN, so MobileNet v2's ReLU6 cap, which assumes
  normalised features, is replaced by ReLU);
- no activation at the unit's output: the unit stands in for a linear conv, the host block adds
  its own activation;
- the skip of residual units is used when ``in_channels == out_channels`` (MobileNet v2's rule);
- inner widths follow ``out_channels`` (``out // ratio``), except MobileNet v2, which expands
  ``in_channels`` by ``expansion``.
"""

from __future__ import annotations

import torch
from torch import nn

from search_space.errors import InputError
from search_space.layers import conv, conv1x1
from search_space.registry import register_conv_unit

__all__ = [
    "Bottleneck",
    "DepthwiseSeparable",
    "FactorisedDepthwise",
    "InvertedResidual",
    "check_divisible",
    "inner_width",
]


def inner_width(unit: str, out_channels: int, ratio: int) -> int:
    """``out_channels // ratio``; raises :class:`InputError` when that leaves no channel."""
    if ratio < 1 or out_channels // ratio < 1:
        raise InputError(
            f"conv unit {unit!r}: `out_channels // ratio >= 1` must hold, got "
            f"out_channels={out_channels}, ratio={ratio}"
        )
    return out_channels // ratio


def check_divisible(unit: str, groups: int, **widths: int) -> None:
    """Raise :class:`InputError` unless every width is divisible by ``groups``."""
    for name, width in widths.items():
        if groups < 1 or width % groups:
            raise InputError(
                f"conv unit {unit!r}: `{name} % groups == 0` must hold, got "
                f"{name}={width}, groups={groups}"
            )


class Bottleneck(nn.Module):
    """ResNet bottleneck (ResNeXt with ``groups > 1``): 1x1 reduce, 3x3, 1x1 expand, skip.

    Args:
        in_channels: Input width.
        out_channels: Output width; the skip is added when it equals ``in_channels``.
        ratio: Reduction r of the inner width (``out // r``).
        groups: Groups of the inner 3x3 conv (1: ResNet, > 1: ResNeXt).
    """

    def __init__(
        self, in_channels: int, out_channels: int, *, ratio: int = 2, groups: int = 1
    ) -> None:
        super().__init__()
        unit = "resnext" if groups > 1 else "bottleneck"
        mid = inner_width(unit, out_channels, ratio)
        check_divisible(unit, groups, inner_width=mid)
        self.residual = in_channels == out_channels
        self.body = nn.Sequential(
            conv1x1(in_channels, mid),
            nn.ReLU(inplace=True),
            conv(mid, mid, 3, groups=groups),
            nn.ReLU(inplace=True),
            conv1x1(mid, out_channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(x)
        return out + x if self.residual else out


class DepthwiseSeparable(nn.Module):
    """MobileNet v1: depthwise 3x3, ReLU, pointwise 1x1 (``in -> out``).

    Args:
        in_channels: Input width.
        out_channels: Output width.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.depthwise = conv(in_channels, in_channels, 3, groups=in_channels)
        self.act = nn.ReLU(inplace=True)
        self.pointwise = conv1x1(in_channels, out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.act(self.depthwise(x)))


class FactorisedDepthwise(nn.Module):
    """EffNet unit without pooling: 1x1 reduce, ReLU, depthwise 1x3, depthwise 3x1, ReLU, 1x1.

    The two depthwise convs stand in for one separable depthwise 3x3, so no activation sits
    between them; EffNet's pooling between them is dropped, as in the ICLR'19 study.

    Args:
        in_channels: Input width.
        out_channels: Output width.
        ratio: Reduction r of the inner width (``out // r``).
    """

    def __init__(self, in_channels: int, out_channels: int, *, ratio: int = 2) -> None:
        super().__init__()
        mid = inner_width("effnet", out_channels, ratio)
        self.body = nn.Sequential(
            conv1x1(in_channels, mid),
            nn.ReLU(inplace=True),
            nn.Conv2d(mid, mid, (1, 3), padding=(0, 1), groups=mid),
            nn.Conv2d(mid, mid, (3, 1), padding=(1, 0), groups=mid),
            nn.ReLU(inplace=True),
            conv1x1(mid, out_channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class InvertedResidual(nn.Module):
    """MobileNet v2: 1x1 expand by e, ReLU, depthwise 3x3, ReLU, linear 1x1 project, skip.

    Args:
        in_channels: Input width.
        out_channels: Output width; the skip is added when it equals ``in_channels``.
        expansion: Expansion e of the hidden width (``in * e``).
    """

    def __init__(self, in_channels: int, out_channels: int, *, expansion: int = 2) -> None:
        super().__init__()
        if expansion < 1:
            raise InputError(
                f"conv unit 'mobilenet_v2': `expansion >= 1` must hold, got expansion={expansion}"
            )
        hidden = in_channels * expansion
        self.residual = in_channels == out_channels
        self.body = nn.Sequential(
            conv1x1(in_channels, hidden),
            nn.ReLU(inplace=True),
            conv(hidden, hidden, 3, groups=hidden),
            nn.ReLU(inplace=True),
            conv1x1(hidden, out_channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(x)
        return out + x if self.residual else out


@register_conv_unit("bottleneck", choices={"ratio": (2, 4, 8)})
def bottleneck_unit(in_channels: int, out_channels: int, *, ratio: int = 2) -> nn.Module:
    """ResNet bottleneck (the study's ``blrn(r)``): 1x1 to ``out // ratio``, 3x3, 1x1, skip."""
    return Bottleneck(in_channels, out_channels, ratio=ratio)


@register_conv_unit("resnext", choices={"ratio": (2, 4), "groups": (2, 4, 8)})
def resnext_unit(
    in_channels: int, out_channels: int, *, ratio: int = 2, groups: int = 4
) -> nn.Module:
    """ResNeXt bottleneck (``blrxn(r)``): the bottleneck with a grouped 3x3 (4 groups)."""
    return Bottleneck(in_channels, out_channels, ratio=ratio, groups=groups)


@register_conv_unit("mobilenet_v1")
def mobilenet_v1_unit(in_channels: int, out_channels: int) -> nn.Module:
    """MobileNet v1 depthwise-separable conv (``blm1``)."""
    return DepthwiseSeparable(in_channels, out_channels)


@register_conv_unit("effnet", choices={"ratio": (1, 2, 4)})
def effnet_unit(in_channels: int, out_channels: int, *, ratio: int = 2) -> nn.Module:
    """EffNet factorised depthwise unit without pooling (``bleff(r)``)."""
    return FactorisedDepthwise(in_channels, out_channels, ratio=ratio)


@register_conv_unit("mobilenet_v2", choices={"expansion": (1, 2, 3, 4, 6)})
def mobilenet_v2_unit(in_channels: int, out_channels: int, *, expansion: int = 2) -> nn.Module:
    """MobileNet v2 inverted residual (``blm2(e)``)."""
    return InvertedResidual(in_channels, out_channels, expansion=expansion)
