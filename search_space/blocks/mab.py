"""MAFFSRN: the multi-attention block (MAB) and the feature fusion group (FFG) with M-BFF.

Paper: Multi-Attentive Feature Fusion Super-Resolution Network (MAFFSRN; ECCV Workshops, AIM 2020),
https://arxiv.org/abs/2008.12912. Reproduced from the official code, AbdulMoqeet/MAFFSRN
``MAFFSRN/src/model/maffsrn.py`` (classes ``MAB``, ``FFG``), which fixes details the paper leaves
open: the MAB has no skip, its gate conv is followed by a ReLU before the sigmoid, and only the
FFG's three 1x1 reductions are weight-normalised (the MAB convs are plain).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from search_space.choices import ACTIVATIONS
from search_space.fusion import build_fusion
from search_space.layers import check_min_size, conv, conv1x1, conv3x3, make_act
from search_space.registry import register_block

__all__ = ["MAB", "FFG", "MAB_MIN_SIZE"]

# The attention branch: stride-2 conv (padding 1) maps H to (H + 1) // 2, and the 7x7 max-pool
# needs at least 7 of those, so H >= 13.
MAB_MIN_SIZE = 13


class _SpatialGate(nn.Module):
    """MAB's ESA-like branch: 1x1 C -> C/r, 3x3 stride 2, max-pool 7/3, dilated convs (d=1 and
    d=2, each + act) summed, nearest upsampling, + the 1x1 output, 1x1 C/r -> C, ReLU, sigmoid."""

    def __init__(self, channels: int, reduced: int, act: str) -> None:
        super().__init__()
        self.reduce_channels = conv1x1(channels, reduced)
        self.reduce_size = conv(reduced, reduced, 3, stride=2)
        self.conv_d1 = conv3x3(reduced, reduced)
        self.conv_d2 = conv(reduced, reduced, 3, dilation=2)
        self.act = make_act(act)
        self.increase_channels = conv1x1(reduced, channels)

    def forward(self, x: torch.Tensor, kept: list[torch.Tensor] | None = None) -> torch.Tensor:
        check_min_size(x, MAB_MIN_SIZE, "MAB", "stride-2 conv then 7x7 max-pool")
        rc = self.reduce_channels(x)
        reduced = self.reduce_size(rc)
        pooled = F.max_pool2d(reduced, kernel_size=7, stride=3)
        multi_scale = self.act(self.conv_d2(pooled)) + self.act(self.conv_d1(pooled))
        up = F.interpolate(multi_scale, size=rc.shape[-2:], mode="nearest") + rc
        if kept is not None:  # the official MAB holds these locals until its output
            kept.extend((rc, reduced, pooled, multi_scale, up))
        # The official gate is sigmoid(relu(.)) with an in-place ReLU: values in [0.5, 1).
        return torch.sigmoid(torch.relu_(self.increase_channels(up)))


class _CEA(nn.Module):
    """Cost-efficient attention: 1x1 conv, depthwise 5x5 conv, sigmoid."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.pointwise = conv1x1(channels, channels)
        self.depthwise = conv(channels, channels, 5, groups=channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.depthwise(self.pointwise(x)))


