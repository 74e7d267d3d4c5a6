"""Spec -> PyTorch model. ``build_model`` is the single entry point."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from search_space import blocks as _blocks  # noqa: F401  (registers the block catalogue)
from search_space.fusion import build_fusion
from search_space.layers import conv, conv3x3, maybe_weight_norm, rgb_to_ycbcr, ycbcr_to_rgb
from search_space.registry import get_block
from search_space.reparam import reparameterize_model
from search_space.spec import ArchSpec, StageSpec
from search_space.upsamplers import build_upsampler

__all__ = ["SRNet", "YOnlySRNet", "build_model", "build_block", "block_kwargs"]

# DIV2K RGB mean, as EDSR's MeanShift uses it.
DIV2K_RGB_MEAN = (0.4488, 0.4371, 0.4040)


class SRNet(nn.Module):
    """head -> fusion(body) -> [last conv] -> [+ head] -> upsampler [+ bicubic(input)].

    Inputs are expected in ``[0, spec.input_range]``; outputs are in the same range.
    """

    def __init__(self, spec: ArchSpec) -> None:
        super().__init__()
        self.spec = spec
        self.scale = spec.scale
        self.input_range = spec.input_range
        c, wn = spec.channels, spec.weight_norm
        image = 1 if spec.y_only else spec.in_channels  # a y_only network sees the luma only
        self.head = maybe_weight_norm(conv(image, c, spec.head_kernel_size), wn)
        self.body = nn.ModuleList(
            build_block(stage, c, spec) for stage in spec.body for _ in range(stage.repeat)
        )
        self.fusion = build_fusion(spec.fusion, c, len(self.body), weight_norm=wn)
        self.last_conv = conv3x3(c, c) if spec.last_conv else None
        self.tail = build_upsampler(spec.upsampler, c, spec.scale, image, weight_norm=wn,
                                    conv=spec.conv)
        if spec.mean_shift:
            mean = torch.tensor(DIV2K_RGB_MEAN).view(1, 3, 1, 1) * spec.input_range
            self.register_buffer("rgb_mean", mean)
        else:
            self.rgb_mean = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # (B, 3, H, W) -> (B, 3, sH, sW)
        inp = x
        if self.rgb_mean is not None:
            x = x - self.rgb_mean
        feat = self.head(x)
        h = self.fusion(feat, self.body)
        if self.last_conv is not None:
            h = self.last_conv(h)
        if self.spec.global_residual:
            h = h + feat
        out = self.tail(h)
        if self.rgb_mean is not None:
            out = out + self.rgb_mean
        if self.spec.input_skip:
            out = out + F.interpolate(inp, scale_factor=self.scale, mode="bicubic",
                                      align_corners=False)
        return out


class YOnlySRNet(SRNet):
    """An SRNet on the luma: RGB -> YCbCr (BT.601, as the Y-channel metrics), the network on Y,
    bicubic Cb/Cr, back to RGB. FSRCNN-era networks are Y networks: their published parameter
    counts are for one channel in and out, and the rest of the pipeline still sees RGB.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # (B, 3, H, W) RGB -> (B, 3, sH, sW) RGB; the network maps (B, 1, H, W) -> (B, 1, sH, sW)
        ycbcr = rgb_to_ycbcr(x, self.input_range)
        luma = super().forward(ycbcr[:, :1])
        chroma = F.interpolate(ycbcr[:, 1:], scale_factor=self.scale, mode="bicubic",
                               align_corners=False)
        return ycbcr_to_rgb(torch.cat([luma, chroma], 1), self.input_range)


def block_kwargs(stage: StageSpec, spec: ArchSpec) -> dict:
    """Stage args plus the spec's global ``activation``/``conv`` where the block takes them."""
    entry = get_block(stage.block)
    options = entry.options()
    kwargs = dict(stage.args)
    if spec.activation is not None and "act" in options and "act" not in kwargs:
        kwargs["act"] = spec.activation
    if spec.conv is not None and "conv" in options and "conv" not in kwargs:
        kwargs["conv"] = spec.conv
    return kwargs


def build_block(stage: StageSpec, channels: int, spec: ArchSpec) -> nn.Module:
    return get_block(stage.block).cls(channels, **block_kwargs(stage, spec))


def build_model(spec: ArchSpec | str, *, deploy: bool = False) -> SRNet:
    """Build the training form of ``spec`` (an ArchSpec or an anchor name).

    Args:
        spec: The architecture, or the name of a registered anchor.
        deploy: Return the re-parameterised inference form (eval mode) instead.
    """
    if isinstance(spec, str):
        from search_space.anchors import get_anchor

        spec = get_anchor(spec).spec
    model = YOnlySRNet(spec) if spec.y_only else SRNet(spec)
    return reparameterize_model(model.eval()) if deploy else model
