"""Non-residual block (NRB) of SRN.

Paper: A Single Residual Network with ESA Modules and Distillation (CVPRW 2023, NTIRE 2023 ESR),
https://doi.org/10.1109/CVPRW59228.2023.00191; official code wnxbwyc/SRN ``models/team25_SRN.py``
(class ``ResidualBlock_ESA``, which despite its name has no skip).
"""

from __future__ import annotations

import torch
from torch import nn

from search_space.blocks.esa import ESA, ESA_OR_NONE, build_esa
from search_space.choices import ACTIVATIONS
from search_space.layers import make_act
from search_space.registry import build_conv, register_block

__all__ = ["NRB"]


@register_block("nrb", choices={"esa": ESA_OR_NONE, "act": ACTIVATIONS, "residual": (False, True)})
class NRB(nn.Module):
    """Non-residual block: 3x3 conv, activation, 3x3 conv, slim ESA; no skip by default.

    ``y = esa(conv2(act(conv1(x))))``; with ``residual=True`` (the paper's "with residual"
    ablation, Table 3) ``y = esa(...) + x``. Paper: A Single Residual Network with ESA Modules and
    Distillation, https://doi.org/10.1109/CVPRW59228.2023.00191.

    Args:
        channels: Feature width C; output shape == input shape.
        esa: Attention after the second conv. Option: none | rfdn | rlfn | slim (default ``slim``:
            one 3x3 conv after the pool, identity skip, as SRN).
        esa_channels: ESA width f (default 16, as SRN at C=64; 0 means C // 4).
        act: Activation between the convs (default LeakyReLU 0.1, as SRN). Option: relu |
            lrelu0.05 | lrelu0.1 | lrelu0.2 | gelu | silu.
        conv: Conv unit of both 3x3 convs, a name or ``{type: name, ...}`` (default plain).
        residual: Add the block input to the output (default False, as SRN).
        esa_bias: Biases in the ESA convs (default True; R2Net, NTIRE 2024 team29: False).
    """

    def __init__(
        self,
        channels: int,
        *,
        esa: str = "slim",
        esa_channels: int = 16,
        act: str = "lrelu0.1",
        conv: str | dict | None = None,
        residual: bool = False,
        esa_bias: bool = True,
    ) -> None:
        super().__init__()
        self.residual = residual
        self.conv1 = build_conv(conv, channels, channels)
        self.act = make_act(act)
        self.conv2 = build_conv(conv, channels, channels)
        self.esa = build_esa(esa, channels, esa_channels, bias=esa_bias)

    @staticmethod
    def check_options(
        channels: int, *, esa: str = "slim", esa_channels: int = 16, **_: object
    ) -> list[str]:
        if esa == "none":
            return []
        return ESA.check_options(channels, esa_channels=esa_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.esa(self.conv2(self.act(self.conv1(x))))
        return out + x if self.residual else out
