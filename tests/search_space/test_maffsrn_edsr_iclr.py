"""MAFFSRN (MAB, FFG with M-BFF, weight norm), EDSR/RCAN blocks and the ICLR'19 conv units.

Parameter counts are computed by hand from the layer shapes; forward passes are checked against
the definitions written out with ``torch.nn.functional``.
"""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F
from torch.nn.utils import parametrize
from torch.utils.flop_counter import FlopCounterMode

from search_space.anchors import get_anchor
from search_space.blocks.mab import FFG, MAB
from search_space.blocks.residual import RB, RCAB, RG
from search_space.errors import InputError
from search_space.factory import build_model
from search_space.layers import channel_shuffle
from search_space.registry import build_conv
from search_space.reparam import reparameterize_model
from search_space.spec import ArchSpec
from tests.conftest import randomize_


def _count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _conv(x: torch.Tensor, conv: torch.nn.Conv2d) -> torch.Tensor:
    return F.conv2d(
        x, conv.weight, conv.bias, conv.stride, conv.padding, conv.dilation, conv.groups
    )


# ---------------------------------------------------------------------------- MAFFSRN
def _conv_params(cin: int, cout: int, k: int, groups: int = 1) -> int:
    return cin // groups * cout * k * k + cout


def test_mab_parameter_count_by_hand():
    c, r = 32, 8
    body = 2 * _conv_params(c, c, 3)
    gate = (
        _conv_params(c, r, 1)
        + 3 * _conv_params(r, r, 3)  # stride-2, d=1 and d=2 convs
        + _conv_params(r, c, 1)
    )
    cea = _conv_params(c, c, 1) + _conv_params(c, c, 5, groups=c)
    assert _count(MAB(c)) == body + gate + cea == 22688
    assert _count(MAB(c, cea=False)) == body + gate
    assert _count(MAB(c, esa=False)) == body + cea


def test_mab_forward_matches_its_definition():
    mab = randomize_(MAB(16, act="lrelu0.05")).eval()
    x = torch.rand(1, 16, 29, 31)
    with torch.no_grad():
        f = _conv(F.leaky_relu(_conv(x, mab.body[0]), 0.05), mab.body[2])
        g = mab.gate
        rc = _conv(f, g.reduce_channels)
        pooled = F.max_pool2d(_conv(rc, g.reduce_size), 7, 3)
        assert g.reduce_size.stride == (2, 2) and g.reduce_size.padding == (1, 1)
        assert g.conv_d2.dilation == (2, 2) and g.conv_d2.padding == (2, 2)
        both = F.leaky_relu(_conv(pooled, g.conv_d1), 0.05) + F.leaky_relu(
            _conv(pooled, g.conv_d2), 0.05
        )
        up = F.interpolate(both, size=rc.shape[-2:], mode="nearest") + rc
        gate = torch.sigmoid(F.relu(_conv(up, g.increase_channels)))  # official: ReLU, sigmoid
        cea = torch.sigmoid(_conv(_conv(f, mab.cea.pointwise), mab.cea.depthwise))
        torch.testing.assert_close(mab(x), f * gate * cea, rtol=0, atol=0)


def test_mab_rejects_inputs_below_its_minimum_size():
    mab = MAB(8)
    assert mab(torch.rand(1, 8, 13, 13)).shape == (1, 8, 13, 13)
    with pytest.raises(InputError, match=r"MAB input.*>= 13.*got 12x20"):
        mab(torch.rand(1, 8, 12, 20))


def test_ffg_mbff_structure_and_initial_scalars():
    ffg = FFG(32)
    reductions = list(ffg.fusion.reduce)
    assert len(ffg.mabs) == 4 and len(reductions) == 3
    for conv in reductions:
        assert conv.kernel_size == (1, 1) and (conv.in_channels, conv.out_channels) == (64, 32)
        assert parametrize.is_parametrized(conv, "weight")  # weight norm on the reductions only
    assert not any(parametrize.is_parametrized(m, "weight") for m in ffg.mabs.modules())
    assert ffg.lambda_res.item() == 1.0 and ffg.lambda_x.item() == 1.0
    assert len(FFG(32, num_mabs=6).fusion.reduce) == 5

    tail = build_model(get_anchor("maffsrn").spec).tail
    assert tail.scale3.item() == 0.5 and tail.scale5.item() == 0.5
    assert tail.branch3.kernel_size == (3, 3) and tail.branch5.kernel_size == (5, 5)


