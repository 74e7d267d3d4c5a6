"""SPAN family: Conv3XC merge, SPAB/SPABV2/REECB definitions, the span fusion and nearest-neighbour
tail, parameter counts and official-weight parity of the eight anchors, their peak memory against
the official forwards' tensor lifetimes, MACs at odd sizes, spec errors."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.flop_counter import FlopCounterMode

from search_space.anchors import WEIGHTS_DIR, get_anchor, load
from search_space.anchors.importers import get_importer
from search_space.blocks.disp import REECB
from search_space.blocks.span import SPAB, Conv3XC
from search_space.blocks.spanv2 import SPABV2, SeparableConv
from search_space.builder import DIV2K_RGB_MEAN, span_input
from search_space.errors import InputError, SpecError
from search_space.factory import build_model
from search_space.reparam import reparameterize_model
from search_space.spec import ArchSpec
from search_space.upsamplers import NearestNeighbourBranch
from tests.conftest import FIXTURES
from trainers.memory import state_bytes, track_peak_live_bytes

PARITY = FIXTURES / "parity"
# anchor -> parity fixture name (the reference's model names)
WEIGHTED = {"span_ch28": "span_ch28", "dscf": "dscf", "spanf": "spanf", "pds": "pds",
            "pkdsr": "pkdsr", "spanv2_c2": "spanv2_c2", "disp": "disp"}


def _count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).abs().max() / b.abs().max()).item()


def _big_biases_(module: nn.Module) -> nn.Module:
    """Large biases: a wrong border value would show far above float32 rounding."""
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.Conv2d) and m.bias is not None:
                m.bias.copy_(torch.randn(m.bias.shape, generator=g))
    return module


def _macs(module: nn.Module, x: torch.Tensor) -> int:
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        module(x)
    return counter.get_total_flops() // 2


# ----------------------------------------------------------------------------------- Conv3XC
@pytest.mark.parametrize("in_channels, out_channels, gain", [(8, 8, 2), (3, 12, 2), (6, 10, 1)])
def test_conv3xc_is_the_official_branch_and_merges_exactly_at_the_border(in_channels,
                                                                          out_channels, gain):
    unit = _big_biases_(Conv3XC(in_channels, out_channels, gain=gain)).eval()
    x = torch.randn(2, in_channels, 5, 4)  # all but two pixels touch the border
    with torch.no_grad():
        ref = unit(x)
        # The official training forward: pad the input, then 1x1 -> 3x3 (valid) -> 1x1, + 1x1 skip.
        official = unit.reduce_conv(unit.fea_conv(unit.expand_conv(F.pad(x, (1, 1, 1, 1)))))
        official = official + unit.skip_conv(x)
        # Padding after the first 1x1 (with zeros) would be wrong on the border.
        late_pad = unit.reduce_conv(unit.fea_conv(F.pad(unit.expand_conv(x), (1, 1, 1, 1))))
        late_pad = late_pad + unit.skip_conv(x)
        deploy = reparameterize_model(unit)
        out = deploy(x)
    assert torch.equal(ref, official)
    assert _relative_error(out, ref) <= 1e-5
    assert _relative_error(late_pad, ref) > 1e-2
    assert [name for name, _ in deploy.named_children()] == ["rep_conv"]
    assert deploy.rep_conv.padding == (1, 1) and deploy.rep_conv.kernel_size == (3, 3)


def test_conv3xc_parameter_count_by_hand():
    c_in, c_out, g = 28, 28, 2
    expected = (c_in * c_out + c_out) + (c_in * g * c_in + g * c_in) \
        + (g * c_in * g * c_out * 9 + g * c_out) + (g * c_out * c_out + c_out)
    assert expected == 32312  # one SPAN ch28 Conv3XC in training form
    unit = Conv3XC(c_in, c_out, gain=g)
    assert _count(unit) == expected
    assert _count(reparameterize_model(unit)) == c_in * c_out * 9 + c_out


# ----------------------------------------------------------------------------------- blocks
def test_spab_returns_the_official_tensors():
    block = SPAB(8).eval()
    x = torch.randn(1, 8, 6, 7)
    with torch.no_grad():
        y, (f1, att) = block.forward_features(x)
        f1_ref = F.silu(block.conv1(x))
        f3 = block.conv3(F.silu(block.conv2(f1_ref)))
    assert torch.allclose(f1, f1_ref, atol=1e-6)  # the first conv's output after the SiLU
    assert torch.allclose(att, torch.sigmoid(f3) - 0.5, atol=1e-6)
    assert torch.allclose(y, (f3 + x) * att, atol=1e-6)
    assert torch.equal(block(x), y)


def test_spab_and_spabv2_stems_have_no_attention():
    x = torch.randn(1, 3, 6, 5)
    stem = SPAB(8, in_channels=3).eval()
    with torch.no_grad():
        y, feats = stem.forward_features(x)
        f3 = stem.conv3(F.silu(stem.conv2(F.silu(stem.conv1(x)))))
    assert len(feats) == 1 and torch.allclose(y, f3, atol=1e-6)
    stem2 = SPABV2(8, in_channels=3).eval()
    assert stem2.guidance is None and stem2(x).min() >= 0  # ReLU after its third conv too


def test_spabv2_gate_and_bias_free_convs():
    block = SPABV2(6).eval()
    assert all(c.bias is None for c in (block.conv1, block.conv2, block.conv3))
    assert block.guidance.bias is not None
    x = torch.randn(1, 6, 5, 5)
    with torch.no_grad():
        f3 = block.conv3(F.relu(block.conv2(F.relu(block.conv1(x)))))
        assert torch.allclose(block(x), (x + f3) * block.guidance(f3), atol=1e-6)


def test_reecb_is_four_activated_convs_plus_the_input():
    block = REECB(6).eval()
    x = torch.randn(1, 6, 5, 5)
    h = x
    with torch.no_grad():
        for conv in block.convs:
            h = F.silu(conv(h))
        assert torch.allclose(block(x), h + x, atol=1e-6)
    assert len(block.convs) == 4 and _count(block) == 4 * (6 * 6 * 9 + 6)


def test_nearest_neighbour_branch_starts_as_nearest_upsampling():
    x = torch.rand(1, 3, 5, 7)
    branch = NearestNeighbourBranch(3, 4)
    with torch.no_grad():
        up = F.pixel_shuffle(branch(x), 4)
    assert torch.equal(up, F.interpolate(x, scale_factor=4, mode="nearest"))
    assert branch.bias is None and branch.groups == 3 and _count(branch) == 48 * 9


def test_span_input_is_the_official_normalisation_bit_exactly():
    x = torch.rand(1, 3, 9, 11)
    official = (x - torch.tensor(DIV2K_RGB_MEAN).view(1, 3, 1, 1)) * 255.0
    assert torch.equal(span_input(x, 1.0), official)


@pytest.mark.parametrize("height, width", [(13, 7), (9, 21)])
def test_macs_at_odd_sizes(height, width):
    """FlopCounterMode MACs of the new blocks/units equal the hand count at odd sizes."""
    hw, c = height * width, 8
    padded = (height + 2) * (width + 2)  # Conv3XC's first 1x1 runs on the zero-padded input
    x = torch.rand(1, c, height, width)
    unit = Conv3XC(c, c, gain=2)
    assert _macs(unit.train(), x) == c * c * hw + 2 * c * c * padded + 2 * c * 2 * c * 9 * hw \
        + 2 * c * c * hw
    assert _macs(reparameterize_model(unit), x) == 9 * c * c * hw
    assert _macs(reparameterize_model(SPAB(c, conv="conv3xc")), x) == 3 * 9 * c * c * hw
    assert _macs(SPABV2(c), x) == 3 * 9 * c * c * hw + c * c * hw
    assert _macs(REECB(c), x) == 4 * 9 * c * c * hw
    assert _macs(SeparableConv(c, 48), x) == 9 * c * hw + c * 48 * hw
    assert _macs(NearestNeighbourBranch(3, 4), torch.rand(1, 3, height, width)) == 48 * 9 * hw


# ----------------------------------------------------------------------------------- anchors
@pytest.mark.parametrize("name, deploy, train", [
    ("span_ch48", 426_288, 1_840_488), ("span_ch28", 150_688, 634_048), ("dscf", 130_828, 547_944),
    ("spanf", 148_288, 664_008), ("pds", 141_748, 640_068), ("pkdsr", 143_928, 647_984),
    ("spanv2_c2", 139_104, 139_104), ("disp", 163_792, 163_792)])
def test_parameter_counts(name, deploy, train):
    # Deploy counts: the official files (sum over all parameters); training forms: span_ch48 and
    # span_ch28 = the official hongyuanyu Conv3XC class in train() mode (the others unofficial).
    assert _count(build_model(name, deploy=True)) == deploy
    assert _count(build_model(name)) == train


def test_span_ch48_other_scales():
    spec = get_anchor("span_ch48").spec
    assert [_count(build_model(spec.with_scale(s), deploy=True)) for s in (2, 3)] == [410_700,
                                                                                     417_195]
    assert [_count(build_model(spec.with_scale(s))) for s in (2, 3)] == [1_824_900, 1_831_395]


@pytest.mark.parametrize("name", WEIGHTED)
def test_official_weights_reproduce_official_outputs(name):
    model = load(name, weights="official")
    assert model.input_range == 1.0
    x = torch.load(PARITY / f"{WEIGHTED[name]}_img_input.pt", weights_only=True)
    expected = torch.load(PARITY / f"{WEIGHTED[name]}_img_output.pt", weights_only=True)
    with torch.no_grad():
        out = model(x)
    assert out.shape == expected.shape == (1, 3, 192, 192)
    assert (out - expected).abs().max().item() <= 1e-5

    def to_uint8(t):
        return (t.clamp(0, 1) * 255).round()

    assert (to_uint8(out) == to_uint8(expected)).float().mean().item() >= 0.999


def test_importers_are_strict():
    model = build_model("spanf", deploy=True)
    path = WEIGHTS_DIR / get_anchor("spanf").official["weights"]
    state = torch.load(path, map_location="cpu", weights_only=True)
    importer = get_importer("spanf")
    assert importer(state, model).keys() == model.state_dict().keys()
    with pytest.raises(InputError, match="block_3.c2_r.eval_conv.bias"):
        importer({k: v for k, v in state.items() if k != "block_3.c2_r.eval_conv.bias"}, model)
    with pytest.raises(InputError, match="not used.*extra"):
        importer({**state, "extra.weight": torch.zeros(1)}, model)
    with pytest.raises(InputError, match="conv_near.weight"):
        importer({**state, "conv_near.weight": torch.zeros(48, 1, 5, 5)}, model)


def test_span_ch48_has_no_official_weights():
    with pytest.raises(InputError, match="has no official weights"):
        load("span_ch48", weights="official")


# ------------------------------------------------------------------------------- peak memory
@pytest.mark.parametrize("name", ["span_ch28", "spanf", "disp"])
def test_peak_memory_equals_the_official_forward_at_256(name):
    """Tracked peak (nas profile's CPU figure) = the reference's live bytes + parameter bytes."""
    from trainers.profiling import measure_peak_memory

    model = build_model(name, deploy=True)
    expected = get_anchor(name).reference["peak_live_bytes_256"]
    assert state_bytes(model) == 4 * _count(model)  # no buffers: SPAN's mean is not one either
    assert measure_peak_memory(model, input_hw=(256, 256)) == \
        (expected + 4 * _count(model)) / 2**20


# Every tensor live at these peaks is a full-resolution map, so the bytes scale with H*W: a
# 64x64 input gives exactly 1/16 of the reference's 256x256 figure.
@pytest.mark.parametrize("name", ["spanv2_c2", "pds", "pkdsr", "span_ch48"])
def test_peak_memory_of_the_other_anchors(name):
    expected = get_anchor(name).reference["peak_live_bytes_256"]
    assert track_peak_live_bytes(build_model(name, deploy=True), (64, 64))[0] * 16 == expected


def test_keep_block_outputs_changes_lifetimes_not_outputs():
    spec = get_anchor("disp").spec
    kept = build_model(spec, deploy=True)
    plain = build_model(ArchSpec.from_dict({**spec.to_dict(), "keep_block_outputs": False}),
                        deploy=True)
    plain.load_state_dict(kept.state_dict())
    x = torch.rand(1, 3, 24, 24)
    with torch.no_grad():
        assert torch.equal(kept(x), plain(x))
    # The official figure scaled to 24x24 (every live map is full resolution), and more than the
    # plain chain, which frees each block output once the next block has run.
    expected = get_anchor("disp").reference["peak_live_bytes_256"] * 24 * 24 // (256 * 256)
    assert track_peak_live_bytes(kept, (24, 24))[0] == expected
    assert track_peak_live_bytes(plain, (24, 24))[0] < expected


# ------------------------------------------------------------------------------------- specs
def _span_spec(**changes) -> dict:
    return {**get_anchor("spanf").spec.to_dict(), **changes}


def test_new_fields_keep_old_identities():
    # Left out of to_dict (and so of arch_id) at their defaults.
    d = get_anchor("rlfn").spec.to_dict()
    assert not {"head", "input_norm", "keep_block_outputs"} & set(d)
    assert get_anchor("spanf").spec.to_dict()["head"] == "none"


@pytest.mark.parametrize("changes, message", [
    ({"fusion": {"type": "span", "widht": 20}},
     r"fusion.widht: unknown option of fusion 'span'; allowed: features, out_channels"),
    ({"fusion": {"type": "aggregate", "out_channels": 20}},
     r"fusion.out_channels: unknown option of fusion 'aggregate'; allowed: act"),
    ({"fusion": "spam"},
     r"fusion: 'spam' not allowed; allowed: .*span, sum \(did you mean 'span'\?\)"),
    ({"upsampler": {"type": "pixelshuffle", "near": "yes"}},
     r"upsampler.near: expected true or false, got 'yes'"),
    ({"upsampler": {"type": "pixelshuffle", "conv": "conv3x"}}, r"upsampler.conv: 'conv3x' not al"),
    ({"body": [{"block": "rlfb"}]}, r"head: 'none' needs a first block .* has none; blocks that "
                                    r"do: conv, memnet, spab, spabv2"),
    ({"global_residual": True}, r"global_residual: needs a head output to add"),
    ({"head": "conv3xc", "weight_norm": True}, r"head: weight_norm applies to a plain head only"),
    ({"input_norm": "imagenet"}, r"input_norm: 'imagenet' not allowed; allowed: none, span"),
    ({"body": [{"block": "spab", "args": {"in_channels": 3}}]},
     r"body\[0\].args.in_channels: set by the builder"),
])
def test_spec_errors_name_the_field(changes, message):
    with pytest.raises(SpecError, match=message):
        ArchSpec.from_dict(_span_spec(**changes))


def test_tail_width_must_match_the_trunk_for_a_long_residual():
    spec = {**get_anchor("span_ch28").spec.to_dict(), "global_residual": True,
            "fusion": {"type": "span", "out_channels": 20}}
    with pytest.raises(SpecError, match=r"fusion.out_channels: global_residual needs "
                                        r"out_channels == channels"):
        ArchSpec.from_dict(spec)


def test_span_fusion_on_a_generic_body():
    spec = ArchSpec.from_dict({"scale": 2, "channels": 8, "body": [{"block": "conv", "repeat": 3}],
                               "fusion": "span", "upsampler": {"type": "pixelshuffle",
                                                              "near": True}})
    model = build_model(spec)
    # cat(near (3*4), head (8), last (8), first (8)) -> 1x1 -> 8; no block hands out features
    assert model.fusion.conv.in_channels == 12 + 3 * 8
    assert model(torch.rand(1, 3, 16, 16)).shape == (1, 3, 32, 32)
