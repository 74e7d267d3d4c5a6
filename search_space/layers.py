"""Small layers and helpers shared by the blocks: activations, convs, BN fusion, channel shuffle,
BT.601 colour conversion."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import parametrizations, parametrize

from search_space.choices import ACTIVATIONS
from search_space.errors import InputError
from search_space.registry import register_conv_unit

__all__ = [
    "ACTIVATIONS",
    "make_act",
    "conv",
    "conv3x3",
    "conv1x1",
    "channel_shuffle",
    "ChannelShuffle",
    "bn_scale_shift",
    "ChannelAffine",
    "fuse_conv_bn",
    "fold_weight_norm",
    "maybe_weight_norm",
    "pad_with_values",
    "rgb_to_ycbcr",
    "ycbcr_to_rgb",
    "check_min_size",
    "distill_concat",
]


def check_min_size(x: torch.Tensor, minimum: int, what: str, why: str) -> None:
    """A one-line error when ``x`` is smaller than ``minimum`` pixels on a side, instead of a
    padding or pooling error deep inside a block. Skipped under jit tracing, which would bake the
    comparison into the trace."""
    height, width = x.shape[-2:]
    if not torch.jit.is_tracing() and min(height, width) < minimum:
        raise InputError(f"{what} input: height and width >= {minimum} must hold ({why}), got "
                         f"{height}x{width}")


def distill_concat(x: torch.Tensor, distill: nn.ModuleList, refine: nn.ModuleList,
                   last: nn.Module, act: nn.Module) -> torch.Tensor:
    """RFDN-style progressive distillation: each step keeps ``act(distill(r))`` and refines
    ``r = act(refine(r) + r)``; the kept features and ``act(last(r))``, concatenated."""
    distilled, r = [], x
    for d, f in zip(distill, refine, strict=True):
        distilled.append(act(d(r)))
        r = act(f(r) + r)
    return torch.cat([*distilled, act(last(r))], 1)


def make_act(name: str | None, default: str = "relu") -> nn.Module:
    """Activation module by name (``lreluS`` = LeakyReLU with slope S); None gives ``default``."""
    name = name or default
    if name == "relu":
        return nn.ReLU(inplace=True)
    if name.startswith("lrelu"):
        return nn.LeakyReLU(float(name[5:]), inplace=True)
    if name == "gelu":
        return nn.GELU()
    if name == "silu":
        return nn.SiLU(inplace=True)
    raise InputError(f"activation: {name!r} not allowed; allowed: {', '.join(ACTIVATIONS)}")


def conv(in_channels: int, out_channels: int, kernel_size: int = 3, *, bias: bool = True,
         stride: int = 1, groups: int = 1, dilation: int = 1) -> nn.Conv2d:
    """Conv2d with 'same' padding for odd kernels."""
    padding = dilation * (kernel_size - 1) // 2
    return nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding,
                     dilation=dilation, groups=groups, bias=bias)


def conv3x3(in_channels: int, out_channels: int, **kwargs) -> nn.Conv2d:
    return conv(in_channels, out_channels, 3, **kwargs)


def conv1x1(in_channels: int, out_channels: int, **kwargs) -> nn.Conv2d:
    return conv(in_channels, out_channels, 1, **kwargs)


@register_conv_unit("plain")
def plain_conv_unit(in_channels: int, out_channels: int, *, bias: bool = True) -> nn.Module:
    """A plain 3x3 convolution (the default conv unit); ``bias: false`` for bias-free heads and
    tails (SMFANet)."""
    return conv3x3(in_channels, out_channels, bias=bias)


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """ShuffleNet channel shuffle: (B, g*n, H, W) -> interleave the g groups."""
    b, c, h, w = x.shape
    return x.view(b, groups, c // groups, h, w).transpose(1, 2).reshape(b, c, h, w)


class ChannelShuffle(nn.Module):
    def __init__(self, groups: int) -> None:
        super().__init__()
        self.groups = groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return channel_shuffle(x, self.groups)


def pad_with_values(x: torch.Tensor, values: torch.Tensor, pad: int = 1) -> torch.Tensor:
    """Pad by ``pad`` pixels, each channel's border set to ``values[c]`` (not zero).

    RRRB and HFAB pad with the preceding layer's bias so that the padded branch equals what a
    single merged conv would see with zero padding of its input.
    """
    x = nn.functional.pad(x, (pad, pad, pad, pad))
    v = values.view(1, -1, 1, 1)
    x[:, :, :pad, :] = v
    x[:, :, -pad:, :] = v
    x[:, :, :, :pad] = v
    x[:, :, :, -pad:] = v
    return x


def bn_scale_shift(bn: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """BN in eval form as ``x * scale + shift`` (running statistics)."""
    scale = bn.weight / (bn.running_var + bn.eps).sqrt()
    return scale, bn.bias - bn.running_mean * scale


class ChannelAffine(nn.Module):
    """``x * weight + bias`` per channel: the deploy form of an eval-mode BN that no conv can
    absorb exactly (one whose input is a sum, a concatenation or the image, as MemNet's
    pre-activations); as many parameters as the BN it replaces."""

    def __init__(self, bn: nn.BatchNorm2d) -> None:
        super().__init__()
        scale, shift = bn_scale_shift(bn)
        self.weight = nn.Parameter(scale.detach().clone())
        self.bias = nn.Parameter(shift.detach().clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)


@torch.no_grad()
def fuse_conv_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """Conv followed by BN (eval statistics) -> one conv."""
    scale = bn_scale_shift(bn)[0]
    fused = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride,
                      conv.padding, conv.dilation, conv.groups, bias=True)
    fused.weight.copy_(conv.weight * scale.view(-1, 1, 1, 1))
    bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
    fused.bias.copy_((bias - bn.running_mean) * scale + bn.bias)
    return fused.to(conv.weight.device)


def maybe_weight_norm(module: nn.Conv2d, enabled: bool) -> nn.Module:
    """Weight normalisation (Salimans & Kingma), as MAFFSRN/WDSR wrap their convs."""
    return parametrizations.weight_norm(module) if enabled else module


@torch.no_grad()
def fold_weight_norm(model: nn.Module) -> int:
    """Replace every weight-normalised conv by a plain conv with the effective weight.

    The conv is rebuilt rather than un-parametrised in place: a deep copy of a parametrised
    module shares its dynamically created class with the original, and
    ``remove_parametrizations`` edits that class, which would break the original model.
    """
    n = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.Conv2d) and parametrize.is_parametrized(child, "weight"):
                plain = nn.Conv2d(child.in_channels, child.out_channels, child.kernel_size,
                                  child.stride, child.padding, child.dilation, child.groups,
                                  bias=child.bias is not None, padding_mode=child.padding_mode)
                weight = child.weight  # computed from the magnitude and direction
                plain = plain.to(weight.device)
                plain.weight.copy_(weight)
                if child.bias is not None:
                    plain.bias.copy_(child.bias)
                setattr(parent, name, plain)
                n += 1
    return n


# MATLAB rgb2ycbcr (ITU-R BT.601, studio swing), for RGB in [0, 1]: YCbCr = offset + M @ RGB / 255.
# The Y row is the one the Y-channel metrics use (trainers/metrics.py).
_YCBCR_MATRIX = torch.tensor([[65.481, 128.553, 24.966],
                              [-37.797, -74.203, 112.0],
                              [112.0, -93.786, -18.214]], dtype=torch.float64) / 255.0
_YCBCR_OFFSET = torch.tensor([16.0, 128.0, 128.0], dtype=torch.float64) / 255.0
_RGB_MATRIX = torch.linalg.inv(_YCBCR_MATRIX)  # MATLAB ycbcr2rgb


def _mix_channels(x: torch.Tensor, matrix: torch.Tensor, offset: torch.Tensor) -> torch.Tensor:
    # out[:, i] = offset[i] + sum_j matrix[i, j] * x[:, j], as elementwise ops on (B, H, W) planes:
    # no matmul for the MAC counter to count (it counts convolution arithmetic only).
    planes = [x[:, j] for j in range(len(matrix))]  # indexed, not unbind: torch.fx traces it
    rows = [sum(w * p for w, p in zip(row, planes, strict=True)) + off
            for row, off in zip(matrix.tolist(), offset.tolist(), strict=True)]
    return torch.stack(rows, 1)


def rgb_to_ycbcr(x: torch.Tensor, pixel_range: float = 1.0) -> torch.Tensor:
    """(B, 3, H, W) RGB in [0, pixel_range] -> YCbCr in the same units (MATLAB ``rgb2ycbcr``).

    Y lies in ``[16, 235] / 255 * pixel_range``; a grey pixel has Cb = Cr = 128 / 255 * pixel_range.
    """
    return _mix_channels(x, _YCBCR_MATRIX, _YCBCR_OFFSET * pixel_range)


def ycbcr_to_rgb(x: torch.Tensor, pixel_range: float = 1.0) -> torch.Tensor:
    """Inverse of :func:`rgb_to_ycbcr` (MATLAB ``ycbcr2rgb``); no clamping."""
    return _mix_channels(x, _RGB_MATRIX, -(_RGB_MATRIX @ _YCBCR_OFFSET) * pixel_range)
