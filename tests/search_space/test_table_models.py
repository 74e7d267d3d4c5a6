"""Benchmark-table networks added for the x3 reference list: VDSR and MemNet (pre-upsampling,
luma), IDN (transposed-conv tail) and LatticeNet (lattice blocks with backward fusion).

None has official weights; each is pinned by its printed parameter count (within 2% at x3) and
Mult-Adds, and by what its layers compute, written out here.
"""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from search_space.anchors import get_anchor
from search_space.blocks.basic import ConvBlock
from search_space.blocks.idn import DistillationBlock
from search_space.blocks.lattice import LatticeBody
from search_space.blocks.memnet import MemNetBody
from search_space.builder import SRNet
from search_space.errors import SpecError
from search_space.factory import build_model
from search_space.layers import ChannelAffine
from search_space.reparam import reparameterize_model
from search_space.spec import ArchSpec
from search_space.upsamplers import DeconvTail
from tests.conftest import conv_params, mult_adds_720p_g, param_count, randomize_

# name: (exact params of the spec at x3, printed K at x3, printed Mult-Adds G at x3 (720p))
TABLE_X3 = {
    "vdsr": (665_921, 665, 612.6),
    "memnet": (687_171, 677, 2662.4),
    "idn": (590_915, 588, 60.1),
    "latticenet": (764_827, 765, 76.3),
}


@pytest.mark.parametrize("name", TABLE_X3)
def test_params_and_mult_adds_match_the_printed_x3_row(name):
    exact, printed_k, mult_adds = TABLE_X3[name]
    anchor = get_anchor(name)
    spec = anchor.spec.with_scale(3)
    assert param_count(build_model(spec, deploy=True)) == exact == anchor.reference["params"]["x3"]
    assert anchor.published["results"]["x3"]["params_k"] == printed_k
    assert abs(exact - 1000 * printed_k) <= 0.02 * 1000 * printed_k
    # x3's 720p output is 1278x720 (426x240 LR): the printed figures are for 1280x720
    assert mult_adds_720p_g(spec) * 1280 / 1278 == pytest.approx(mult_adds, rel=5e-3)


# ---------------------------------------------------------------------------- VDSR
def test_vdsr_is_twenty_convs_plus_the_bicubic_luma():
    spec = get_anchor("vdsr").spec
    weights = 9 * 64 + 18 * 9 * 64 * 64 + 9 * 64
    assert param_count(build_model(spec)) == weights + 19 * 64 + 1 == 665_921
    model = randomize_(build_model(spec)).eval()
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 20 and convs[0].in_channels == 1 and convs[-1].out_channels == 1
    with torch.no_grad():
        convs[-1].weight.zero_()
        convs[-1].bias.zero_()
        luma = torch.rand(1, 1, 9, 11)
        out = SRNet.forward(model, luma)
    # with the last conv at zero, what is left is the residual path: the bicubic luma
    bicubic = F.interpolate(luma, scale_factor=4, mode="bicubic", align_corners=False)
    assert torch.allclose(out, bicubic, atol=1e-6)


def test_a_conv_block_maps_the_image_without_a_head():
    block = ConvBlock(16, in_channels=3, post_act="relu")
    assert block(torch.rand(1, 3, 5, 5)).shape == (1, 16, 5, 5)
    spec = ArchSpec.from_dict({"scale": 2, "channels": 8, "head": "none", "global_residual": False,
                               "body": [{"block": "conv", "repeat": 2}]})
    assert build_model(spec).body[0].conv.in_channels == 3


# ---------------------------------------------------------------------------- MemNet
def test_memnet_recursions_share_weights_and_gates_see_all_memories():
    body = MemNetBody(8, in_channels=1, memory_blocks=3, recursions=4)
    once = MemNetBody(8, in_channels=1, memory_blocks=3, recursions=1)
    # three more recursions add no weights, only 3 x 8 gate inputs (conv and BN) per block
    assert param_count(body) - param_count(once) == 3 * (3 * 8 * 8 + 2 * 3 * 8)
    # block m gates R short-term maps and m long-term ones (the extractor's and m - 1 blocks')
    assert [b.gate.conv.in_channels for b in body.blocks] == [8 * (4 + m) for m in (1, 2, 3)]
    assert body(torch.rand(2, 1, 6, 7)).shape == (2, 8, 6, 7)