def test_ffg_forward_is_mbff():
    ffg = randomize_(FFG(16)).eval()
    with torch.no_grad():
        ffg.lambda_res.fill_(0.7)
        ffg.lambda_x.fill_(1.3)
        x = torch.rand(1, 16, 21, 18)
        m, red = ffg.mabs, ffg.fusion.reduce
        x0 = m[0](x)
        x1 = m[1](x0) + x0
        x2 = m[2](x1) + x1
        x3 = m[3](x2)
        res = red[0](channel_shuffle(torch.cat([x0, x1], 1), 2))
        res = red[1](channel_shuffle(torch.cat([res, x2], 1), 2))
        res = red[2](channel_shuffle(torch.cat([res, x3], 1), 2))
        torch.testing.assert_close(ffg(x), 0.7 * res + 1.3 * x, rtol=0, atol=0)


def _maffsrn_variant(scale: int, **ffg_args) -> ArchSpec:
    data = get_anchor("maffsrn").spec.with_scale(scale).to_dict()
    data["body"][0]["args"].update(ffg_args)
    return ArchSpec.from_dict(data)


def test_maffsrn_ablation_counts_match_paper_table1():
    # Table 1 (x2): M-BFF + CEA 402K, M-BFF 372K, BFF 372K; CEA costs 16 x (1x1 + dw 5x5).
    with torch.device("meta"):
        full = _count(build_model(_maffsrn_variant(2)))
        no_cea = _count(build_model(_maffsrn_variant(2, cea=False)))
        bff = _count(build_model(_maffsrn_variant(2, cea=False, fusion="bff")))
    assert full - no_cea == 16 * (_conv_params(32, 32, 1) + _conv_params(32, 32, 5, groups=32))
    assert (round(full / 1000), round(no_cea / 1000), round(bff / 1000)) == (402, 372, 372)


@pytest.mark.parametrize("scale", [2, 4])
def test_weight_norm_folding_is_exact(scale):
    model = build_model(get_anchor("maffsrn").spec.with_scale(scale)).eval()
    with torch.no_grad():  # magnitudes away from ||v|| so that a dropped g would show
        for name, p in model.named_parameters():
            if name.endswith("original0"):
                p.mul_(torch.rand_like(p) + 0.5)
    deploy = reparameterize_model(model)
    assert not any(parametrize.is_parametrized(m) for m in deploy.modules())
    # One magnitude per output channel: head 32, 12 reductions x 32, two tail convs x 3s^2.
    assert _count(model) - _count(deploy) == 32 + 12 * 32 + 2 * 3 * scale**2
    x = torch.rand(1, 3, 19, 23)
    with torch.no_grad():
        torch.testing.assert_close(deploy(x), model(x), rtol=1e-6, atol=1e-6)


def test_maffsrn_input_skip_is_bicubic():
    model = build_model(get_anchor("maffsrn").spec.with_scale(3)).eval()
    with torch.no_grad():
        model.tail.scale3.zero_()  # silence both tail branches: only the skip remains
        model.tail.scale5.zero_()
        x = torch.rand(1, 3, 17, 15)
        expected = F.interpolate(x, scale_factor=3, mode="bicubic", align_corners=False)
        torch.testing.assert_close(model(x), expected, rtol=0, atol=0)


@pytest.mark.parametrize("name", ["maffsrn", "maffsrn_l"])
def test_maffsrn_peak_keeps_the_official_ffg_and_mab_lifetimes(name):
    """The official FFG computes all four MABs (x0..x3 live) before its reductions and holds
    res1, res2 to its output; with the network's head output and the group input that is 12
    C-wide maps plus the image while the last reduction's channel shuffle copies its concat
    (86.72 MiB at 180x320 with the parameters: the official class with weight norm folded)."""
    from trainers.memory import track_peak_live_bytes

    model = build_model(name, deploy=True)
    height, width = 64, 96
    peak, op = track_peak_live_bytes(model, (height, width))
    assert (peak, op) == (4 * (3 + 12 * 32) * height * width, "aten.clone.default")


