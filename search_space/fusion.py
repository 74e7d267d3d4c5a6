"""How the body's block outputs are combined (the ``fusion`` field of ArchSpec).

A fusion module owns the chain: ``forward(x, blocks, kept=None)`` runs the blocks and returns the
fused features, so plain chains keep only one feature map alive (peak memory matters here). Given
a ``kept`` list, a fusion appends the intermediates it would otherwise free (every block output
but the one it returns, partial fusions), so that the caller holds them as long as an official
forward holds its Python locals: the peak memory of such a model depends on it.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Sequence

import torch
from torch import nn

from search_space.layers import channel_shuffle, conv1x1, make_act, maybe_weight_norm

__all__ = ["build_fusion", "fusion_options", "Sequential", "Aggregate", "SumFusion",
           "BinarizedFusion", "Cascade", "SpanFusion"]


class Sequential(nn.Module):
    """Plain chain: the last block's output."""

    def forward(self, x: torch.Tensor, blocks: nn.ModuleList,
                kept: list[torch.Tensor] | None = None) -> torch.Tensor:
        for i, block in enumerate(blocks):
            x = block(x)
            if kept is not None and i < len(blocks) - 1:
                kept.append(x)
        return x


class Aggregate(nn.Module):
    """Concat of all block outputs -> 1x1 conv (n*C -> C) [-> activation].

    ``aggregate`` (RFDN/IMDN) uses an activation (LeakyReLU 0.05); ``hff`` (hierarchical feature
    fusion as in MAFFSRN's ablation) is the linear variant. With ``refine = k`` (``hff`` only) the
    last k blocks do not join the concat: they run one after the other on the 1x1 conv's output,
    and the activation (if any) follows them (FMDN: ``gelu(B4(1x1(cat(B1, B2, B3))))``).
    """

    def __init__(self, channels: int, num_blocks: int, *, act: str | None,
                 weight_norm: bool = False, refine: int = 0) -> None:
        super().__init__()
        self.refine = refine
        self.conv = maybe_weight_norm(conv1x1(channels * (num_blocks - refine), channels),
                                      weight_norm)
        self.act = make_act(act) if act else nn.Identity()

    def forward(self, x: torch.Tensor, blocks: nn.ModuleList,
                kept: list[torch.Tensor] | None = None) -> torch.Tensor:
        outs = []
        fused = len(blocks) - self.refine
        for block in blocks[:fused]:
            x = block(x)
            outs.append(x)
        if kept is not None:
            kept.extend(outs)
        h = self.conv(torch.cat(outs, dim=1))
        for block in blocks[fused:]:
            h = block(h)
        return self.act(h)


class SumFusion(nn.Module):
    """Sum of all block outputs -> 1x1 conv (C -> C) -> activation (MSN: GELU).

    Cheaper than ``aggregate`` by (n - 1) C^2 weights; the block outputs stay live until the sum,
    as in MSN's forward, which adds them in one expression.
    """

    def __init__(self, channels: int, *, act: str, weight_norm: bool = False) -> None:
        super().__init__()
        self.conv = maybe_weight_norm(conv1x1(channels, channels), weight_norm)
        self.act = make_act(act)

    def forward(self, x: torch.Tensor, blocks: nn.ModuleList,
                kept: list[torch.Tensor] | None = None) -> torch.Tensor:
        outs = []
        for block in blocks:
            x = block(x)
            outs.append(x)
        if kept is not None:
            kept.extend(outs)
        total = outs[0]
        for out in outs[1:]:  # left to right, as the official expression
            total = total + out
        return self.act(self.conv(total))


class BinarizedFusion(nn.Module):
    """BFF / M-BFF (MAFFSRN): progressive pairwise fusion, 1x1(shuffle(cat(res, x_i))).

    With ``modified=True`` (M-BFF) the middle blocks also get a residual connection:
    x_0 = B_0(x), x_i = B_i(x_{i-1}) + x_{i-1} for 0 < i < n-1, x_{n-1} = B_{n-1}(x_{n-2}).
    """

    def __init__(self, channels: int, num_blocks: int, *, modified: bool,
                 weight_norm: bool = False) -> None:
        super().__init__()
        self.modified = modified
        self.reduce = nn.ModuleList(
            maybe_weight_norm(conv1x1(2 * channels, channels), weight_norm)
            for _ in range(num_blocks - 1)
        )

    def forward(self, x: torch.Tensor, blocks: nn.ModuleList,
                kept: list[torch.Tensor] | None = None) -> torch.Tensor:
        # As the official FFG: all blocks first (every x_i stays live), then the pairwise fusion.
        n = len(blocks)
        xs = []
        for i, block in enumerate(blocks):
            x = block(x) + x if self.modified and 0 < i < n - 1 else block(x)
            xs.append(x)
        res = xs[0]
        partial = []
        for reduce, xi in zip(self.reduce, xs[1:], strict=True):
            res = reduce(channel_shuffle(torch.cat([res, xi], 1), 2))
            partial.append(res)
        if kept is not None:
            kept.extend(xs + partial[:-1])
        return res


class Cascade(nn.Module):
    """Cascading connections (CARN): every block's output joins a growing concat, and a 1x1 conv
    + activation fuses it into the next block's input.

    ``c = x``; for block i: ``c = cat(c, B_i(o))``, ``o = act(1x1_i(c))`` ((i + 2) C -> C), with
    ``o = x`` at the start; the last ``o`` is the output. CARN uses it at the network level (over
    its cascading blocks) and inside each cascading block (over its residual blocks).
    """

    def __init__(self, channels: int, num_blocks: int, *, act: str = "relu",
                 weight_norm: bool = False) -> None:
        super().__init__()
        self.convs = nn.ModuleList(
            maybe_weight_norm(conv1x1((i + 2) * channels, channels), weight_norm)
            for i in range(num_blocks)
        )
        self.act = make_act(act)

    def forward(self, x: torch.Tensor, blocks: Iterable[nn.Module],
                kept: list[torch.Tensor] | None = None) -> torch.Tensor:
        # ``blocks`` may repeat one module (CARN-M's recursive residual-E block).
        cat = out = x
        for block, conv in zip(blocks, self.convs, strict=True):
            cat = torch.cat([cat, block(out)], dim=1)
            out = self.act(conv(cat))
            if kept is not None:
                kept.append(out)
        return out