def test_memnet_forward_is_its_definition():
    torch.manual_seed(0)
    body = randomize_(MemNetBody(4, memory_blocks=2, recursions=2)).eval()
    x = torch.randn(1, 4, 5, 6)
    pre = lambda u, t: u.conv(F.relu(u.norm(t)))  # noqa: E731  (BN, ReLU, conv)
    long_term = [x]
    h = x
    for block in body.blocks:
        short = []
        for _ in range(2):
            h = h + pre(block.conv2, pre(block.conv1, h))
            short.append(h)
        h = pre(block.gate, torch.cat(short + long_term, 1))
        long_term.append(h)
    with torch.no_grad():
        assert torch.allclose(body(x), F.relu(body.out_norm(h)), atol=1e-6)


def test_memnet_deploy_form_turns_batchnorm_into_an_exact_channel_affine():
    model = randomize_(build_model(get_anchor("memnet").spec.with_scale(2))).eval()
    x = torch.rand(1, 3, 8, 9)
    deploy = reparameterize_model(model)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in deploy.modules())
    assert sum(isinstance(m, ChannelAffine) for m in deploy.modules()) == 1 + 6 * 3 + 1
    assert param_count(deploy) == param_count(model)
    with torch.no_grad():
        assert torch.allclose(deploy(x), model(x), atol=1e-5)


# ---------------------------------------------------------------------------- IDN
def test_idn_block_is_its_definition_and_the_paper_count_is_the_luma_network():
    block = DistillationBlock(64)
    # upper 64-48-32(g4)-64, lower 48-64-48(g4)-80, compression 80-64
    assert param_count(block) == (conv_params(64, 48, 3) + conv_params(48, 32, 3, 4)
                             + conv_params(32, 64, 3) + conv_params(48, 64, 3)
                             + conv_params(64, 48, 3, 4) + conv_params(48, 80, 3)
                             + conv_params(80, 64, 1)) == 124_176
    x = torch.randn(1, 64, 5, 5)
    h = block.upper(x)
    expected = block.compress(block.lower(h[:, :48]) + torch.cat([x, h[:, 48:]], 1))
    assert torch.allclose(block(x), expected)
    # the IDN paper's 553K: the same network on the luma (1 channel in and out)
    luma = conv_params(1, 64, 3) + conv_params(64, 64, 3) + 4 * 124_176 + 64 * 17 * 17 + 1
    assert luma == 552_769


def test_deconv_tail_kernel_size_keeps_the_exact_output_size():
    for scale in (2, 3, 4):
        tail = DeconvTail(8, scale, kernel_size=17)
        assert tail(torch.rand(1, 8, 7, 5)).shape == (1, 3, 7 * scale, 5 * scale)
    for bad in (16, 0):
        with pytest.raises(SpecError, match=rf"upsampler\.kernel_size: expected an odd kernel "
                                            rf"size >= 1, got {bad}"):
            ArchSpec.from_dict({"scale": 2, "channels": 8, "body": ["conv"],
                                "upsampler": {"type": "deconv", "kernel_size": bad}})


# ---------------------------------------------------------------------------- LatticeNet
def test_lattice_body_fuses_backward_and_adds_its_input():
    body = LatticeBody(8, lattice_blocks=4, mid_channels=6)
    x = torch.randn(1, 8, 5, 6)
    outs, h = [], x
    for block in body.blocks:
        h = block(h)
        outs.append(h)
    r = [F.relu(conv(o)) for conv, o in zip(body.reduce, outs, strict=True)]
    fused = F.relu(body.join[1](torch.cat([F.relu(body.join[0](torch.cat([r[3], r[2]], 1))),
                                           r[1]], 1)))
    assert torch.allclose(body(x), torch.cat([fused, r[0]], 1) + x, atol=1e-6)


@pytest.mark.parametrize("scale,printed_k,mult_adds", [(2, 756, 169.5), (4, 777, 43.6)])
def test_latticenet_matches_fmen_at_x2_and_x4_too(scale, printed_k, mult_adds):
    spec = get_anchor("latticenet").spec.with_scale(scale)
    assert abs(param_count(build_model(spec)) - 1000 * printed_k) <= 0.001 * 1000 * printed_k
    assert mult_adds_720p_g(spec) == pytest.approx(mult_adds, rel=2e-3)
