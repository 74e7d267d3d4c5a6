"""Builder: every fusion and upsampler builds and runs; topology semantics hold numerically."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from search_space.choices import FUSIONS, UPSAMPLERS
from search_space.factory import build_model
from search_space.fusion import BinarizedFusion
from search_space.layers import channel_shuffle
from search_space.registry import build_conv
from search_space.reparam import is_deploy_form, reparameterize_model
from search_space.spec import ArchSpec


def _spec(**kw) -> ArchSpec:
    base = {"scale": 2, "channels": 8, "body": [{"block": "conv", "repeat": 3}]}
    return ArchSpec.from_dict({**base, **kw})


@pytest.mark.parametrize("fusion", FUSIONS)
@pytest.mark.parametrize("upsampler", UPSAMPLERS)
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_every_fusion_and_upsampler_builds(fusion, upsampler, scale):
    model = build_model(_spec(fusion=fusion, upsampler=upsampler, scale=scale, weight_norm=True))
    assert model(torch.rand(1, 3, 11, 13)).shape == (1, 3, 11 * scale, 13 * scale)


def test_fusion_parameter_counts():
    c, n = 8, 3
    seq = build_model(_spec())
    agg = build_model(_spec(fusion="aggregate"))
    bff = build_model(_spec(fusion="bff"))
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(agg) - count(seq) == n * c * c + c          # one 1x1 conv nC -> C
    assert count(bff) - count(seq) == (n - 1) * (2 * c * c + c)  # n-1 pairwise 1x1 convs


def test_mbff_matches_its_definition():
    torch.manual_seed(0)
    blocks = nn.ModuleList(nn.Conv2d(4, 4, 3, padding=1) for _ in range(4))
    fusion = BinarizedFusion(4, 4, modified=True)
    x = torch.rand(1, 4, 6, 6)
    x0 = blocks[0](x)
    x1 = blocks[1](x0) + x0
    x2 = blocks[2](x1) + x1
    x3 = blocks[3](x2)
    res = x0
    for conv, xi in zip(fusion.reduce, (x1, x2, x3), strict=True):
        res = conv(channel_shuffle(torch.cat([res, xi], 1), 2))
    assert torch.allclose(fusion(x, blocks), res)


def test_global_residual_and_input_skip_semantics():
    spec = _spec(last_conv=False, input_skip=True)
    model = build_model(spec)
    with torch.no_grad():
        for p in model.body.parameters():
            p.zero_()
    x = torch.rand(1, 3, 9, 9)
    with torch.no_grad():
        feat = model.head(x)
        expected = model.tail(feat) + nn.functional.interpolate(
            x, scale_factor=2, mode="bicubic", align_corners=False)
        assert torch.allclose(model(x), expected, atol=1e-6)


def test_mean_shift_is_buffers_scaled_by_input_range():
    model = build_model(_spec(mean_shift=True, input_range=255.0))
    assert "rgb_mean" in dict(model.named_buffers())
    assert model.rgb_mean.flatten()[0].item() == pytest.approx(0.4488 * 255)


def test_deploy_folds_weight_norm_exactly():
    model = build_model(_spec(weight_norm=True, fusion="bff")).eval()
    folded = reparameterize_model(model)
    x = torch.rand(1, 3, 10, 10)
    with torch.no_grad():
        assert torch.allclose(folded(x), model(x), atol=1e-6)
    # one magnitude per output channel: head 8, two bff reductions 2 x 8, tail 3 * 2^2
    magnitudes = 8 + 2 * 8 + 12
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(model) - count(folded) == magnitudes


def test_a_stage_of_its_own_width_runs_between_projections_and_fuses_as_one_block():
    c, w = 8, 12
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    body = [{"block": "conv"}, {"block": "conv", "repeat": 2, "channels": w}]
    own = build_model(_spec(body=body, fusion="aggregate"))
    at_trunk = build_model(_spec(body=[{"block": "conv"}], fusion="sequential"))
    conv3x3 = lambda i, o: 9 * i * o + o  # noqa: E731
    projections = (c * w + w) + (w * c + c)
    fusion = 2 * c * c + c  # the aggregate's 1x1 conv sees two blocks: the plain one, the stage
    assert count(own) - count(at_trunk) == projections + 2 * conv3x3(w, w) + fusion
    assert own(torch.rand(1, 3, 9, 7)).shape == (1, 3, 18, 14)


def test_a_stage_of_its_own_width_reparameterises_exactly():
    torch.manual_seed(0)
    spec = _spec(body=[{"block": "spab"}, {"block": "spab", "repeat": 2, "channels": 12}],
                 fusion="span", conv="conv3xc")
    model = build_model(spec).eval()
    x = torch.rand(1, 3, 10, 10)
    trained = model(x)
    deployed = reparameterize_model(model)
    assert is_deploy_form(deployed) and not is_deploy_form(model)  # folded inside the stage
    assert torch.allclose(trained, deployed(x), atol=1e-5)


def test_a_pre_upsampling_network_runs_on_the_bicubic_input():
    # head 1x1 and tail 1x1 set to the identity: the network is the bicubic upsampling itself
    spec = ArchSpec.from_dict({"scale": 3, "channels": 3, "head_kernel_size": 1, "body": [],
                               "last_conv": False, "global_residual": False,
                               "upsampler": {"type": "pre_bicubic", "kernel_size": 1}})
    model = build_model(spec)
    with torch.no_grad():
        for layer in (model.head, model.tail.body[-1]):
            layer.weight.copy_(torch.eye(3).view(3, 3, 1, 1))
            layer.bias.zero_()
    x = torch.rand(1, 3, 7, 9)
    bicubic = nn.functional.interpolate(x, scale_factor=3, mode="bicubic", align_corners=False)
    assert torch.allclose(model(x), bicubic, atol=1e-6)


def test_a_residual_group_may_keep_its_trailing_conv_plain():
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    group = {"block": "rg", "args": {"num_blocks": 1, "reduction": 4}}
    every = build_model(_spec(body=[group], conv="mobilenet_v1"))
    rb_only = build_model(_spec(body=[{**group, "args": {**group["args"],
                                                          "group_conv": "plain"}}],
                                conv="mobilenet_v1"))
    c = 8  # one of the group's convs swaps the unit for a plain 3x3
    plain, unit = count(build_conv(None, c, c)), count(build_conv("mobilenet_v1", c, c))
    assert plain == 9 * c * c + c and count(rb_only) - count(every) == plain - unit
    with pytest.raises(Exception, match=r"body\[0\]\.args\.group_conv"):
        _spec(body=[{**group, "args": {"group_conv": "nope"}}])


def test_the_memory_guard_counts_the_size_and_width_a_network_works_at():
    from search_space.limits import check_resources, estimate_memory_mb

    post = _spec(scale=4, channels=16, body=[{"block": "conv"}])
    pre = _spec(scale=4, channels=16, body=[{"block": "conv"}], upsampler="pre_bicubic")
    wide = _spec(scale=4, channels=16, body=[{"block": "conv", "channels": 64}])
    maps = lambda spec: estimate_memory_mb(spec, 0, (100, 100))  # noqa: E731  (no weights)
    output = 2 * 3 * 100 * 100 * 16 * 4 / 2**20
    # four maps of the working width at the working size, and the output
    assert maps(post) == pytest.approx(4 * 16 * 100 * 100 * 4 / 2**20 + output)
    assert maps(pre) == pytest.approx(4 * 16 * 400 * 400 * 4 / 2**20 + output)
    assert maps(wide) == pytest.approx(4 * 64 * 100 * 100 * 4 / 2**20 + output)
    check_resources(post, input_hw=(256, 256), max_memory_mb=100)
    with pytest.raises(Exception, match="needs about .* MiB at 256x256; the limit is 100 MiB"):
        check_resources(pre, input_hw=(256, 256), max_memory_mb=100)


def test_pre_upsampling_mid_conv_options_need_the_mid_conv():
    with pytest.raises(Exception, match=r"upsampler\.act: applies to the mid conv only"):
        _spec(upsampler={"type": "pre_bicubic", "act": "gelu"})
    assert _spec(upsampler={"type": "pre_bicubic", "mid_channels": 4, "act": "gelu"})
