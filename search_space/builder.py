"""Spec -> PyTorch model. ``build_net`` is the single entry point (``factory.build_model`` also
takes an anchor name)."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from search_space import blocks as _blocks  # noqa: F401  (registers the block catalogue)
from search_space.fusion import SpanFusion, build_fusion
from search_space.layers import conv, conv3x3, maybe_weight_norm, rgb_to_ycbcr, ycbcr_to_rgb
from search_space.registry import build_conv, get_block
from search_space.reparam import reparameterize_model
from search_space.spec import ArchSpec, StageSpec, split_named
from search_space.upsamplers import build_upsampler, upsamples_input

__all__ = ["SRNet", "ProjectedStage", "YOnlySRNet", "build_net", "build_block", "block_kwargs"]

# DIV2K RGB mean, as EDSR's MeanShift uses it.
DIV2K_RGB_MEAN = (0.4488, 0.4371, 0.4040)


def span_input(x: torch.Tensor, input_range: float) -> torch.Tensor:
    """SPAN's input normalisation ``(x / input_range - DIV2K mean) * 255``, mean not added back.

    Per channel with Python scalars: the official mean is a plain attribute, in neither the
    state dict nor the parameter bytes, and a buffer here would add to both.
    """
    r = float(input_range)
    shifted = [x[:, c : c + 1] - m * r for c, m in enumerate(DIV2K_RGB_MEAN)]
    return torch.cat(shifted, 1) * (255.0 / r)


class SRNet(nn.Module):
    """head -> fusion(body) -> [last conv] -> [+ head] -> upsampler [+ bicubic(input)].

    Inputs are expected in ``[0, spec.input_range]``; outputs are in the same range. With
    ``upsampler: pre_bicubic`` all of it runs on the bicubic-upsampled input (SRCNN). With
    ``head: none`` the body starts from the image; a tail with a nearest-neighbour branch
    (``upsampler: {type: pixelshuffle, near: true}``) has it run first, on the input.
    """

    def __init__(self, spec: ArchSpec) -> None:
        super().__init__()
        self.spec = spec
        self.scale = spec.scale
        self.input_range = spec.input_range
        c, wn = spec.channels, spec.weight_norm
        image = 1 if spec.y_only else spec.in_channels  # a y_only network sees the luma only
        if spec.head in (None, "plain"):
            self.head = maybe_weight_norm(conv(image, c, spec.head_kernel_size), wn)
        else:
            self.head = None if spec.head == "none" else build_conv(spec.head, image, c)
        self.body = nn.ModuleList()
        for stage in spec.body:
            if stage.channels is not None:
                self.body.append(ProjectedStage(c, stage, spec))
                continue
            for _ in range(stage.repeat):
                # Without a head the first block maps the image to C (SPAN-F, SPANV2).
                stem = self.head is None and not self.body
                self.body.append(build_block(stage, c, spec, **(
                    {"in_channels": image} if stem else {})))
        fusion, fusion_options = split_named(spec.fusion)
        tail, tail_options = split_named(spec.upsampler)
        near = image * spec.scale**2 if tail_options.get("near") else 0
        lead = near + (c if self.head is not None else 0)  # what SPAN's fusion concatenates first
        self.fusion = build_fusion(fusion, c, len(self.body), weight_norm=wn, blocks=self.body,
                                   lead_channels=lead, **fusion_options)
        width = getattr(self.fusion, "out_channels", c)
        if not spec.last_conv:
            self.last_conv = None
        elif spec.last_conv_unit is None:
            self.last_conv = conv3x3(c, c)
        else:
            self.last_conv = build_conv(spec.last_conv_unit, c, c)
        # SPAN's fusion takes the nearest-neighbour branch into its concat; else the tail does.
        self.near_to_tail = bool(near) and not isinstance(self.fusion, SpanFusion)
        self.upsamples_input = upsamples_input(tail)
        self.tail = build_upsampler(tail, width + near * self.near_to_tail, spec.scale, image,
                                    weight_norm=wn, unit=spec.conv, **tail_options)
        if spec.mean_shift:
            mean = torch.tensor(DIV2K_RGB_MEAN).view(1, 3, 1, 1) * spec.input_range
            self.register_buffer("rgb_mean", mean)
        else:
            self.rgb_mean = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # (B, 3, H, W) -> (B, 3, sH, sW)
        inp = x
        if self.upsamples_input:  # a pre-upsampling network (SRCNN)
            x = F.interpolate(x, scale_factor=self.scale, mode="bicubic", align_corners=False)
        if self.rgb_mean is not None:
            x = x - self.rgb_mean
        if self.spec.input_norm == "span":
            x = span_input(x, self.input_range)
        # The official SPAN-F/SPANV2 forwards compute the branch first: live through the body.
        near = self.tail.near(x) if getattr(self.tail, "near", None) is not None else None
        feat = self.head(x) if self.head is not None else None
        # Block outputs held to the end (keep_block_outputs), as official Python locals are.
        kept: list[torch.Tensor] | None = [] if self.spec.keep_block_outputs else None
        body_in = x if feat is None else feat
        if isinstance(self.fusion, SpanFusion):
            lead = [t for t in (near, feat) if t is not None]
            h = self.fusion(body_in, self.body, kept, lead=lead)
        else:
            h = self.fusion(body_in, self.body, kept)
        if self.last_conv is not None:
            h = self.last_conv(h)
        if self.spec.global_residual:
            h = h + feat
        out = self.tail(h, near) if self.near_to_tail else self.tail(h)
        if self.rgb_mean is not None:
            out = out + self.rgb_mean
        if self.spec.input_skip:
            out = out + F.interpolate(inp, scale_factor=self.scale,
                                      mode=self.spec.input_skip_mode, align_corners=False)
        return out


class ProjectedStage(nn.Sequential):
    """A stage of its own width W: 1x1 conv C -> W, the stage's blocks at W, 1x1 conv W -> C.

    One block to the fusion: the ``span`` fusion takes no features from inside it, and with
    ``keep_block_outputs`` only its output is held.
    """

    def __init__(self, channels: int, stage: StageSpec, spec: ArchSpec) -> None:
        width, wn = stage.channels, spec.weight_norm
        blocks = [build_block(stage, width, spec) for _ in range(stage.repeat)]
        super().__init__(maybe_weight_norm(conv(channels, width, 1), wn), *blocks,
                         maybe_weight_norm(conv(width, channels, 1), wn))


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


def build_block(stage: StageSpec, channels: int, spec: ArchSpec, **overrides) -> nn.Module:
    return get_block(stage.block).cls(channels, **{**block_kwargs(stage, spec), **overrides})


def build_net(spec: ArchSpec, *, deploy: bool = False) -> SRNet:
    """Build the training form of ``spec`` (``deploy``: the re-parameterised inference form, in
    eval mode). ``search_space.factory.build_model`` also takes an anchor's name."""
    model = YOnlySRNet(spec) if spec.y_only else SRNet(spec)
    return reparameterize_model(model.eval()) if deploy else model