@register_block(
    "mab",
    choices={
        "act": ACTIVATIONS,
        "esa": (True, False),
        "cea": (True, False),
        "reduction": (2, 4, 8),
    },
)
class MAB(nn.Module):
    """Multi-attention block: two 3x3 convs, then an ESA-like spatial gate and CEA; no skip.

    ``f = conv2(act(conv1(x)))``; ``y = f * gate(f) * cea(f)`` where ``gate`` is the modified ESA
    (1x1 C -> C/r, 3x3 stride 2, max-pool 7 stride 3, sum of a 3x3 and a dilation-2 3x3 conv each
    followed by ``act``, nearest upsampling plus the 1x1 output, 1x1 back to C, ReLU, sigmoid) and
    ``cea`` is 1x1 conv, depthwise 5x5, sigmoid. Paper: Multi-Attentive Feature Fusion
    Super-Resolution Network, https://arxiv.org/abs/2008.12912. Inputs must be at least
    ``MAB_MIN_SIZE`` (13) pixels high and wide when ``esa`` is on.

    Args:
        channels: Feature width C; output shape == input shape.
        reduction: Channel reduction r of the spatial gate (default 4, as MAFFSRN). Option: 2 | 4 |
            8.
        act: Activation after the first 3x3 conv and after each dilated conv of the gate (default
            LeakyReLU 0.05, as MAFFSRN). Option: relu | lrelu0.05 | lrelu0.1 | lrelu0.2 | gelu |
            silu.
        esa: Use the ESA-like spatial gate (default True).
        cea: Use the cost-efficient attention (default True; the paper's Table 1 ablates it).
    """

    def __init__(
        self,
        channels: int,
        *,
        reduction: int = 4,
        act: str = "lrelu0.05",
        esa: bool = True,
        cea: bool = True,
    ) -> None:
        super().__init__()
        self.body = nn.Sequential(
            conv3x3(channels, channels), make_act(act), conv3x3(channels, channels)
        )
        self.gate = _SpatialGate(channels, channels // reduction, act) if esa else None
        self.cea = _CEA(channels) if cea else None

    @staticmethod
    def check_options(channels: int, *, reduction: int = 4, **_: object) -> list[str]:
        if reduction >= 1 and channels // reduction >= 1:
            return []
        return [
            f"`channels // reduction >= 1` must hold, got channels={channels}, "
            f"reduction={reduction}"
        ]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.body(x)
        out = f
        # The gate's intermediates stay live through the CEA branch, as in the official MAB
        # forward (its peak memory counts them).
        kept: list[torch.Tensor] = []
        if self.gate is not None:
            out = out * self.gate(f, kept)
        if self.cea is not None:
            out = out * self.cea(f)
        return out


@register_block(
    "ffg",
    choices={
        "num_mabs": (2, 3, 4, 5, 6),
        "fusion": ("mbff", "bff", "hff"),
        "act": ACTIVATIONS,
        "esa": (True, False),
        "cea": (True, False),
        "weight_norm": (True, False),
    },
)
class FFG(nn.Module):
    """Feature fusion group: MABs fused by M-BFF, ``lambda_res * fused + lambda_x * x``.

    With M-BFF (MAFFSRN) the middle MABs get a skip: ``x0 = MAB(x)``, ``x_i = MAB(x_{i-1}) +
    x_{i-1}`` for ``0 < i < n-1``, ``x_{n-1} = MAB(x_{n-2})``; the outputs are fused pairwise,
    ``res = 1x1(shuffle(cat(res, x_i)))`` with a 2-group channel shuffle. ``lambda_res`` and
    ``lambda_x`` are learnable scalars that start at 1. Paper: Multi-Attentive Feature Fusion
    Super-Resolution Network, https://arxiv.org/abs/2008.12912.

    Args:
        channels: Feature width C; output shape == input shape.
        num_mabs: Number of MABs (default 4, as MAFFSRN). Option: 2 | 3 | 4 | 5 | 6.
        fusion: Option: mbff (MAFFSRN) | bff (no skips between MABs) | hff (concat of all MAB
            outputs, one linear 1x1 conv; the paper's Table 1 baseline).
        act: Activation inside each MAB. Option: relu | lrelu0.05 | lrelu0.1 | lrelu0.2 | gelu |
            silu.
        esa: MAB spatial gate on/off.
        cea: MAB cost-efficient attention on/off.
        weight_norm: Weight-normalise the fusion's 1x1 convs (default True, as the official code;
            folded into plain convs at deploy).
    """

    def __init__(
        self,
        channels: int,
        *,
        num_mabs: int = 4,
        fusion: str = "mbff",
        act: str = "lrelu0.05",
        esa: bool = True,
        cea: bool = True,
        weight_norm: bool = True,
    ) -> None:
        super().__init__()
        self.mabs = nn.ModuleList(MAB(channels, act=act, esa=esa, cea=cea) for _ in range(num_mabs))
        self.fusion = build_fusion(fusion, channels, num_mabs, weight_norm=weight_norm)
        self.lambda_res = nn.Parameter(torch.ones(1))
        self.lambda_x = nn.Parameter(torch.ones(1))

    @staticmethod
    def check_options(channels: int, *, num_mabs: int = 4, **_: object) -> list[str]:
        problems = MAB.check_options(channels)
        if num_mabs < 2:
            problems.append(f"`num_mabs >= 2` must hold, got num_mabs={num_mabs}")
        return problems

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # MAB outputs and partial fusions live until the group's output, as the official FFG's
        # locals x0..x3, res1, res2.
        kept: list[torch.Tensor] = []
        return self.lambda_res * self.fusion(x, self.mabs, kept) + self.lambda_x * x
