"""IDN's distillation block: an enhancement unit and a compression unit.

Paper: Fast and Accurate Single Image Super-Resolution via Information Distillation Network (Hui,
Wang and Gao, CVPR 2018), https://arxiv.org/abs/1803.09454. The network: two 3x3 convs with
LeakyReLU (in a spec: ``head: none`` and two ``conv`` blocks), four of these blocks, a 17x17
transposed conv (``upsampler: {type: deconv, kernel_size: 17}``) plus the bicubic input
(``input_skip: true``).
"""

from __future__ import annotations

import itertools

import torch
from torch import nn

from search_space.layers import conv, make_act
from search_space.registry import register_block

__all__ = ["DistillationBlock"]


@register_block("idn", searchable=False)
class DistillationBlock(nn.Module):
    """IDN's DBlock. Enhancement unit: three 3x3 convs C -> C-d -> C-2d -> C (the middle one
    grouped), each activated; of their output, C/s channels are kept (concatenated with the
    input), the other C - C/s go through three more, C - C/s -> C -> C-d -> C + C/s (the middle one
    grouped), which are added to that concatenation. Compression unit: a 1x1 conv C + C/s -> C,
    not activated. IDN: C = 64, d = 16, s = 4, groups 4, LeakyReLU 0.05.

    Args:
        channels: Feature width C; output shape == input shape.
        diff: d, the width step of the enhancement convs (default C / 4: IDN's 16).
        slice_ratio: s; C/s channels of the first three convs' output are kept (default 4).
        groups: Groups of the two grouped convs (default 4).
        act: Activation after each enhancement conv (default lrelu0.05).
    """

    # the default d = C / 4 and 4 groups divide every width at a multiple of 16
    channel_multiple = 16

    def __init__(self, channels: int, *, diff: int | None = None, slice_ratio: int = 4,
                 groups: int = 4, act: str = "lrelu0.05") -> None:
        super().__init__()
        c, d = channels, channels // 4 if diff is None else diff
        self.kept = c // slice_ratio
        rest = c - self.kept
        self.upper = self._convs((c, c - d, c - 2 * d, c), groups, act)
        self.lower = self._convs((rest, c, c - d, c + self.kept), groups, act)
        self.compress = conv(c + self.kept, c, 1)

    @staticmethod
    def _convs(widths: tuple[int, ...], groups: int, act: str) -> nn.Sequential:
        layers: list[nn.Module] = []
        for i, (cin, cout) in enumerate(itertools.pairwise(widths)):
            layers += [conv(cin, cout, 3, groups=groups if i == 1 else 1), make_act(act)]
        return nn.Sequential(*layers)

    @staticmethod
    def check_options(channels: int, *, diff: int | None = None, slice_ratio: int = 4,
                      groups: int = 4, **_: object) -> list[str]:
        diff = channels // 4 if diff is None else diff
        problems = []
        if not 0 < 2 * diff < channels:
            problems.append(f"`0 < 2 * diff < channels` must hold, got diff={diff}, "
                            f"channels={channels}")
        elif (channels - diff) % groups or (channels - 2 * diff) % groups or channels % groups:
            problems.append(f"`channels - diff`, `channels - 2 * diff` and `channels` must be "
                            f"multiples of groups, got channels={channels}, diff={diff}, "
                            f"groups={groups}")
        if not 1 <= channels // max(slice_ratio, 1) < channels:
            problems.append(f"`1 <= channels // slice_ratio < channels` must hold, got "
                            f"slice_ratio={slice_ratio}, channels={channels}")
        return problems

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.upper(x)
        rest, kept = torch.split(h, [h.shape[1] - self.kept, self.kept], 1)
        return self.compress(self.lower(rest) + torch.cat([x, kept], 1))
