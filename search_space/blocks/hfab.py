"""HFAB, the high-frequency attention block of FMEN.

Paper: Fast and Memory-Efficient Network Towards Efficient Image Super-Resolution (FMEN),
https://arxiv.org/abs/2204.08397 (official code: https://github.com/NJU-Jet/FMEN).
"""

from __future__ import annotations

import torch
from torch import nn

from search_space.blocks.rrrb import ERB, EXPAND_RATIOS
from search_space.choices import ACTIVATIONS
from search_space.layers import bn_scale_shift, conv3x3, fuse_conv_bn, make_act, pad_with_values
from search_space.registry import register_block

__all__ = ["HFAB", "NUM_ERBS"]

NUM_ERBS = (1, 2, 3, 4)


@torch.no_grad()
def _fuse_bn_conv(bn: nn.BatchNorm2d, conv: nn.Conv2d) -> nn.Conv2d:
    """BN followed by an unpadded conv whose input was padded with BN's shift -> one conv
    with zero padding 1 (the shift padding is what makes the border exact)."""
    scale, shift = (t.double() for t in bn_scale_shift(bn))
    weight = conv.weight.double()
    fused = conv3x3(conv.in_channels, conv.out_channels).to(conv.weight.device, conv.weight.dtype)
    fused.weight.copy_(weight * scale.view(1, -1, 1, 1))
    fused.bias.copy_(conv.bias.double() + weight.sum(dim=(2, 3)) @ shift)
    return fused


@register_block(
    "hfab", choices={"num_erb": NUM_ERBS, "act": ACTIVATIONS, "expand_ratio": EXPAND_RATIOS},
    tags=("attention",),
)
class HFAB(nn.Module):
    """High-frequency attention block (FMEN): a conv/ERB branch at width m gates ``x`` per pixel.

    Training form, as the official ``TRAIN_FMEN``::

        a = conv3x3_nopad(pad(BN1(x), BN1 shift))          # C -> m
        a = act(ERB^n(act(a)))                              # width m
        a = conv3x3_nopad(pad(BN2(a), BN2 shift))          # m -> C
        out = sigmoid(BN3(a)) * x

    BN brings global statistics into the attention and keeps the sigmoid out of saturation;
    padding with BN's shift (from its running statistics) lets :meth:`reparameterize` merge
    BN1/BN2 into the following conv and BN3 into the preceding one exactly. Deploy form (as
    ``TEST_FMEN`` / NTIRE ``team03_fmen``): ``squeeze`` 3x3, act, ERBs (plain 3x3 convs), act,
    ``excitate`` 3x3, sigmoid, multiply.

    Args:
        channels: Feature width C; output shape == input shape.
        mid_channels: Branch width m (FMEN-S: 16, its warm-up HFAB 12; FMEN: 32 and 28).
        num_erb: ERBs in the branch (FMEN's ``up_blocks``). Option: 1 | 2 | 3 | 4.
        act: Activation of the branch (paper: LeakyReLU 0.1). Option: see
            ``search_space.choices.ACTIVATIONS``.
        expand_ratio: RRRB expansion of the branch ERBs. Option: 1 | 2 | 3 | 4.
    """

    def __init__(
        self,
        channels: int,
        *,
        mid_channels: int = 16,
        num_erb: int = 1,
        act: str = "lrelu0.1",
        expand_ratio: int = 2,
    ) -> None:
        super().__init__()
        self.deploy = False
        self.bn1 = nn.BatchNorm2d(channels)
        self.squeeze = nn.Conv2d(channels, mid_channels, 3, padding=0)  # padded in forward
        self.act = make_act(act)
        self.convs = nn.Sequential(
            *(ERB(mid_channels, act=act, expand_ratio=expand_ratio) for _ in range(num_erb))
        )
        self.bn2 = nn.BatchNorm2d(mid_channels)
        self.excitate = nn.Conv2d(mid_channels, channels, 3, padding=0)
        self.bn3 = nn.BatchNorm2d(channels)

    @staticmethod
    def check_options(channels: int, *, mid_channels: int = 16, **_: object) -> list[str]:
        if isinstance(mid_channels, int) and mid_channels < 1:
            return [f"mid_channels >= 1 must hold, got mid_channels={mid_channels}"]
        return []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.deploy:
            # One expression: no intermediate outlives its consumer, so the peak (input, trunk
            # skip, excitate output, sigmoid map) is the official deploy code's.
            attn = torch.sigmoid(self.excitate(self.act(self.convs(self.act(self.squeeze(x))))))
            return attn * x
        a = self.bn1(x)
        a = self.act(self.squeeze(pad_with_values(a, bn_scale_shift(self.bn1)[1])))
        a = self.bn2(self.act(self.convs(a)))
        a = self.excitate(pad_with_values(a, bn_scale_shift(self.bn2)[1]))
        return torch.sigmoid(self.bn3(a)) * x

    @torch.no_grad()
    def reparameterize(self) -> None:
        """Merge BN1 into ``squeeze`` and BN2, BN3 into ``excitate`` (once; idempotent).

        The ERBs inside are fused by their own ``reparameterize`` (the model walker visits
        children first); they need nothing from here.
        """
        if self.deploy:
            return
        self.squeeze = _fuse_bn_conv(self.bn1, self.squeeze)
        self.excitate = fuse_conv_bn(_fuse_bn_conv(self.bn2, self.excitate), self.bn3)
        del self.bn1, self.bn2, self.bn3
        self.deploy = True
