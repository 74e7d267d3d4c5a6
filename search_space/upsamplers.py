"""Reconstruction tails: (B, C, H, W) -> (B, out, sH, sW).

A spec names a tail (``upsampler: pixelshuffle``) or gives it options (``upsampler: {type:
pixelshuffle, near: true, conv: conv3xc}``); the options are the tail class's keyword-only
arguments (:func:`upsampler_options`), except ``weight_norm``, which is spec-wide.
"""

from __future__ import annotations

import functools
import inspect

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils import parametrize

from search_space.layers import conv, conv3x3, make_act, maybe_weight_norm
from search_space.registry import build_conv

__all__ = ["build_upsampler", "upsampler_options", "check_upsampler", "upsamples_input",
           "PixelShuffleTail", "MultiPixelShuffleTail", "StagedPixelShuffleTail",
           "NearestNeighbourBranch", "DeconvTail", "CARNTail", "ERUMTail", "PreUpsampledTail"]


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


class DeconvTail(nn.Module):
    """FSRCNN tail: one k x k transposed conv C -> out with stride s (padding (k - 1) / 2, output
    padding s - 1, so H -> sH exactly). FSRCNN: k = 9; IDN: 17.

    Args:
        kernel_size: k, odd (default 9).
    """

    def __init__(self, channels: int, scale: int, out_channels: int = 3, *,
                 weight_norm: bool = False, kernel_size: int = 9) -> None:
        super().__init__()
        deconv = nn.ConvTranspose2d(channels, out_channels, kernel_size, stride=scale,
                                    padding=kernel_size // 2, output_padding=scale - 1)
        self.deconv = maybe_weight_norm(deconv, weight_norm)

    @staticmethod
    def check_options(*, kernel_size: int = 9) -> list[str]:
        if kernel_size >= 1 and kernel_size % 2:
            return []
        return [f"kernel_size: expected an odd kernel size >= 1, got {kernel_size}"]

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


class PreUpsampledTail(nn.Module):
    """The reconstruction of a pre-upsampling network (SRCNN, VDSR): the network runs at the
    output size on the bicubic-upsampled input (:attr:`upsamples_input`), so this tail only maps
    C -> out: [act, conv C -> mid, act] when ``mid_channels``, then a k x k conv.

    Args:
        channels: Input width C.
        scale: Upscaling factor (applied to the input by the network, not here).
        out_channels: Image channels.
        weight_norm: Weight-normalise the convs.
        kernel_size: Of the last conv (SRCNN: 5).
        mid_channels: Width of a conv before it (SRCNN: 32; default 0: none).
        mid_kernel_size: Kernel of that conv (SRCNN 9-5-5: 5; default 1).
        act: The activation around that conv (default relu, as SRCNN).
    """

    upsamples_input = True

    def __init__(self, channels: int, scale: int, out_channels: int = 3, *,
                 weight_norm: bool = False, kernel_size: int = 3, mid_channels: int = 0,
                 mid_kernel_size: int = 1, act: str = "relu") -> None:
        super().__init__()
        layers: list[nn.Module] = []
        if mid_channels:
            mid = conv(channels, mid_channels, mid_kernel_size)
            layers += [make_act(act), maybe_weight_norm(mid, weight_norm), make_act(act)]
            channels = mid_channels
        layers.append(maybe_weight_norm(conv(channels, out_channels, kernel_size), weight_norm))
        self.body = nn.Sequential(*layers)

    @staticmethod
    def check_options(*, kernel_size: int = 3, mid_channels: int = 0, **options: object
                      ) -> list[str]:
        """Cross-field rules of the options: odd kernels (the convs pad 'same'), and the mid
        conv's options only with a mid conv."""
        kernels = {"kernel_size": kernel_size, "mid_kernel_size": options.get("mid_kernel_size", 1)}
        problems = [f"{name}: expected an odd kernel size, got {k}"
                    for name, k in kernels.items() if k % 2 == 0]
        if not mid_channels:
            problems += [f"{name}: applies to the mid conv only; set mid_channels too"
                         for name in ("mid_kernel_size", "act") if name in options]
        return problems

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


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


class ERUM(nn.Module):
    """One enhanced recursive upsampling module: ``h = conv_b(relu(conv_a(h)))`` applied ``steps``
    times with shared weights, each step's output kept (``steps`` maps of C channels)."""

    def __init__(self, channels: int, steps: int, conv: str | dict | None = None) -> None:
        super().__init__()
        self.steps = steps
        self.conv_a = build_conv(conv, channels, channels)
        self.act = nn.ReLU(inplace=True)
        self.conv_b = build_conv(conv, channels, channels)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outs = []
        for _ in range(self.steps):
            x = self.conv_b(self.act(self.conv_a(x)))
            outs.append(x)
        return outs


class ERUMTail(nn.Module):
    """ERUM tail of the ICLR'19 efficiency study ("-e" models): per upscaling stage of factor f
    (two x2 stages at x4, one x3 stage at x3), f ERUMs recursing f times on the same input; their
    f^2 outputs are concatenated and PixelShuffled by f; then a 3x3 conv C -> out.

    ``erum``: plain 3x3 convs (``bl-e``, the ``-e[rg]`` models); ``erum_unit``: its C -> C convs
    are the spec's conv unit (the study's ``[rg+u]``: the unit also replaces the upsampling convs).

    Pinned by the study's counts, not by code (none was released): bl-e's parameters
    (1006K / 1080K / 1154K at x2 / x3 / x4 = 4 / 6 / 8 C -> C convs) and Mult-Adds (each conv
    applied f times). The ReLU between an ERUM's two convs is an assumption.
    """

    def __init__(self, channels: int, scale: int, out_channels: int = 3, *,
                 weight_norm: bool = False, conv: str | dict | None = None) -> None:
        super().__init__()
        self.factors = [3] if scale == 3 else [2] * (scale.bit_length() - 1)
        self.stages = nn.ModuleList(
            nn.ModuleList(ERUM(channels, f, conv) for _ in range(f)) for f in self.factors
        )
        self.conv = maybe_weight_norm(conv3x3(channels, out_channels), weight_norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # (B, C, H, W) -> f^2 maps (B, C, H, W) -> (B, f^2 C, H, W) -> (B, C, fH, fW), per stage
        for f, erums in zip(self.factors, self.stages, strict=True):
            x = F.pixel_shuffle(torch.cat([y for e in erums for y in e(x)], 1), f)
        return self.conv(x)


_TAILS = {
    "pixelshuffle": PixelShuffleTail,
    "pixelshuffle_multi": MultiPixelShuffleTail,
    "pixelshuffle_staged": StagedPixelShuffleTail,
    "deconv": DeconvTail,
    "pixelshuffle_carn": CARNTail,
    "pixelshuffle_carn_m": functools.partial(CARNTail, groups=4),
    "erum": ERUMTail,
    "erum_unit": ERUMTail,
    "pre_bicubic": PreUpsampledTail,
}
# Tails whose C -> C convs are the spec's conv unit; every other tail has plain convs.
_UNIT_TAILS = ("erum_unit",)


def upsampler_options(name: str) -> dict[str, inspect.Parameter]:
    """The options a spec may give tail ``name`` (keyword-only arguments but ``weight_norm``)."""
    params = inspect.signature(_TAILS[name]).parameters
    return {k: p for k, p in params.items() if p.kind == p.KEYWORD_ONLY and k != "weight_norm"}


def upsamples_input(name: str) -> bool:
    """Whether tail ``name`` makes the whole network run on the upsampled input (SRCNN)."""
    return getattr(_TAILS[name], "upsamples_input", False)


def check_upsampler(name: str, options: dict) -> list[str]:
    """Problems of well-typed options, from the tail's ``check_options`` where it has one."""
    check = getattr(_TAILS[name], "check_options", None)
    return check(**options) if check is not None else []


def build_upsampler(name: str, channels: int, scale: int, out_channels: int = 3, *,
                    weight_norm: bool = False, unit: str | dict | None = None,
                    **options) -> nn.Module:
    """Build tail ``name`` with its spec ``options``; ``unit`` (the spec's conv unit) is used by
    ``_UNIT_TAILS`` only."""
    if name in _UNIT_TAILS:
        options.setdefault("conv", unit)
    return _TAILS[name](channels, scale, out_channels, weight_norm=weight_norm, **options)
