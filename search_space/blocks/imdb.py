"""Information multi-distillation block (IMDB).

Paper: Lightweight Image Super-Resolution with Information Multi-distillation Network (IMDN),
https://arxiv.org/abs/1909.11856. Official code: https://github.com/Zheng222/IMDN (paper form,
with CCA); the NTIRE 2022 ESR baseline uses KAIR's simplified form without CCA
(https://github.com/ofsoundof/NTIRE2022_ESR, ``models/imdn_baseline.py``).
"""

from __future__ import annotations

import torch
from torch import nn

from search_space.blocks.cca import CCA
from search_space.choices import ACTIVATIONS
from search_space.layers import conv1x1, conv3x3, make_act
from search_space.registry import register_block

__all__ = ["IMDB", "DISTILL_RATIOS", "distilled_channels", "check_distillation"]

DISTILL_RATIOS = (0.25, 0.5)


def distilled_channels(channels: int, distill_ratio: float) -> int:
    """Width of each distilled chunk (``channels * distill_ratio``, exact by ``check_options``)."""
    return round(channels * distill_ratio)


def check_distillation(channels: int, distill_ratio: float) -> list[str]:
    """The distilled width must be a whole number of channels, at least 1."""
    if distill_ratio not in DISTILL_RATIOS:
        return []  # reported by the choices check
    width = channels * distill_ratio
    if width >= 1 and width == int(width):
        return []
    return [
        f"`channels * distill_ratio` must be a whole number >= 1, got channels={channels}, "
        f"distill_ratio={distill_ratio}"
    ]


@register_block(
    "imdb", choices={"distill_ratio": DISTILL_RATIOS, "cca": (True, False), "act": ACTIVATIONS}
)
class IMDB(nn.Module):
    """Information multi-distillation block: progressive channel splitting, fusion, residual.

    Three steps of ``3x3 conv -> act -> split`` keep d = C * distill_ratio channels each and pass
    the remaining C - d on (the 2nd and 3rd conv map C - d -> C); a last 3x3 conv maps the
    remainder to d. The 4 d-chunks are concatenated, [CCA,] fused by a 1x1 conv 4d -> C and added
    to the input. In the official paper code CCA comes before the 1x1 conv.

    Args:
        channels: Feature width C; output shape == input shape.
        distill_ratio: Share of channels distilled at each step. Option: 0.25 | 0.5.
            Default: 0.25 (IMDN).
        cca: Contrast-aware channel attention before the 1x1 fusion (IMDN paper). False gives
            KAIR's simplified IMDB of the NTIRE 2022 ESR baseline. Default: True.
        act: Activation after the first three convs. Default: ``lrelu0.05`` (IMDN).
    """

    def __init__(
        self,
        channels: int,
        *,
        distill_ratio: float = 0.25,
        cca: bool = True,
        act: str = "lrelu0.05",
    ) -> None:
        super().__init__()
        self.distilled = distilled_channels(channels, distill_ratio)
        self.remaining = channels - self.distilled
        self.convs = nn.ModuleList(
            [
                conv3x3(channels, channels),
                conv3x3(self.remaining, channels),
                conv3x3(self.remaining, channels),
            ]
        )
        self.last = conv3x3(self.remaining, self.distilled)
        self.act = make_act(act)
        self.cca = CCA(4 * self.distilled) if cca else nn.Identity()
        self.fuse = conv1x1(4 * self.distilled, channels)

    @staticmethod
    def check_options(
        channels: int, *, distill_ratio: float = 0.25, cca: bool = True, act: str = "lrelu0.05"
    ) -> list[str]:
        problems = check_distillation(channels, distill_ratio)
        if problems or distill_ratio not in DISTILL_RATIOS or cca is not True:
            return problems
        concat = 4 * distilled_channels(channels, distill_ratio)
        if CCA.check_options(concat):
            problems.append(
                f"cca: `4 * channels * distill_ratio >= 16` must hold for the CCA "
                f"bottleneck, got channels={channels}, distill_ratio={distill_ratio}"
            )
        return problems

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        chunks = []
        remaining = x
        for conv in self.convs:
            distilled, remaining = torch.split(
                self.act(conv(remaining)), (self.distilled, self.remaining), dim=1
            )
            chunks.append(distilled)
        chunks.append(self.last(remaining))
        # (B, 4d, H, W) -> (B, C, H, W)
        return self.fuse(self.cca(torch.cat(chunks, dim=1))) + x
