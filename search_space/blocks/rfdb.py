"""Residual feature distillation block (RFDB).

Paper: Residual Feature Distillation Network for Lightweight Image Super-Resolution (RFDN),
https://arxiv.org/abs/2009.11551. Official code: https://github.com/njulj/RFDN (E-RFDN, also the
NTIRE 2022/2023 ESR baseline in https://github.com/ofsoundof/NTIRE2022_ESR).
"""

from __future__ import annotations

import torch
from torch import nn

from search_space.blocks.esa import ESA, ESA_OR_NONE, ESA_VARIANTS, build_esa
from search_space.blocks.imdb import DISTILL_RATIOS, check_distillation, distilled_channels
from search_space.choices import ACTIVATIONS
from search_space.layers import conv1x1, conv3x3, make_act
from search_space.registry import build_conv, register_block

__all__ = ["RFDB"]


@register_block(
    "rfdb", choices={"distill_ratio": DISTILL_RATIOS, "esa": ESA_OR_NONE, "act": ACTIVATIONS}
)
class RFDB(nn.Module):
    """Residual feature distillation block: three distill/refine steps, 1x1 fusion, ESA.

    Each step keeps a distilled 1x1 conv C -> d (+ act) and refines the full width with a shallow
    residual block, ``act(conv3x3(x) + x)``; a last 3x3 conv C -> d (+ act) closes the chain. The
    four d-chunks are concatenated and fused by a 1x1 conv 4d -> C, then gated by ESA. There is
    no block-level residual (RFDN's long skip sits around the whole body).

    Args:
        channels: Feature width C; output shape == input shape.
        distill_ratio: d = C * distill_ratio. Option: 0.25 | 0.5. Default: 0.5 (RFDN).
        esa: Attention tail. Option: none | rfdn | rlfn | slim. Default: ``rfdn`` (f = C // 4).
        act: Activation of the distilled, refined and last convs. Default: ``lrelu0.05`` (RFDN).
        conv: Conv unit of the three refine convs C -> C (name or ``{type: name, ...}``;
            default plain 3x3).
    """

    def __init__(
        self,
        channels: int,
        *,
        distill_ratio: float = 0.5,
        esa: str = "rfdn",
        act: str = "lrelu0.05",
        conv: str | dict | None = None,
    ) -> None:
        super().__init__()
        distilled = distilled_channels(channels, distill_ratio)
        self.distill = nn.ModuleList(conv1x1(channels, distilled) for _ in range(3))
        self.refine = nn.ModuleList(build_conv(conv, channels, channels) for _ in range(3))
        self.last = conv3x3(channels, distilled)
        self.act = make_act(act)
        self.fuse = conv1x1(4 * distilled, channels)
        self.esa = build_esa(esa, channels)

    @staticmethod
    def check_options(
        channels: int,
        *,
        distill_ratio: float = 0.5,
        esa: str = "rfdn",
        act: str = "lrelu0.05",
        conv: str | dict | None = None,
    ) -> list[str]:
        problems = check_distillation(channels, distill_ratio)
        if esa in ESA_VARIANTS:
            problems += [f"esa: {msg}" for msg in ESA.check_options(channels, variant=esa)]
        return problems

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Written out step by step as the official code, whose intermediates all stay alive until
        # the block returns: the peak live memory then equals the official E-RFDN's.
        distilled1 = self.act(self.distill[0](x))
        refined1 = self.act(self.refine[0](x) + x)
        distilled2 = self.act(self.distill[1](refined1))
        refined2 = self.act(self.refine[1](refined1) + refined1)
        distilled3 = self.act(self.distill[2](refined2))
        refined3 = self.act(self.refine[2](refined2) + refined2)
        last = self.act(self.last(refined3))
        concat = torch.cat([distilled1, distilled2, distilled3, last], dim=1)  # (B, 4d, H, W)
        return self.esa(self.fuse(concat))
