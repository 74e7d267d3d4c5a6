"""SAFMN's attention block: spatially-adaptive feature modulation (SAFM) plus a feed-forward unit.

Paper: Spatially-Adaptive Feature Modulation for Efficient Image Super-Resolution (SAFMN, ICCV
2023), https://arxiv.org/abs/2302.13800. The NTIRE efficient-SR entries built on it vary the
normalisation, the feed-forward unit and the pooling scales; the options below cover EGFMN
(NTIRE 2024 team43: channel LayerNorm, a gated depthwise feed-forward unit), GFMN (NTIRE 2024
team22: the same plus MogaNet's feature decomposition in both halves) and SAFMN-Deep15 (NTIRE
2026 team21: GroupNorm(1), a 1x1 GELU MLP, pooling from 1/2).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from search_space.layers import conv1x1, make_act
from search_space.registry import register_block

__all__ = ["SAFMB", "SAFM", "ChannelLayerNorm", "NORMS", "FFNS", "POOL_DIVISORS"]

NORMS = ("layer", "group")
FFNS = ("gated", "mlp")
POOL_DIVISORS = (2, 4)


class ChannelLayerNorm(nn.Module):
    """LayerNorm over the channels of each pixel of a ``(B, C, H, W)`` map (SAFMN's form).

    Written as the official ``channels_first`` branch (mean, biased variance, eps inside the
    square root) so that it matches it to float32 rounding. ``pixels_first`` computes the same
    on a ``(B, H*W, C)`` copy with ``torch.var`` over the last axis, as Restormer's
    ``WithBias_LayerNorm`` (FMDN), which it then matches bit for bit.
    """

    def __init__(self, channels: int, *, eps: float = 1e-6, pixels_first: bool = False) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps
        self.pixels_first = pixels_first

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pixels_first:
            b, c, h, w = x.shape
            t = x.permute(0, 2, 3, 1).reshape(b, h * w, c)
            mean = t.mean(-1, keepdim=True)
            var = t.var(-1, keepdim=True, unbiased=False)
            t = (t - mean) / torch.sqrt(var + self.eps) * self.weight + self.bias
            return t.reshape(b, h, w, c).permute(0, 3, 1, 2)
        mean = x.mean(1, keepdim=True)
        var = (x - mean).pow(2).mean(1, keepdim=True)
        x = (x - mean) / torch.sqrt(var + self.eps)
        return self.weight[:, None, None] * x + self.bias[:, None, None]


class SAFM(nn.Module):
    """Spatially-adaptive feature modulation: multi-scale depthwise features gate the input.

    The channels are split into ``levels`` chunks; chunk 0 goes through a depthwise 3x3 conv at
    full resolution, chunk ``i > 0`` is max-pooled to ``H // (pool_divisor * 2**(i - 1))`` (at
    least 1), depthwise-convolved and nearest-upsampled back. A 1x1 conv aggregates the chunks;
    ``y = gelu(aggr) * x``. With ``decompose`` (GFMN) the input first goes through a 1x1 conv and
    MogaNet's feature decomposition, ``x = gelu(x + sigma * (x - mean_hw(x)))``, and that ``x``
    is both modulated and gating.

    Args:
        channels: Feature width C (a multiple of ``levels``).
        levels: Number of scales (4, as SAFMN).
        pool_divisor: Down-scaling of level 1 (4: SAFMN, EGFMN; 2: SAFMN-Deep15).
        decompose: Add the 1x1 conv and the decomposition (a learned per-channel ``sigma``).
    """

    def __init__(self, channels: int, *, levels: int = 4, pool_divisor: int = 4,
                 decompose: bool = False) -> None:
        super().__init__()
        self.proj = conv1x1(channels, channels) if decompose else None
        # MogaNet's ElementScale, initialised at 1e-5 (a plain parameter: its state key is sigma)
        self.sigma = nn.Parameter(torch.full((1, channels, 1, 1), 1e-5)) if decompose else None
        chunk = channels // levels
        self.levels, self.pool_divisor = levels, pool_divisor
        self.mfr = nn.ModuleList(
            nn.Conv2d(chunk, chunk, 3, padding=1, groups=chunk) for _ in range(levels))
        self.aggr = conv1x1(channels, channels)
        self.act = make_act("gelu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        if self.proj is not None:
            x = self.proj(x)
            x = self.act(x + self.sigma * (x - F.adaptive_avg_pool2d(x, 1)))
        out = []
        for i, chunk in enumerate(x.chunk(self.levels, dim=1)):
            if i == 0:
                out.append(self.mfr[0](chunk))
                continue
            down = self.pool_divisor * 2 ** (i - 1)
            s = F.adaptive_max_pool2d(chunk, (max(1, h // down), max(1, w // down)))
            out.append(F.interpolate(self.mfr[i](s), size=(h, w), mode="nearest"))
        return self.act(self.aggr(torch.cat(out, 1))) * x


class SameDepthwise(nn.Conv2d):
    """Depthwise conv, bias-free, with PyTorch's ``padding="same"`` for any kernel: an even kernel
    side ``k`` pads ``(k - 1) // 2`` before and the rest after (FMDN's 5x2 / 2x5 kernels: 0 and
    1). Padded explicitly, which gives the same zeros without ``"same"``'s warning for even
    kernels."""

    def __init__(self, channels: int, kernel_size: tuple[int, int]) -> None:
        super().__init__(channels, channels, kernel_size, groups=channels, bias=False)
        kh, kw = kernel_size
        self.same_pad = ((kw - 1) // 2, kw - 1 - (kw - 1) // 2, (kh - 1) // 2,
                         kh - 1 - (kh - 1) // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.pad(x, self.same_pad))


class GatedFeedForward(nn.Module):
    """1x1 C -> 2m, depthwise 3x3, split, ``x1 * x2`` (no activation, as EGFMN), 1x1 m -> C.

    Bias-free, as Restormer's gated-dconv feed-forward network it comes from (which also applies
    a GELU to ``x1``; EGFMN does not). With ``decompose`` (GFMN) the product ``h`` becomes
    ``h + sigma * (h - gelu(conv1x1_{m -> 1}(h)))`` before the last conv (MogaNet's channel
    decomposition; that 1x1 conv has a bias). ``kernels`` replaces the depthwise 3x3 by a chain of
    depthwise convs with "same" padding (FMDN's AFFN: 5x2 then 2x5), ``gelu`` gates with
    ``gelu(x1) * x2`` (Restormer, FMDN).
    """

    def __init__(self, channels: int, hidden: int, *, decompose: bool = False,
                 kernels: tuple[tuple[int, int], ...] = ((3, 3),), gelu: bool = False) -> None:
        super().__init__()
        self.decompose = conv1x1(hidden, 1) if decompose else None
        self.sigma = nn.Parameter(torch.full((1, hidden, 1, 1), 1e-5)) if decompose else None
        self.act = make_act("gelu")
        self.gelu = gelu
        self.project_in = conv1x1(channels, 2 * hidden, bias=False)
        if tuple(map(tuple, kernels)) == ((3, 3),):
            self.dwconv = nn.Conv2d(2 * hidden, 2 * hidden, 3, padding=1, groups=2 * hidden,
                                    bias=False)
        else:
            self.dwconv = nn.Sequential(*(SameDepthwise(2 * hidden, tuple(k)) for k in kernels))
        self.project_out = conv1x1(hidden, channels, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1, x2 = self.dwconv(self.project_in(x)).chunk(2, dim=1)
        h = (self.act(x1) if self.gelu else x1) * x2
        if self.decompose is not None:
            h = h + self.sigma * (h - self.act(self.decompose(h)))
        return self.project_out(h)


class MLPFeedForward(nn.Module):
    """1x1 C -> m, GELU, 1x1 m -> C (with biases; SAFMN-Deep15)."""

    def __init__(self, channels: int, hidden: int) -> None:
        super().__init__()
        self.project_in = conv1x1(channels, hidden)
        self.act = make_act("gelu")
        self.project_out = conv1x1(hidden, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.project_out(self.act(self.project_in(x)))


@register_block("safmb", choices={"norm": NORMS, "ffn": FFNS, "pool_divisor": POOL_DIVISORS,
                                  "levels": (2, 4), "decompose": (False, True)})
class SAFMB(nn.Module):
    """SAFMN attention block: ``x = safm(norm1(x)) + x``, ``y = ffn(norm2(x)) + x``.

    Paper: Spatially-Adaptive Feature Modulation for Efficient Image Super-Resolution,
    https://arxiv.org/abs/2302.13800.

    Args:
        channels: Feature width C (a multiple of ``levels``); output shape == input shape.
        norm: Normalisation before each half. Option: layer (per-pixel LayerNorm over the
            channels, eps 1e-6: SAFMN, EGFMN) | group (GroupNorm with one group, over C, H and W:
            SAFMN-Deep15).
        ffn: Feed-forward unit. Option: gated (EGFMN) | mlp (SAFMN-Deep15).
        ffn_scale: Hidden width of the feed-forward unit, ``int(C * ffn_scale)`` (default 2).
        levels: Scales of the modulation. Option: 2 | 4 (default 4, as SAFMN).
        pool_divisor: Down-scaling of the first pooled level. Option: 2 | 4 (default 4).
        decompose: MogaNet's feature decomposition in the modulation and (``ffn: gated``) the
            feed-forward unit, as GFMN. Option: false | true.
    """

    def __init__(self, channels: int, *, norm: str = "layer", ffn: str = "gated",
                 ffn_scale: float = 2.0, levels: int = 4, pool_divisor: int = 4,
                 decompose: bool = False) -> None:
        super().__init__()
        self.norm1 = _norm(norm, channels)
        self.safm = SAFM(channels, levels=levels, pool_divisor=pool_divisor, decompose=decompose)
        self.norm2 = _norm(norm, channels)
        hidden = int(channels * ffn_scale)
        if ffn == "gated":
            self.ffn = GatedFeedForward(channels, hidden, decompose=decompose)
        else:
            self.ffn = MLPFeedForward(channels, hidden)

    @staticmethod
    def check_options(channels: int, *, levels: int = 4, ffn_scale: float = 2.0,
                      **_: object) -> list[str]:
        problems = []
        if channels % levels:
            problems.append(f"`channels % levels == 0` must hold, got channels={channels}, "
                            f"levels={levels}")
        if int(channels * ffn_scale) < 1:
            problems.append(f"`int(channels * ffn_scale) >= 1` must hold, got "
                            f"channels={channels}, ffn_scale={ffn_scale}")
        return problems

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.safm(self.norm1(x)) + x
        return self.ffn(self.norm2(x)) + x


def _norm(name: str, channels: int) -> nn.Module:
    return ChannelLayerNorm(channels) if name == "layer" else nn.GroupNorm(1, channels)