def test_mab_holds_its_gate_locals_through_the_cea_branch():
    """As the official MAB forward: rc, the stride-2 conv output, the pooled map, the dilated sum
    and the upsampled sum stay live while the CEA branch runs (its depthwise conv is the peak)."""
    from trainers.memory import tracked_forward

    c, side = 32, 32
    tracker = tracked_forward(MAB(c).eval(), torch.rand(1, c, side, side))
    full = c * side * side  # elements of one C-wide map
    # input, f, f * gate, the CEA's 1x1 and depthwise outputs; rc and the upsampled sum (C/4);
    # the stride-2 conv output (C/4, 16x16); the pooled map and the dilated sum (C/4, 4x4).
    gate = 2 * full // 4 + (c // 4) * 16 * 16 + 2 * (c // 4) * 4 * 4
    assert (tracker.peak_bytes, tracker.peak_op) == (4 * (5 * full + gate),
                                                     "aten.convolution.default")


# ---------------------------------------------------------------------------- EDSR / RCAN
def test_rb_and_rcab_follow_their_definitions():
    x = torch.rand(1, 8, 11, 9)
    rb = randomize_(RB(8, res_scale=0.1)).eval()
    rcab = randomize_(RCAB(8, reduction=4)).eval()
    with torch.no_grad():
        body = _conv(F.relu(_conv(x, rb.body[0])), rb.body[2])
        torch.testing.assert_close(rb(x), x + 0.1 * body, rtol=0, atol=1e-7)
        f = _conv(F.relu(_conv(x, rcab.body[0])), rcab.body[2])
        ca = rcab.body[3]
        w = torch.sigmoid(_conv(F.relu(_conv(f.mean((2, 3), keepdim=True), ca.squeeze)), ca.excite))
        torch.testing.assert_close(rcab(x), x + f * w, rtol=0, atol=1e-6)


