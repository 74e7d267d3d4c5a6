"""FSRCNN's shrinking, mapping and expanding layers.

Paper: Accelerating the Super-Resolution Convolutional Neural Network (FSRCNN, Dong, Loy and Tang,
ECCV 2016), https://arxiv.org/abs/1608.00367. The network: 5x5 feature extraction (1 -> d), 1x1
shrinking (d -> s), m 3x3 mapping layers (s -> s), 1x1 expanding (s -> d), a PReLU after each,
then a 9x9 deconvolution with stride = scale. In a spec: ``head_kernel_size: 5``, this block,
``upsampler: deconv`` and ``y_only: true`` (FSRCNN is a luminance network).
"""

from __future__ import annotations

import torch
from torch import nn

from search_space.layers import conv, conv1x1
from search_space.registry import register_block

__all__ = ["FSRCNNBody"]


@register_block("fsrcnn")
class FSRCNNBody(nn.Module):
    """FSRCNN's middle: [PReLU], 1x1 shrink C -> s, PReLU, m x (3x3 s -> s, PReLU), 1x1 expand
    s -> C, PReLU. PReLUs have one slope per channel (initialised at 0.25), as in the paper.

    Paper: Accelerating the Super-Resolution Convolutional Neural Network,
    https://arxiv.org/abs/1608.00367. FSRCNN: C = d = 56, s = 12, m = 4.

    Args:
        channels: Feature width d; output shape == input shape.
        shrink_channels: Width s of the mapping layers (default 12).
        mapping_layers: Number m of 3x3 mapping layers (default 4).
        input_act: Start with a PReLU on the input: FSRCNN's feature-extraction activation, which
            belongs here because the spec's head is a bare conv (default true).
    """

    def __init__(self, channels: int, *, shrink_channels: int = 12, mapping_layers: int = 4,
                 input_act: bool = True) -> None:
        super().__init__()
        s = shrink_channels
        layers: list[nn.Module] = [nn.PReLU(channels)] if input_act else []
        layers += [conv1x1(channels, s), nn.PReLU(s)]
        for _ in range(mapping_layers):
            layers += [conv(s, s, 3), nn.PReLU(s)]
        layers += [conv1x1(s, channels), nn.PReLU(channels)]
        self.body = nn.Sequential(*layers)

    @staticmethod
    def check_options(channels: int, *, shrink_channels: int = 12, **_: object) -> list[str]:
        if shrink_channels >= 1:
            return []
        return [f"`shrink_channels >= 1` must hold, got shrink_channels={shrink_channels}"]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)
