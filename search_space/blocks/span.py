"""SPAN: the Conv3XC conv unit and the swift parameter-free attention block (SPAB).

Paper: Swift Parameter-free Attention Network for Efficient Super-Resolution (SPAN; CVPRW 2024,
NTIRE 2024 ESR 1st place), https://arxiv.org/abs/2311.12770. Reproduced from the official code,
hongyuanyu/SPAN ``basicsr/archs/span_arch.py`` (training form: ``Conv3XC`` with its 1x1 -> 3x3 ->
1x1 branch) and the challenge files, whose ``Conv3XC`` keeps only the frozen merged 3x3 conv:
Amazingren/NTIRE2024_ESR ``models/team38_SPAN.py`` (``SPAN30``) and NTIRE2025_ESR
``models/team24_SPANF.py``. Those frozen forms are deploy forms; train from this one.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from search_space.choices import ACTIVATIONS
from search_space.layers import conv1x1, conv3x3, make_act
from search_space.registry import build_conv, register_block, register_conv_unit

__all__ = ["Conv3XC", "SPAB", "GAINS", "conv3xc_unit"]

GAINS = (1, 2, 3, 4)


class Conv3XC(nn.Module):
    """SPAN's re-parameterisable 3x3 conv: one 3x3 conv ``in -> out`` at deploy time.

    Training form (official ``Conv3XC`` with ``gain1 = g``)::

        branch = conv1x1(pad(x, 1))          # in -> g*in, on the zero-padded input
        branch = conv3x3_valid(branch)       # g*in -> g*out, no padding: back to H x W
        out = conv1x1(branch) + conv1x1(x)   # g*out -> out, plus a 1x1 skip in -> out

    Zero-padding the input *before* the first 1x1 conv makes the branch see that conv's bias on
    the border, exactly as a merged 3x3 conv with zero padding sees ``b1`` through the merged
    bias, so :meth:`reparameterize` is exact everywhere, borders included.

    Args:
        in_channels: Input width.
        out_channels: Output width.
        gain: Expansion g of the inner widths (official ``gain1``; default 2, as SPAN).
    """

    def __init__(self, in_channels: int, out_channels: int, *, gain: int = 2) -> None:
        super().__init__()
        self.deploy = False
        self.in_channels, self.out_channels = in_channels, out_channels
        self.skip_conv = conv1x1(in_channels, out_channels)
        self.expand_conv = conv1x1(in_channels, gain * in_channels)
        self.fea_conv = nn.Conv2d(gain * in_channels, gain * out_channels, 3, padding=0)
        self.reduce_conv = conv1x1(gain * out_channels, out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.deploy:
            return self.rep_conv(x)
        branch = self.reduce_conv(self.fea_conv(self.expand_conv(F.pad(x, (1, 1, 1, 1)))))
        return branch + self.skip_conv(x)

    @torch.no_grad()
    def reparameterize(self) -> None:
        """Fuse the branch and the skip into ``rep_conv`` (3x3, padding 1; once, idempotent)."""
        if self.deploy:
            return
        ref = self.fea_conv.weight
        # float64 keeps the merged kernel within float32 rounding of the training form.
        w1 = self.expand_conv.weight.double()[:, :, 0, 0]  # (g*in, in)
        b1 = self.expand_conv.bias.double()
        w2 = self.fea_conv.weight.double()  # (g*out, g*in, 3, 3)
        b2 = self.fea_conv.bias.double()
        w3 = self.reduce_conv.weight.double()[:, :, 0, 0]  # (out, g*out)
        b3 = self.reduce_conv.bias.double()
        # The 3x3 conv sees b1 at every tap (interior and zero-padded border alike).
        weight = torch.einsum("om,mnhw,ni->oihw", w3, w2, w1)
        bias = w3 @ (b2 + torch.einsum("mnhw,n->m", w2, b1)) + b3
        weight[:, :, 1, 1] += self.skip_conv.weight.double()[:, :, 0, 0]
        bias += self.skip_conv.bias.double()
        self.rep_conv = conv3x3(self.in_channels, self.out_channels).to(
            device=ref.device, dtype=ref.dtype)
        self.rep_conv.weight.copy_(weight)
        self.rep_conv.bias.copy_(bias)
        del self.skip_conv, self.expand_conv, self.fea_conv, self.reduce_conv
        self.deploy = True


@register_conv_unit("conv3xc", choices={"gain": GAINS})
def conv3xc_unit(in_channels: int, out_channels: int, *, gain: int = 2) -> nn.Module:
    """SPAN's Conv3XC: 1x1 -> 3x3 -> 1x1 branch plus a 1x1 skip; one 3x3 conv at deploy."""
    return Conv3XC(in_channels, out_channels, gain=gain)