def test_residual_group_parameter_count_by_hand():
    c = 64
    rcab = 2 * _conv_params(c, c, 3) + _conv_params(c, c // 16, 1) + _conv_params(c // 16, c, 1)
    assert _count(RG(c)) == 5 * rcab + _conv_params(c, c, 3) == 409108


def test_rcab_rejects_a_reduction_that_leaves_no_channel():
    spec = {"scale": 2, "channels": 8, "body": [{"block": "rcab", "args": {"reduction": 16}}]}
    with pytest.raises(InputError, match=r"body\[0\]\.args.*channels // reduction >= 1"):
        ArchSpec.from_dict(spec)


@pytest.mark.parametrize("scale, stages", [(2, [4]), (3, [9]), (4, [4, 4])])
def test_staged_tail_is_edsr_upsampler(scale, stages):
    tail = build_model(get_anchor("edsr_baseline").spec.with_scale(scale)).tail
    convs = [m for m in tail.up if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels // 64 for c in convs] == stages
    assert tail.conv.out_channels == 3


# ---------------------------------------------------------------------------- ICLR'19 units
C = 16  # hand-computed counts below are for 16 -> 16 channels


@pytest.mark.parametrize(
    "unit, expected",
    [
        # 1x1 16->8, 3x3 8->8, 1x1 8->16
        ({"type": "bottleneck", "ratio": 2}, (16 * 8 + 8) + (8 * 8 * 9 + 8) + (8 * 16 + 16)),
        # as above with the 3x3 in 4 groups of 2 channels
        (
            {"type": "resnext", "ratio": 2, "groups": 4},
            (16 * 8 + 8) + (2 * 8 * 9 + 8) + (8 * 16 + 16),
        ),
        # depthwise 3x3, pointwise 1x1
        ("mobilenet_v1", (16 * 9 + 16) + (16 * 16 + 16)),
        # 1x1 16->8, depthwise 1x3 and 3x1 on 8, 1x1 8->16
        ({"type": "effnet", "ratio": 2}, (16 * 8 + 8) + 2 * (8 * 3 + 8) + (8 * 16 + 16)),
        # grouped (g=4) 1x1 16->8, depthwise 3x3 on 8, grouped 1x1 8->16
        (
            {"type": "shufflenet_v1", "ratio": 2, "groups": 4},
            (4 * 8 + 8) + (8 * 9 + 8) + (2 * 16 + 16),
        ),
        # one half (8 channels): 1x1, depthwise 3x3, 1x1
        ("shufflenet_v2", (8 * 8 + 8) + (8 * 9 + 8) + (8 * 8 + 8)),
        # 3x3 in 8 groups of 2, 1x1 in 2 groups of 8
        ({"type": "clcnet", "group_size": 2}, (2 * 16 * 9 + 16) + (8 * 16 + 16)),
        # 1x1 16->32, depthwise 3x3 on 32, 1x1 32->16
        ({"type": "mobilenet_v2", "expansion": 2}, (16 * 32 + 32) + (32 * 9 + 32) + (32 * 16 + 16)),
    ],
)
def test_unit_parameter_count_by_hand(unit, expected):
    module = build_conv(unit, C, C)
    assert _count(module) == expected
    x = torch.rand(1, C, 9, 7)
    assert module(x).shape == x.shape


@pytest.mark.parametrize("unit", ["bottleneck", "resnext", "mobilenet_v2", "shufflenet_v1"])
def test_residual_units_add_their_input(unit):
    module = build_conv(unit, C, C)
    with torch.no_grad():
        for p in module.body[-1].parameters():
            p.zero_()  # last conv silenced: the unit is the identity
        x = torch.rand(1, C, 6, 5)
        torch.testing.assert_close(module(x), x, rtol=0, atol=0)


def test_shufflenet_v2_passes_half_the_channels_through():
    module = build_conv("shufflenet_v2", C, C)
    x = torch.rand(1, C, 6, 5)
    with torch.no_grad():
        y = module(x)
    torch.testing.assert_close(y[:, 0::2], x[:, : C // 2], rtol=0, atol=0)


@pytest.mark.parametrize("group_size", [2, 4])
def test_clcnet_every_output_sees_every_input(group_size):
    module = build_conv({"type": "clcnet", "group_size": group_size}, C, C)
    with torch.no_grad():  # positive weights keep the ReLU open, so gradients show dependencies
        for p in module.parameters():
            p.abs_()
    x = torch.rand(1, C, 5, 5, requires_grad=True)
    for channel in range(C):
        (grad,) = torch.autograd.grad(module(x)[0, channel, 2, 2], x)
        assert (grad.abs().sum(dim=(0, 2, 3)) > 0).all(), f"output {channel}"


@pytest.mark.parametrize(
    "unit",
    [
        "bottleneck",
        "resnext",
        "mobilenet_v1",
        "effnet",
        "shufflenet_v1",
        "shufflenet_v2",
        "clcnet",
        "mobilenet_v2",
    ],
)
def test_units_change_width(unit):
    module = build_conv(unit, 16, 24)
    assert module(torch.rand(1, 16, 7, 6)).shape == (1, 24, 7, 6)


def test_unit_width_errors_name_the_rule():
    with pytest.raises(InputError, match=r"shufflenet_v1.*in_channels % groups == 0.*=46"):
        build_conv({"type": "shufflenet_v1", "groups": 4}, 46, 48)
    with pytest.raises(InputError, match=r"clcnet.*in_channels % group_size == 0"):
        build_conv({"type": "clcnet", "group_size": 4}, 46, 46)


# ---------------------------------------------------------------------------- ICLR'19 anchors
VARIANTS = [
    "rcan_lite",
    "blrn_r2",
    "blrn_r4",
    "blrxn",
    "blm1",
    "bleff",
    "bls1",
    "bls2",
    "blclc",
    "blm2_e2",
    "blm2_e3",
]


def _macs(model: torch.nn.Module, h: int, w: int) -> float:
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.empty(1, 3, h, w))
    return counter.get_total_flops() / 2


@pytest.mark.parametrize("name", VARIANTS)
def test_iclr_variant_matches_published_x2_figures(name):
    anchor = get_anchor(name)
    published = anchor.published["results"]["x2"]
    # Mult-Adds for a 720p output: LR 360x640 = 100 x (36x64) pixels; every conv but the
    # channel attention's (on a 1x1 map, < 0.01%) scales with the pixel count.
    with torch.device("meta"):  # shapes only: no weight init, no arithmetic
        model = build_model(anchor.spec.with_scale(2))
        mult_adds_g = 100 * _macs(model, 36, 64) / 1e9
    params = _count(model)
    assert params == anchor.reference["params"]["x2"]
    assert abs(params - 1000 * published["params_k"]) <= 0.05 * 1000 * published["params_k"]
    assert mult_adds_g == pytest.approx(published["mult_adds_g"], rel=5e-3)


def test_iclr_variants_replace_the_23_body_convs():
    base = build_model(get_anchor("rcan_lite").spec.with_scale(2))
    plain = sum(
        1 for m in base.body.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3)
    )
    assert plain + 1 == 23  # 2 groups x (5 RCABs x 2 + 1), plus rcan_lite's last_conv
    variant = build_model(get_anchor("blm1").spec.with_scale(2))
    dense = [
        m
        for m in variant.modules()
        if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3) and m.groups == 1
    ]
    assert len(dense) == 1 + 1 + 1  # head, upsampler stage, last conv 64->3
