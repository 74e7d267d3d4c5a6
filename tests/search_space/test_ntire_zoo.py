"""NTIRE 2024-2026 efficient-SR entries added as exact references (issue 18): official-weight
parity on a 24x24 Set5 crop, exact official parameter counts, strict importers, and the new
blocks (SAFMB, SimpleSAFMB, FMB, FMM, MHCB, LPF, LKFB, the BSConv-U unit, EADB, FMDB) against
hand-written definitions."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from search_space.anchors import WEIGHTS_DIR, get_anchor, load
from search_space.anchors.importers import get_importer
from search_space.blocks.amca import MHCB
from search_space.blocks.bsconv import BSConvU, SeparableBSConvU
from search_space.blocks.eadb import EADB, EADB_MIN_SIZE, strided_local_variance
from search_space.blocks.fmdb import FMDB, FMDB_MIN_SIZE, ChainedDepthwise
from search_space.blocks.lkfb import LKFB, FourierAttention
from search_space.blocks.lpf import LPF
from search_space.blocks.mvfm import FMM, local_variance
from search_space.blocks.safm import SAFMB, SameDepthwise
from search_space.blocks.simple_safm import SimpleSAFMB
from search_space.blocks.smfa import FMB
from search_space.blocks.span import SPAB
from search_space.errors import InputError, SpecError
from search_space.factory import build_model
from search_space.spec import ArchSpec
from tests.conftest import FIXTURES

PARITY = FIXTURES / "parity"
# anchor -> parameter count of the official class as test_demo.py builds it
OFFICIAL_PARAMS = {
    "span_ntire25_t46": 146328,
    "tsr": 171984,
    "egfmn": 92964,
    "gfmn": 88408,
    "smfan": 84408,
    "safmn_deep15": 149248,
    "mvfmnet": 86888,
    "amcanet": 86384,
    "sgsdn": 92592,
    "lightrlfn": 265988,
    "slimrlfn": 207774,
    "lkfn": 89676,
    "safmnv3": 144672,
    "errn2": 245968,
    "r2net": 214800,
    "msn": 87612,
    "fmdn": 71525,
}


def _count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("name", OFFICIAL_PARAMS)
def test_official_weights_reproduce_official_outputs(name):
    """The official class (its own code, official weights) on a 24x24 crop of Set5 baby (MSN,
    which needs 29 pixels: 32x32)."""
    model = load(name, weights="official")
    x = torch.load(PARITY / f"{name}_img_input.pt", weights_only=True)
    expected = torch.load(PARITY / f"{name}_img_output.pt", weights_only=True)
    side = 32 if name == "msn" else 24
    assert x.shape == (1, 3, side, side)
    with torch.no_grad():
        out = model(x)
    assert out.shape == expected.shape == (1, 3, 4 * side, 4 * side)
    assert (out - expected).abs().max().item() <= 1e-5 * model.input_range


@pytest.mark.parametrize("name", OFFICIAL_PARAMS)
def test_parameter_count_is_the_official_one(name):
    anchor = get_anchor(name)
    assert anchor.reference["params"]["x4"] == OFFICIAL_PARAMS[name]
    assert _count(build_model(name, deploy=True)) == OFFICIAL_PARAMS[name]


@pytest.mark.parametrize("name", OFFICIAL_PARAMS)
def test_importers_use_every_official_tensor(name):
    official = get_anchor(name).official
    state = torch.load(WEIGHTS_DIR / official["weights"], map_location="cpu", weights_only=True)
    for key in ("params_ema", "params"):
        if key in state:
            state = state[key]
            break
    model = build_model(name, deploy=True)
    importer = get_importer(official["importer"])
    extra = dict(state, unexpected=torch.zeros(1))
    with pytest.raises(InputError, match="not used"):
        importer(extra, model)
    dropped = dict(state)
    dropped.pop(next(iter(dropped)))
    with pytest.raises(InputError, match="not found|without a source"):
        importer(dropped, model)


# ----------------------------------------------------------------------------------- blocks
def test_safmb_layer_norm_gated_ffn_by_hand():
    block = SAFMB(8, norm="layer", ffn="gated", ffn_scale=2.0).eval()
    x = torch.randn(1, 8, 16, 16)

    def ln(norm, t):
        mean = t.mean(1, keepdim=True)
        var = (t - mean).pow(2).mean(1, keepdim=True)
        return norm.weight[:, None, None] * (t - mean) / torch.sqrt(var + 1e-6) \
            + norm.bias[:, None, None]

    with torch.no_grad():
        safm, chunks = block.safm, ln(block.norm1, x).chunk(4, dim=1)
        parts = [safm.mfr[0](chunks[0])]
        for i in (1, 2, 3):
            pooled = F.adaptive_max_pool2d(chunks[i], 16 // 2 ** (i + 1))
            parts.append(F.interpolate(safm.mfr[i](pooled), size=(16, 16), mode="nearest"))
        h = F.gelu(safm.aggr(torch.cat(parts, 1))) * ln(block.norm1, x) + x
        ffn = block.ffn
        x1, x2 = ffn.dwconv(ffn.project_in(ln(block.norm2, h))).chunk(2, dim=1)
        expected = ffn.project_out(x1 * x2) + h
        assert torch.allclose(block(x), expected, atol=1e-5)


def test_safmb_options_change_the_parameter_count():
    c = 8
    gated = _count(SAFMB(c, ffn="gated", ffn_scale=2.0))
    mlp = _count(SAFMB(c, ffn="mlp", ffn_scale=2.0))
    decomposed = _count(SAFMB(c, ffn="gated", ffn_scale=2.0, decompose=True))
    hidden = 2 * c
    # gated: 1x1 c -> 2h, depthwise 2h, 1x1 h -> c, all bias-free; mlp: 1x1 c -> h, 1x1 h -> c
    assert gated - mlp == (c * 2 * hidden + 2 * hidden * 9 + hidden * c) \
        - (c * hidden + hidden + hidden * c + c)
    # decompose: 1x1 conv c -> c and sigma (c) in SAFM; 1x1 h -> 1 and sigma (h) in the FFN
    assert decomposed - gated == (c * c + c + c) + (hidden + 1 + hidden)


def test_safmb_group_norm_sees_the_whole_map():
    block = SAFMB(8, norm="group", ffn="mlp", pool_divisor=2).eval()
    x = torch.randn(1, 8, 16, 16)
    y = x.clone()
    y[..., :4, :4] += 5.0  # a change in one corner moves the normalisation everywhere
    with torch.no_grad():
        assert not torch.allclose(block(x)[..., 12:, 12:], block(y)[..., 12:, 12:])


def test_fmb_partial_ffn_convolves_a_quarter():
    block = FMB(24, ffn_scale=1.5).eval()
    assert block.pcfn.partial == 9 and block.pcfn.partial_conv.in_channels == 9


def test_local_variance_tiles_the_map():
    x = torch.randn(1, 2, 24, 24)
    v = local_variance(x, (3, 3))
    assert v.shape == (1, 2, 3, 3)
    assert torch.allclose(v[0, 0, 0, 0], x[0, 0, :8, :8].var())
    small = torch.randn(1, 2, 11, 11)  # 11 // 3 = 3: the last window is 5 wide
    assert torch.allclose(local_variance(small, (3, 3))[0, 1, 2, 2], small[0, 1, 6:, 6:].var())


def test_fmm_shares_one_layer_norm():
    block = FMM(8)
    assert sum(isinstance(m, torch.nn.LayerNorm) for m in block.modules()) == 1


def test_mhcb_heads_and_minimum_size():
    block = MHCB(8, num_heads=2).eval()
    assert [h.stride for h in block.heads] == [0, 4]
    with torch.no_grad():
        assert block(torch.randn(1, 8, 7, 7)).shape == (1, 8, 7, 7)
        with pytest.raises(RuntimeError):
            block(torch.randn(1, 8, 6, 6))


def test_lpf_large_kernel_keeps_the_size_and_needs_even_width():
    block = LPF(8).eval()
    with torch.no_grad():
        assert block(torch.randn(1, 8, 9, 13)).shape == (1, 8, 9, 13)
    with pytest.raises(SpecError, match="channels % 2 == 0"):
        ArchSpec.from_dict({"scale": 4, "channels": 9, "body": [{"block": "lpf"}]})


def test_input_skip_mode_is_left_out_of_the_identity_at_its_default():
    base = {"scale": 4, "channels": 8, "body": [{"block": "conv"}], "input_skip": True}
    bicubic = ArchSpec.from_dict(base)
    assert "input_skip_mode" not in bicubic.to_dict()
    assert ArchSpec.from_dict({**base, "input_skip_mode": "bicubic"}).arch_id() == \
        bicubic.arch_id()
    bilinear = ArchSpec.from_dict({**base, "input_skip_mode": "bilinear"})
    assert bilinear.arch_id() != bicubic.arch_id()
    with pytest.raises(SpecError, match="input_skip_mode"):
        ArchSpec.from_dict({**base, "input_skip_mode": "nearest"})


def test_bsconv_input_copies_equal_a_summed_pointwise_kernel():
    unit = BSConvU(3, 8, input_copies=4).eval()
    x = torch.randn(1, 3, 9, 9)
    folded = sum(unit.pw.weight[:, 3 * k:3 * k + 3] for k in range(4))
    with torch.no_grad():
        expected = unit.dw(F.conv2d(x, folded))
        assert torch.allclose(unit(x), expected, atol=1e-5)
    assert _count(unit) == 12 * 8 + 8 * 9 + 8


def test_fourier_attention_with_a_zero_mlp_is_the_identity_gate():
    attention = FourierAttention(8).eval()
    with torch.no_grad():
        attention.conv3.weight.zero_()
        attention.conv3.bias.zero_()
        x = torch.randn(1, 8, 10, 7)  # odd width: irfft needs the original size
        assert torch.allclose(attention(x), x * x, atol=1e-5)


def test_lkfb_parameter_count_by_hand():
    c, h = 28, 14
    partial = h * 25 + h + c * c  # depthwise 5x5 on half the channels, bias-free 1x1
    expected = (3 * (c * h + h) + 3 * partial + (c * h + h * 9 + h) + (2 * c * c + c)
                + (c * h + h + h * h + h + h * c + c) + (c * c + c) + 2 * c)
    assert _count(LKFB(c)) == expected


def test_aggregate_fusion_activation_and_last_conv_unit_are_spec_options():
    base = {"scale": 4, "channels": 8, "body": [{"block": "conv", "repeat": 2}],
            "fusion": "aggregate"}
    plain = ArchSpec.from_dict(base)
    gelu = build_model(ArchSpec.from_dict({**base, "fusion": {"type": "aggregate", "act": "gelu"},
                                           "last_conv_unit": "bsconv"}))
    assert isinstance(gelu.fusion.act, torch.nn.GELU) and isinstance(gelu.last_conv, BSConvU)
    assert "last_conv_unit" not in plain.to_dict()
    with pytest.raises(SpecError, match="fusion.act"):
        ArchSpec.from_dict({**base, "fusion": {"type": "aggregate", "act": "tanh"}})


def test_simple_safmb_parameter_count_by_hand_and_split_rule():
    c, s, hidden = 40, 12, 60
    expected = c * s * 9 + c * (c - s) * 9 + s * 9 + s * s + c * c + c * hidden + hidden * c
    block = SimpleSAFMB(c, split_channels=s, ffn_scale=1.5)
    assert _count(block) == expected
    assert all(m.bias is None for m in block.modules() if isinstance(m, torch.nn.Conv2d))
    with pytest.raises(SpecError, match="split_channels < channels"):
        ArchSpec.from_dict({"scale": 4, "channels": 12,
                            "body": [{"block": "simple_safmb", "args": {"split_channels": 12}}]})


def test_spab_fourth_conv_carries_the_attention():
    block = SPAB(6, num_convs=4, act="lrelu0.1").eval()
    x = torch.randn(1, 6, 5, 5)
    with torch.no_grad():
        h = F.leaky_relu(block.conv2(F.leaky_relu(block.conv1(x), 0.1)), 0.1)
        f4 = block.extra_convs[0](F.leaky_relu(block.conv3(h), 0.1))
        assert torch.allclose(block(x), (f4 + x) * (torch.sigmoid(f4) - 0.5), atol=1e-6)
    assert len(SPAB(6).extra_convs) == 0 and not list(SPAB(6).extra_convs.parameters())


def test_bias_free_esa_and_pointwise_unit():
    from search_space.blocks.esa import ESA
    from search_space.registry import build_conv

    assert all(m.bias is None for m in ESA(16, esa_channels=4, variant="slim", bias=False)
               .modules() if isinstance(m, torch.nn.Conv2d))
    assert build_conv({"type": "pointwise", "bias": False}, 4, 4).bias is None


def test_separable_bsconv_is_reflect_padded_and_strides_twice():
    unit = SeparableBSConvU(4, 6, stride=2).eval()
    x = torch.randn(1, 4, 29, 30)
    with torch.no_grad():
        h = F.conv2d(x, unit.pw.weight)
        h = F.conv2d(F.pad(h, (0, 0, 1, 1), mode="reflect"), unit.dw1.weight, unit.dw1.bias,
                     stride=2, groups=6)
        h = F.conv2d(F.pad(h, (1, 1, 0, 0), mode="reflect"), unit.dw2.weight, unit.dw2.bias,
                     stride=2, groups=6)
        out = unit(x)
    assert out.shape == (1, 6, 8, 8)  # ceil(ceil(29 / 2) / 2), ceil(ceil(30 / 2) / 2)
    assert torch.allclose(out, h, atol=1e-6)
    assert _count(unit) == 4 * 6 + 2 * (6 * 3 + 6)


def test_strided_local_variance_windows():
    x = torch.randn(1, 2, 8, 11)
    v = strided_local_variance(x)  # 7x7 windows, stride 3, reflect padding 1
    padded = F.pad(x, (1, 1, 1, 1), mode="reflect")
    assert v.shape == (1, 2, 2, 3)
    assert torch.allclose(v[0, 1, 1, 2], padded[0, 1, 3:10, 6:13].var(), atol=1e-6)


def test_eadb_parameter_count_by_hand():
    c, h, f = 28, 14, 7
    unit = lambda i, o: i * o + 2 * (o * 3 + o)  # noqa: E731  (bsconv_sep)
    esa = 2 * c + (c * f + f) + (f * f + f) + 10 * unit(f, f) + (f * c + c)
    ecca = (c * c + c) + (c * 1 + 1 + 1 * c + c) + (c * 9 + c)
    expected = 3 * (c * h + h) + 3 * unit(c, c) + unit(c, h) + (2 * c * c + c) + esa + ecca
    assert _count(EADB(c)) == expected


def test_eadb_minimum_size_is_a_clear_error_and_a_patch_check():
    from search_space.limits import min_input_problem

    block = EADB(16).eval()
    with torch.no_grad():
        assert block(torch.randn(1, 16, EADB_MIN_SIZE, 31)).shape == (1, 16, 29, 31)
        with pytest.raises(InputError, match="height and width >= 29"):
            block(torch.randn(1, 16, 28, 40))
    spec = get_anchor("msn").spec
    assert "height and width >= 29" in min_input_problem(spec, (24, 24))
    assert min_input_problem(spec, (32, 32)) is None
    with pytest.raises(SpecError, match="channels >= 16"):
        ArchSpec.from_dict({"scale": 4, "channels": 12, "body": [{"block": "eadb"}]})


def test_sum_fusion_is_one_pointwise_conv_on_the_summed_outputs():
    base = {"scale": 4, "channels": 8, "body": [{"block": "conv", "repeat": 3}]}
    seq = build_model(ArchSpec.from_dict(base)).eval()
    summed = build_model(ArchSpec.from_dict({**base, "fusion": "sum"})).eval()
    assert _count(summed) - _count(seq) == 8 * 8 + 8
    assert isinstance(summed.fusion.act, torch.nn.GELU)
    x = torch.randn(1, 8, 6, 7)
    with torch.no_grad():
        outs, h = [], x
        for block in summed.body:
            h = block(h)
            outs.append(h)
        expected = F.gelu(summed.fusion.conv(outs[0] + outs[1] + outs[2]))
        assert torch.allclose(summed.fusion(x, summed.body), expected, atol=1e-6)
    relu = build_model(ArchSpec.from_dict({**base, "fusion": {"type": "sum", "act": "relu"}}))
    assert isinstance(relu.fusion.act, torch.nn.ReLU)


def test_bsconv_reflect_padding_and_stride_are_unit_options():
    unit = BSConvU(4, 6, stride=2, padding_mode="reflect").eval()
    x = torch.randn(1, 4, 11, 12)
    with torch.no_grad():
        h = F.conv2d(x, unit.pw.weight)
        expected = F.conv2d(F.pad(h, (1, 1, 1, 1), mode="reflect"), unit.dw.weight, unit.dw.bias,
                            stride=2, groups=6)
        assert unit(x).shape == (1, 6, 6, 6)
        assert torch.allclose(unit(x), expected, atol=1e-6)
    base = {"scale": 4, "channels": 8, "body": [{"block": "conv"}]}
    model = build_model(ArchSpec.from_dict(
        {**base, "last_conv_unit": {"type": "bsconv", "padding_mode": "reflect"}}))
    assert model.last_conv.dw.padding_mode == "reflect"
    assert build_model(ArchSpec.from_dict({**base, "last_conv_unit": "bsconv"})) \
        .last_conv.dw.padding_mode == "zeros"
    with pytest.raises(SpecError, match="padding_mode"):
        ArchSpec.from_dict({**base, "last_conv_unit": {"type": "bsconv", "padding_mode": "edge"}})


def test_same_depthwise_pads_even_kernels_as_pytorch_same():
    conv = SameDepthwise(4, (5, 2)).eval()
    x = torch.randn(1, 4, 9, 10)
    with torch.no_grad():
        expected = torch.cat([F.conv2d(F.pad(x[:, i:i + 1], (0, 1, 2, 2)), conv.weight[i:i + 1])
                              for i in range(4)], 1)  # "same": nothing left, one pixel right
        assert torch.allclose(conv(x), expected, atol=1e-6)
    assert conv.same_pad == (0, 1, 2, 2) and SameDepthwise(4, (2, 5)).same_pad == (2, 2, 0, 1)


def test_pixels_first_layer_norm_is_the_same_norm():
    from search_space.blocks.safm import ChannelLayerNorm

    a, b = ChannelLayerNorm(6, eps=1e-5), ChannelLayerNorm(6, eps=1e-5, pixels_first=True)
    with torch.no_grad():
        for norm in (a, b):
            norm.weight.copy_(torch.arange(1.0, 7.0))
            norm.bias.fill_(0.5)
        x = torch.randn(2, 6, 5, 7)
        assert torch.allclose(a(x), b(x), atol=1e-5)
        assert b(x).shape == x.shape


def test_chained_depthwise_by_hand():
    chain = ChainedDepthwise(8, 4).eval()
    x = torch.randn(1, 8, 9, 11)
    convs = chain.convs
    with torch.no_grad():
        g = x.chunk(4, dim=1)
        s1 = F.gelu(convs[0](g[0]))
        s2 = F.gelu(convs[1](g[1] + s1))
        s3 = F.gelu(convs[2](g[2] + s2))
        s4 = F.gelu(convs[3][1](convs[3][0](g[3] + s3)))
        assert torch.allclose(chain(x), torch.cat([s1, s2, s3, s4], 1), atol=1e-6)
    assert [tuple(m.kernel_size) for m in chain.modules() if isinstance(m, torch.nn.Conv2d)] \
        == [(3, 3), (5, 3), (3, 5), (3, 3), (3, 3)]
    assert len(ChainedDepthwise(9, 3).convs) == 3


def test_fmdb_parameter_count_by_hand():
    c, h, f = 24, 12, 6
    chain4, chain3 = lambda w: 62 * w, lambda w: 42 * w  # noqa: E731  (depthwise with biases)
    mrconv = lambda n, chain: n * n + n + chain  # noqa: E731
    esa = ((c * f + f) + (f * f + f) + 4 * (f * f + 10 * f) + 4 * mrconv(f, chain3(f // 3))
           + (f * c + c))
    frb = (2 * c * c + 2 * c) + 10 * c + 2 * c + (c * c + c) + chain3(c // 3) + (c * c + c)
    rcca = 10 * c + (c + 1) + c + (c * 4 + 4 + 4 * c + c)
    ffn = 2 * c + 4 * c * c + 2 * 4 * c * 10 + 2 * c * c
    common = (3 * (c * h + h) + 3 * mrconv(c, chain4(c // 4)) + (c * h + 10 * h)
              + (2 * c * c + c) + esa + ffn)
    assert _count(FMDB(c)) == common + frb
    assert _count(FMDB(c, attention="rcca")) == common + rcca


def test_fmdb_minimum_size_and_width_rule():
    from search_space.limits import min_input_problem

    block = FMDB(12).eval()
    with torch.no_grad():
        assert block(torch.randn(1, 12, FMDB_MIN_SIZE, 10)).shape == (1, 12, 9, 10)
        with pytest.raises(InputError, match="height and width >= 9"):
            block(torch.randn(1, 12, 8, 40))
    spec = get_anchor("fmdn").spec
    assert "height and width >= 9" in min_input_problem(spec, (8, 8))
    assert min_input_problem(spec, (16, 16)) is None
    with pytest.raises(SpecError, match="channels % 12 == 0"):
        ArchSpec.from_dict({"scale": 4, "channels": 16, "body": [{"block": "fmdb"}]})


def test_hff_refine_runs_the_last_blocks_after_the_fusion():
    base = {"scale": 4, "channels": 8, "body": [{"block": "conv", "repeat": 3}]}
    hff = build_model(ArchSpec.from_dict({**base, "fusion": "hff"})).eval()
    refined = build_model(ArchSpec.from_dict(
        {**base, "fusion": {"type": "hff", "refine": 1, "act": "gelu"}})).eval()
    assert _count(hff) - _count(refined) == 8 * 8  # a 1x1 conv over two outputs, not three
    assert isinstance(hff.fusion.act, torch.nn.Identity)
    assert isinstance(refined.fusion.act, torch.nn.GELU)
    x = torch.randn(1, 8, 6, 7)
    with torch.no_grad():
        b = refined.body
        h = refined.fusion.conv(torch.cat([b[0](x), b[1](b[0](x))], 1))
        assert torch.allclose(refined.fusion(x, b), F.gelu(b[2](h)), atol=1e-6)
    with pytest.raises(SpecError, match="refine < 3"):
        ArchSpec.from_dict({**base, "fusion": {"type": "hff", "refine": 3}})
