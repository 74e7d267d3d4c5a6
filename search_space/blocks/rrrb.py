"""RRRB (a re-parameterisable 3x3 conv unit) and ERB, the trunk block of FMEN.

Paper: Fast and Memory-Efficient Network Towards Efficient Image Super-Resolution (FMEN),
https://arxiv.org/abs/2204.08397 (official code: https://github.com/NJU-Jet/FMEN).
"""

from __future__ import annotations

import torch
from torch import nn

from search_space.choices import ACTIVATIONS
from search_space.errors import InputError
from search_space.layers import conv1x1, conv3x3, make_act, pad_with_values
from search_space.registry import register_block, register_conv_unit

__all__ = ["RRRB", "ERB", "EXPAND_RATIOS", "rrrb_conv_unit"]

EXPAND_RATIOS = (1, 2, 3, 4)


class RRRB(nn.Module):
    """Residual-in-residual re-parameterisable block: one 3x3 conv C -> C at deploy time.

    Training form (FMEN, Fig. 3)::

        e = conv1x1(x)                       # C -> rC
        y = conv3x3(pad(e, bias of conv1x1)) + e   # rC -> rC, no zero padding
        out = conv1x1(y) + x                 # rC -> C

    Padding the expanded tensor with the 1x1 conv's bias (instead of zeros) makes the branch equal
    to what a single merged conv sees with zero padding of ``x``, so the merge is exact everywhere,
    borders included. :meth:`reparameterize` folds it into ``rep_conv`` (3x3, padding 1).

    Args:
        channels: Input and output width C.
        expand_ratio: r, width of the expanded tensor is r*C. Option: 1 | 2 | 3 | 4.
    """

    def __init__(self, channels: int, *, expand_ratio: int = 2) -> None:
        super().__init__()
        mid = expand_ratio * channels
        self.deploy = False
        self.expand_conv = conv1x1(channels, mid)
        self.fea_conv = nn.Conv2d(mid, mid, 3, padding=0)  # padded explicitly in forward
        self.reduce_conv = conv1x1(mid, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.deploy:
            return self.rep_conv(x)
        expanded = self.expand_conv(x)
        out = self.fea_conv(pad_with_values(expanded, self.expand_conv.bias)) + expanded
        return self.reduce_conv(out) + x

    @torch.no_grad()
    def reparameterize(self) -> None:
        """Fuse the three convs and both identities into ``rep_conv`` (once; idempotent)."""
        if self.deploy:
            return
        ref = self.fea_conv.weight
        # float64 keeps the merged kernel within float32 rounding of the multi-branch form.
        w0 = self.expand_conv.weight.double()[:, :, 0, 0]  # (rC, C)
        b0 = self.expand_conv.bias.double()
        w1 = self.fea_conv.weight.double().clone()  # (rC, rC, 3, 3)
        b1 = self.fea_conv.bias.double()
        w2 = self.reduce_conv.weight.double()[:, :, 0, 0]  # (C, rC)
        b2 = self.reduce_conv.bias.double()
        mid, channels = w0.shape
        w1[:, :, 1, 1] += torch.eye(mid, dtype=w1.dtype, device=w1.device)  # inner identity
        # The 3x3 conv sees b0 at every tap (interior and bias-padded border alike).
        b01 = b1 + torch.einsum("omhw,m->o", w1, b0)
        w01 = torch.einsum("omhw,mi->oihw", w1, w0)
        weight = torch.einsum("co,oihw->cihw", w2, w01)
        bias = w2 @ b01 + b2
        weight[:, :, 1, 1] += torch.eye(channels, dtype=weight.dtype, device=weight.device)
        self.rep_conv = conv3x3(channels, channels).to(device=ref.device, dtype=ref.dtype)
        self.rep_conv.weight.copy_(weight)
        self.rep_conv.bias.copy_(bias)
        del self.expand_conv, self.fea_conv, self.reduce_conv
        self.deploy = True


@register_conv_unit("rrrb", choices={"expand_ratio": EXPAND_RATIOS})
def rrrb_conv_unit(in_channels: int, out_channels: int, *, expand_ratio: int = 2) -> nn.Module:
    """RRRB as a conv unit: re-parameterisable training for any block with a ``conv`` option."""
    if in_channels != out_channels:
        raise InputError(
            "conv unit 'rrrb': in_channels == out_channels must hold (RRRB has an identity "
            f"branch), got in_channels={in_channels}, out_channels={out_channels}"
        )
    return RRRB(in_channels, expand_ratio=expand_ratio)


@register_block("erb", choices={"act": ACTIVATIONS, "expand_ratio": EXPAND_RATIOS})
class ERB(nn.Module):
    """Enhanced residual block (FMEN): RRRB, LeakyReLU, RRRB; deploy: conv3x3, act, conv3x3.

    The residual connections live inside the RRRBs, so the deploy form has no skip connection
    at all (cheaper in runtime and memory than an EDSR residual block). Paper: Fast and
    Memory-Efficient Network Towards Efficient Image Super-Resolution,
    https://arxiv.org/abs/2204.08397.

    Args:
        channels: Feature width; output shape == input shape.
        act: Activation between the two RRRBs (paper: LeakyReLU 0.1). Option: see
            ``search_space.choices.ACTIVATIONS``.
        expand_ratio: RRRB expansion r. Option: 1 | 2 | 3 | 4.
    """

    def __init__(self, channels: int, *, act: str = "lrelu0.1", expand_ratio: int = 2) -> None:
        super().__init__()
        self.conv1 = RRRB(channels, expand_ratio=expand_ratio)
        self.act = make_act(act)
        self.conv2 = RRRB(channels, expand_ratio=expand_ratio)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(self.act(self.conv1(x)))