class SpanFusion(nn.Module):
    """SPAN's fusion: ``1x1(cat(lead, last, first, feature))``.

    ``last`` and ``first`` are the last and first block outputs; ``lead`` are tensors the network
    puts in front (its head output, the tail's nearest-neighbour branch); ``feature`` is the
    first-conv output of the last block that hands one out (``forward_features``, SPAB). With
    ``features`` on, every such block's returned tensors stay live until the 1x1 conv, as in the
    official SPAN forward (this sets its peak memory). SPAN: ``cat(head, conv_2(b6), b1, b6.f1)``;
    SPAN-F (``features`` off, no head, nearest-neighbour tail): ``cat(near(x), b5, b1)``.

    Args:
        channels: Trunk width C.
        blocks: The body (whether any block hands out features).
        lead_channels: Total width of the ``lead`` tensors.
        out_channels: Width of the 1x1 conv's output (default 0: C; PDS 20, PKDSR 24).
        features: Use and keep the blocks' features (SPAN) or not (SPAN-F).
        weight_norm: Weight-normalise the 1x1 conv.
    """

    def __init__(self, channels: int, blocks: Sequence[nn.Module], *, lead_channels: int = 0,
                 out_channels: int = 0, features: bool = True,
                 weight_norm: bool = False) -> None:
        super().__init__()
        self.features = features and any(hasattr(b, "forward_features") for b in blocks)
        width = lead_channels + channels * min(len(blocks), 2) + (channels if self.features else 0)
        self.out_channels = out_channels or channels
        self.conv = maybe_weight_norm(conv1x1(width, self.out_channels), weight_norm)

    def forward(self, x: torch.Tensor, blocks: nn.ModuleList,
                kept: list[torch.Tensor] | None = None,
                lead: Sequence[torch.Tensor] = ()) -> torch.Tensor:
        outs, features = [], []
        for block in blocks:
            if self.features and hasattr(block, "forward_features"):
                x, feats = block.forward_features(x)
                features.append(feats)
            else:
                x = block(x)
            outs.append(x)
        parts = [*lead, outs[-1]]
        if len(outs) > 1:
            parts.append(outs[0])
        if self.features:
            parts.append(features[-1][0])
        if kept is not None:
            kept.extend(outs + [t for feats in features for t in feats])
        return self.conv(torch.cat(parts, 1))


def fusion_options(name: str) -> dict[str, inspect.Parameter]:
    """The options a spec may give fusion ``name`` (``{type: span, out_channels: 20}``,
    ``{type: aggregate, act: gelu}``)."""
    if name in ("aggregate", "sum"):
        default = "lrelu0.05" if name == "aggregate" else "gelu"
        return {"act": inspect.Parameter("act", inspect.Parameter.KEYWORD_ONLY,
                                         default=default, annotation=str)}
    if name == "hff":  # linear by default; ``refine``: see Aggregate
        return {"act": inspect.Parameter("act", inspect.Parameter.KEYWORD_ONLY, default=None,
                                         annotation=str),
                "refine": inspect.Parameter("refine", inspect.Parameter.KEYWORD_ONLY, default=0,
                                            annotation=int)}
    if name != "span":
        return {}
    params = inspect.signature(SpanFusion).parameters
    internal = ("lead_channels", "weight_norm")  # set by the builder
    return {k: p for k, p in params.items() if p.kind == p.KEYWORD_ONLY and k not in internal}


def build_fusion(name: str, channels: int, num_blocks: int, *, weight_norm: bool = False,
                 act: str | None = None, blocks: Sequence[nn.Module] = (),
                 lead_channels: int = 0, **options) -> nn.Module:
    """Fusion ``name``; ``blocks`` and ``lead_channels`` are used by ``span`` only, ``options``
    by ``span``, ``aggregate`` (its ``act``, LeakyReLU 0.05 by default as RFDN; GELU: LKFN),
    ``sum`` (its ``act``, GELU by default as MSN) and ``hff`` (``refine``: the last blocks run
    after the 1x1 conv; ``act``, none by default, after them: FMDN)."""
    if name == "span":
        return SpanFusion(channels, blocks, lead_channels=lead_channels, weight_norm=weight_norm,
                          **options)
    refine = options.get("refine", 0) if name == "hff" else 0
    if name == "sequential" or (num_blocks == 1 and not refine):
        return Sequential()
    if name == "aggregate":
        return Aggregate(channels, num_blocks, act=options.get("act") or act or "lrelu0.05",
                         weight_norm=weight_norm)
    if name == "sum":
        return SumFusion(channels, act=options.get("act") or act or "gelu",
                         weight_norm=weight_norm)
    if name == "hff":
        return Aggregate(channels, num_blocks, act=options.get("act") or act,
                         weight_norm=weight_norm, refine=refine)
    if name in ("bff", "mbff"):
        return BinarizedFusion(channels, num_blocks, modified=name == "mbff",
                               weight_norm=weight_norm)
    if name == "cascade":
        return Cascade(channels, num_blocks, act=act or "relu", weight_norm=weight_norm)
    raise ValueError(f"unknown fusion {name!r}")