@register_block("spab", choices={"act": ACTIVATIONS})
class SPAB(nn.Module):
    """Swift parameter-free attention block: three 3x3 convs and a parameter-free attention.

    ``f1 = act(conv1(x))``, ``f2 = act(conv2(f1))``, ``f3 = conv3(f2)``,
    ``att = sigmoid(f3) - 0.5``, ``y = (x + f3) * att``. The activation is in place (official
    SiLU), so the first conv's output *is* ``f1``. As the official SPAB, :meth:`forward_features`
    also returns ``f1`` and ``att``: SPAN's fusion concatenates the last block's ``f1``, and the
    official SPAN forward holds every block's returned tensors until that fusion (which sets its
    peak memory). With ``in_channels`` set to another width (SPAN-F's first block, on the image)
    there is no attention and no identity: ``y = f3``. Paper: Swift Parameter-free Attention
    Network for Efficient Super-Resolution, https://arxiv.org/abs/2311.12770.

    Args:
        channels: Feature width C; output shape == input shape.
        in_channels: Input width (default: ``channels``); another width gives the stem form
            without attention (used on the image when the spec has ``head: none``).
        act: Activation after the first two convs (default SiLU, as SPAN). Option: relu |
            lrelu0.05 | lrelu0.1 | lrelu0.2 | gelu | silu.
        conv: Conv unit of the three 3x3 convs, a name or ``{type: name, ...}`` (default plain;
            the SPAN anchors train with ``conv3xc``).
        num_convs: Activated convs before the last one: 3 (SPAN) or more (ERRN2, NTIRE 2026
            team20: 4, ``conv4`` after ``conv3``, the attention on the last conv's output).
    """

    def __init__(
        self,
        channels: int,
        *,
        in_channels: int | None = None,
        act: str = "silu",
        conv: str | dict | None = None,
        num_convs: int = 3,
    ) -> None:
        super().__init__()
        in_channels = in_channels or channels
        self.attention = in_channels == channels
        self.conv1 = build_conv(conv, in_channels, channels)
        self.conv2 = build_conv(conv, channels, channels)
        self.conv3 = build_conv(conv, channels, channels)
        # ERRN2's fourth conv: conv3's output is activated and goes through it
        self.extra_convs = nn.ModuleList(build_conv(conv, channels, channels)
                                         for _ in range(num_convs - 3))
        self.act = make_act(act)

    @staticmethod
    def check_options(channels: int, *, num_convs: int = 3, **_: object) -> list[str]:
        if num_convs >= 3:
            return []
        return [f"`num_convs >= 3` must hold, got num_convs={num_convs}"]

    def forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        """``(y, (f1, att))``; the stem form returns ``(f3, (f1,))``."""
        f1 = self.act(self.conv1(x))
        f2 = self.act(self.conv2(f1))
        f3 = self.conv3(f2)
        for conv in self.extra_convs:  # ERRN2: the last conv's output carries the attention
            f3 = conv(self.act(f3))
        if not self.attention:
            return f3, (f1,)
        att = torch.sigmoid(f3) - 0.5
        return (f3 + x) * att, (f1, att)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # f1 and att die right after this returns, as in SPAN-F's SPAB1, which returns y alone.
        return self.forward_features(x)[0]
