"""Reconstruction tails: (B, C, H, W) -> (B, out, sH, sW).

A spec names a tail (``upsampler: pixelshuffle``) or gives it options (``upsampler: {type:
pixelshuffle, near: true, conv: conv3xc}``); the options are the tail class's keyword-only
arguments (:func:`upsampler_options`), except ``weight_norm``, which is spec-wide.
"""

from __future__ import annotations

import inspect

import torch
from torch import nn

from search_space.layers import conv, conv3x3, maybe_weight_norm
from search_space.registry import build_conv

__all__ = ["build_upsampler", "upsampler_options", "PixelShuffleTail", "MultiPixelShuffleTail",
           "StagedPixelShuffleTail", "NearestNeighbourBranch"]


class NearestNeighbourBranch(nn.Conv2d):
    """Learnable nearest-neighbour upsampling branch (SPAN-F's ``conv_near``): a grouped 3x3 conv
    c -> c*s^2 (groups c, no bias) on the input, started at the kernel that copies the centre
    pixel, so that ``PixelShuffle(s)`` of its output is the nearest-neighbour upsampled input."""

    def __init__(self, channels: int, scale: int) -> None:
        super().__init__(channels, channels * scale**2, 3, padding=1, groups=channels, bias=False)
        with torch.no_grad():
            self.weight.zero_()
            self.weight[:, 0, 1, 1] = 1.0


class PixelShuffleTail(nn.Module):
    """3x3 conv C -> out*s^2, PixelShuffle(s) (ESPCN; FMEN, RFDN, RLFN, SRN, IMDN, SPAN).

    With ``near`` (SPAN-F, SPANV2) the tail also owns a :class:`NearestNeighbourBranch` on the
    network input. The network runs it before the body, as the official forwards do (so it is
    live through the body), and its output joins the features in front: inside the ``span``
    fusion's concat when the spec has that fusion (SPAN-F: ``1x1(cat(near, b5, b1))``), else
    concatenated with the tail input here (SPANV2: ``conv(cat(near, b5))``).

    Args:
        channels: Input width (the builder adds the branch's width when it is concatenated here).
        scale: Upscaling factor s.
        out_channels: Image channels.
        weight_norm: Weight-normalise the conv (plain conv only).
        conv: Conv unit of the conv, a name or ``{type: name, ...}`` (default plain 3x3;
            SPAN-F trains with ``conv3xc``, SPANV2 uses ``separable``).
        near: Add the nearest-neighbour branch (default False).
    """

    def __init__(self, channels: int, scale: int, out_channels: int = 3, *,
                 weight_norm: bool = False, conv: str | dict | None = None,
                 near: bool = False) -> None:
        super().__init__()
        out = out_channels * scale**2
        if conv is None:
            self.conv = maybe_weight_norm(conv3x3(channels, out), weight_norm)
        else:
            self.conv = build_conv(conv, channels, out)
        self.shuffle = nn.PixelShuffle(scale)
        self.near = NearestNeighbourBranch(out_channels, scale) if near else None

    def forward(self, x: torch.Tensor, near: torch.Tensor | None = None) -> torch.Tensor:
        if near is not None:  # the branch's output when no fusion consumed it
            x = torch.cat([near, x], 1)
        return self.shuffle(self.conv(x))


class MultiPixelShuffleTail(nn.Module):
    """MAFFSRN tail: a 3x3 and a 5x5 branch, each PixelShuffled and scaled by a learnable scalar."""

    def __init__(self, channels: int, scale: int, out_channels: int = 3, *,
                 weight_norm: bool = False) -> None:
        super().__init__()
        out = out_channels * scale**2
        self.branch3 = maybe_weight_norm(conv(channels, out, 3), weight_norm)
        self.branch5 = maybe_weight_norm(conv(channels, out, 5), weight_norm)
        self.shuffle = nn.PixelShuffle(scale)
        self.scale3 = nn.Parameter(torch.tensor([0.5]))
        self.scale5 = nn.Parameter(torch.tensor([0.5]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.scale3 * self.shuffle(self.branch3(x))
                + self.scale5 * self.shuffle(self.branch5(x)))


class StagedPixelShuffleTail(nn.Module):
    """EDSR/RCAN tail: x2 stages (conv C->4C + PixelShuffle(2)) for 2^n, one x3 stage for 3,
    then a 3x3 conv C -> out."""

    def __init__(self, channels: int, scale: int, out_channels: int = 3, *,
                 weight_norm: bool = False) -> None:
        super().__init__()
        factors = [3] if scale == 3 else [2] * (scale.bit_length() - 1)
        layers: list[nn.Module] = []
        for f in factors:
            layers += [maybe_weight_norm(conv3x3(channels, channels * f * f), weight_norm),
                       nn.PixelShuffle(f)]
        self.up = nn.Sequential(*layers)
        self.conv = maybe_weight_norm(conv3x3(channels, out_channels), weight_norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.up(x))


_TAILS = {
    "pixelshuffle": PixelShuffleTail,
    "pixelshuffle_multi": MultiPixelShuffleTail,
    "pixelshuffle_staged": StagedPixelShuffleTail,
}


def upsampler_options(name: str) -> dict[str, inspect.Parameter]:
    """The options a spec may give tail ``name`` (keyword-only arguments but ``weight_norm``)."""
    params = inspect.signature(_TAILS[name]).parameters
    return {k: p for k, p in params.items() if p.kind == p.KEYWORD_ONLY and k != "weight_norm"}


def build_upsampler(name: str, channels: int, scale: int, out_channels: int = 3, *,
                    weight_norm: bool = False, **options) -> nn.Module:
    return _TAILS[name](channels, scale, out_channels, weight_norm=weight_norm, **options)
