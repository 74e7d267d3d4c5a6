"""Reconstruction tails: (B, C, H, W) -> (B, out, sH, sW)."""

from __future__ import annotations

import functools

import torch
from torch import nn
from torch.nn.utils import parametrize

from search_space.layers import conv, conv3x3, maybe_weight_norm

__all__ = ["build_upsampler", "PixelShuffleTail", "MultiPixelShuffleTail", "StagedPixelShuffleTail",
           "DeconvTail", "CARNTail"]


class PixelShuffleTail(nn.Module):
    """3x3 conv C -> out*s^2, PixelShuffle(s) (ESPCN; FMEN, RFDN, RLFN, SRN, IMDN)."""

    def __init__(self, channels: int, scale: int, out_channels: int = 3, *,
                 weight_norm: bool = False) -> None:
        super().__init__()
        self.conv = maybe_weight_norm(conv3x3(channels, out_channels * scale**2), weight_norm)
        self.shuffle = nn.PixelShuffle(scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
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


class DeconvTail(nn.Module):
    """FSRCNN tail: one 9x9 transposed conv C -> out with stride s (padding 4, output padding
    s - 1, so H -> sH exactly)."""

    def __init__(self, channels: int, scale: int, out_channels: int = 3, *,
                 weight_norm: bool = False) -> None:
        super().__init__()
        deconv = nn.ConvTranspose2d(channels, out_channels, 9, stride=scale, padding=4,
                                    output_padding=scale - 1)
        self.deconv = maybe_weight_norm(deconv, weight_norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.deconv(x)

    @torch.no_grad()
    def reparameterize(self) -> None:
        """Fold weight norm (``fold_weight_norm`` handles Conv2d only); idempotent."""
        if not parametrize.is_parametrized(self.deconv, "weight"):
            return
        old = self.deconv
        # Rebuilt, not un-parametrised in place: see fold_weight_norm.
        plain = nn.ConvTranspose2d(old.in_channels, old.out_channels, old.kernel_size,
                                   old.stride, old.padding, old.output_padding).to(old.bias.device)
        plain.weight.copy_(old.weight)
        plain.bias.copy_(old.bias)
        self.deconv = plain


class CARNTail(nn.Module):
    """CARN's multi-scale tail: one branch per scale 2, 3, 4, each a chain of (3x3 conv C -> f^2 C
    with ``groups``, ReLU, PixelShuffle(f)) stages (two x2 stages at x4), then a 3x3 conv C -> out.

    The released CARN and CARN-M are multi-scale models (trained with all three branches on one
    body), and their published parameter counts include all three branches; ``scale`` selects the
    branch that runs. ``pixelshuffle_carn``: groups 1 (CARN); ``pixelshuffle_carn_m``: groups 4.
    """

    SCALES = (2, 3, 4)

    def __init__(self, channels: int, scale: int, out_channels: int = 3, *,
                 weight_norm: bool = False, groups: int = 1) -> None:
        super().__init__()
        self.scale = scale
        self.branches = nn.ModuleDict(
            {f"x{s}": self._branch(channels, s, groups, weight_norm) for s in self.SCALES}
        )
        self.conv = maybe_weight_norm(conv3x3(channels, out_channels), weight_norm)

    @staticmethod
    def _branch(channels: int, scale: int, groups: int, weight_norm: bool) -> nn.Sequential:
        factors = [3] if scale == 3 else [2] * (scale.bit_length() - 1)
        layers: list[nn.Module] = []
        for f in factors:
            layers += [maybe_weight_norm(conv(channels, channels * f * f, 3, groups=groups),
                                         weight_norm),
                       nn.ReLU(inplace=True), nn.PixelShuffle(f)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.branches[f"x{self.scale}"](x))


_TAILS = {
    "pixelshuffle": PixelShuffleTail,
    "pixelshuffle_multi": MultiPixelShuffleTail,
    "pixelshuffle_staged": StagedPixelShuffleTail,
    "deconv": DeconvTail,
    "pixelshuffle_carn": CARNTail,
    "pixelshuffle_carn_m": functools.partial(CARNTail, groups=4),
}


def build_upsampler(name: str, channels: int, scale: int, out_channels: int = 3, *,
                    weight_norm: bool = False) -> nn.Module:
    return _TAILS[name](channels, scale, out_channels, weight_norm=weight_norm)
