"""Older and smaller reference models: FSRCNN (Y only, deconvolution), CARN / CARN-M (cascading
blocks, multi-scale tail) and the ICLR'19 [rg+u] variants (ERUM tail built from the conv unit).

None has official weights; each is pinned by its published parameter count (within 2% at x4) and,
where the paper prints them, its Mult-Adds. Counts are written out by hand where they are short.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from search_space.anchors import ANCHOR_DIR, get_anchor
from search_space.blocks.carn import CascadingBlock, EResidualBlock
from search_space.blocks.mobile import Bottleneck, DepthwiseSeparable
from search_space.builder import SRNet, YOnlySRNet
from search_space.errors import SpecError
from search_space.factory import build_model
from search_space.fusion import Cascade
from search_space.layers import rgb_to_ycbcr, ycbcr_to_rgb
from search_space.reparam import reparameterize_model
from search_space.spec import ArchSpec
from search_space.upsamplers import CARNTail, DeconvTail, ERUMTail
from tests.conftest import LR_720P, conv_params, mult_adds_720p_g, param_count, randomize_
from trainers.metrics import rgb_to_y

# name: (exact params of the spec at x4, published K at x4, published Set5 x4 PSNR)
NEW_ANCHORS = {
    "fsrcnn": (12_809, 13, 30.72),
    "carn": (1_591_939, 1592, 32.13),
    "carn_m": (414_787, 412, 31.92),
    "blm1_e_rgu": (158_123, 156, 31.47),
    "blrn_r2_e_rgu": (425_963, 424, 31.84),
}


# ---------------------------------------------------------------------------- every new anchor
@pytest.mark.parametrize("name", NEW_ANCHORS)
def test_params_within_2_percent_of_published_at_x4(name):
    exact, published_k, _ = NEW_ANCHORS[name]
    anchor = get_anchor(name)
    params = param_count(build_model(anchor.spec.with_scale(4), deploy=True))
    assert params == exact == anchor.reference["params"]["x4"]
    assert anchor.published["params_k"] == published_k
    assert abs(params - 1000 * published_k) <= 0.02 * 1000 * published_k


@pytest.mark.parametrize("name", NEW_ANCHORS)
def test_published_set5_x4_and_its_source_are_recorded(name):
    anchor = get_anchor(name)
    x4 = anchor.published["results"]["x4"]
    assert x4["Set5"]["psnr"] == NEW_ANCHORS[name][2]
    assert 0 < x4["Set5"]["ssim"] < 1 and x4["Set14"]["psnr"] > 0
    assert "Table" in x4["source"] or "table" in x4["source"]


@pytest.mark.parametrize(
    "name", [*NEW_ANCHORS, "rcan_lite", "blm1", "blrn_r2"]
)
def test_anchor_files_cite_papers_not_the_development_checkout(name):
    text = (ANCHOR_DIR / f"{name}.yaml").read_text()
    assert "../shared" not in text and "/work/" not in text


def test_existing_iclr_anchors_record_their_table2_x4_rows():
    bl_e = get_anchor("rcan_lite").published["results_bl_e"]["x4"]
    assert (bl_e["model"], bl_e["params_k"], bl_e["Set5"]["psnr"]) == ("bl-e", 1154, 32.08)
    for name, model, params_k in (("blm1", "blm1-e[rg]", 413), ("blrn_r2", "blrn-e(r=2)[rg]", 612)):
        anchor = get_anchor(name)
        x4 = anchor.published["results"]["x4"]
        assert (x4["model"], x4["params_k"], x4["Set5"]["psnr"]) == (model, params_k, 32.02)
        assert abs(anchor.reference["params"]["x4"] - 1000 * params_k) <= 0.01 * 1000 * params_k


# ---------------------------------------------------------------------------- Y-only networks
def test_ycbcr_is_matlab_bt601_and_invertible():
    img = torch.randint(0, 256, (1, 3, 7, 9), dtype=torch.uint8)
    ycbcr = rgb_to_ycbcr(img.double(), 255.0)
    hwc = img[0].permute(1, 2, 0).numpy()
    assert np.array_equal(ycbcr[0, 0].round().clamp(0, 255).to(torch.uint8).numpy(), rgb_to_y(hwc))
    x = torch.rand(2, 3, 5, 6)
    assert torch.allclose(ycbcr_to_rgb(rgb_to_ycbcr(x)), x, atol=1e-6)
    grey = torch.full((1, 3, 2, 2), 0.5)
    assert torch.allclose(rgb_to_ycbcr(grey)[:, 1:], torch.full((1, 2, 2, 2), 128 / 255))


def test_fsrcnn_runs_on_y_and_keeps_the_chroma_bicubic():
    model = randomize_(build_model("fsrcnn")).eval()
    assert isinstance(model, YOnlySRNet)
    assert model.head.in_channels == 1 and model.head.kernel_size == (5, 5)
    assert model.tail.deconv.out_channels == 1
    x = torch.rand(1, 3, 11, 13)
    with torch.no_grad():
        out = model(x)
        ycbcr = rgb_to_ycbcr(x)
        luma = SRNet.forward(model, ycbcr[:, :1])  # the network itself, on Y
    assert out.shape == (1, 3, 44, 52)
    got = rgb_to_ycbcr(out)
    chroma = F.interpolate(ycbcr[:, 1:], scale_factor=4, mode="bicubic", align_corners=False)
    assert torch.allclose(got[:, :1], luma, atol=1e-5)
    assert torch.allclose(got[:, 1:], chroma, atol=1e-5)


def test_y_only_leaves_a_grey_image_grey():
    model = randomize_(build_model("fsrcnn").eval())
    grey = torch.rand(1, 1, 9, 10).expand(1, 3, 9, 10)
    with torch.no_grad():
        out = model(grey)
    # chroma stays exactly the bicubic of a constant 128/255: the output is grey again
    assert torch.allclose(rgb_to_ycbcr(out)[:, 1:], torch.full((1, 2, 36, 40), 128 / 255),
                          atol=1e-6)
    assert (out[:, 0] - out[:, 1]).abs().max() < 1e-5 and (out[:, 1] - out[:, 2]).abs().max() < 1e-5


def test_new_spec_fields_keep_old_arch_ids_and_round_trip():
    # arch_ids of two existing anchors, computed before y_only / head_kernel_size existed
    assert get_anchor("rcan_lite").spec.arch_id() == "ab422ce6b6b3"
    assert get_anchor("fmen_s").spec.arch_id() == "a37b42206542"
    assert "y_only" not in get_anchor("rlfn").spec.to_dict()
    spec = get_anchor("fsrcnn").spec
    assert spec.to_dict()["y_only"] is True and spec.to_dict()["head_kernel_size"] == 5
    assert ArchSpec.from_yaml(spec.to_yaml()) == spec


def test_y_only_and_head_kernel_errors_name_the_field():
    base = {"scale": 2, "channels": 8, "body": ["conv"], "y_only": True}
    with pytest.raises(SpecError, match=r"mean_shift: the DIV2K RGB mean does not apply"):
        ArchSpec.from_dict({**base, "mean_shift": True})
    with pytest.raises(SpecError, match=r"in_channels == 3 must hold, got in_channels=1"):
        ArchSpec.from_dict({**base, "in_channels": 1})
    with pytest.raises(SpecError, match=r"head_kernel_size: expected an odd kernel size, got 4"):
        ArchSpec.from_dict({**base, "head_kernel_size": 4})
    with pytest.raises(SpecError, match=r"y_only: expected true or false"):
        ArchSpec.from_dict({**base, "y_only": "yes"})


# ---------------------------------------------------------------------------- FSRCNN
def test_fsrcnn_count_by_hand():
    d, s, m = 56, 12, 4
    weights = 25 * d + d * s + m * 9 * s * s + s * d + 81 * d  # the paper's 12,464
    biases = d + s + m * s + d + 1
    prelu = d + s + m * s + d  # one slope per channel
    assert weights == 12_464
    for scale in (2, 3, 4):
        spec = get_anchor("fsrcnn").spec.with_scale(scale)
        assert param_count(build_model(spec)) == weights + biases + prelu == 12_809


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_fsrcnn_published_mult_adds_count_the_deconvolution_per_hr_pixel(scale):
    spec = get_anchor("fsrcnn").spec.with_scale(scale)
    ours = mult_adds_720p_g(spec)
    h, w = LR_720P[scale]
    deconv_per_lr_pixel = h * w * 56 * 81 / 1e9
    assert ours == pytest.approx(h * w * (7928 + 56 * 81) / 1e9, rel=1e-6)
    per_hr_pixel = ours - deconv_per_lr_pixel + scale * h * scale * w * 56 * 81 / 1e9
    published = get_anchor("fsrcnn").published["results"][f"x{scale}"]["mult_adds_g"]
    assert per_hr_pixel == pytest.approx(published, rel=0.01)


def test_deconv_tail_shape_and_weight_norm_fold():
    tail = DeconvTail(8, 3, 1, weight_norm=True)
    x = torch.rand(1, 8, 5, 7)
    with torch.no_grad():
        ref = tail(x)
        folded = reparameterize_model(tail)
        assert torch.allclose(folded(x), ref, atol=1e-6)
    assert ref.shape == (1, 1, 15, 21)
    assert param_count(tail) - param_count(folded) == 8  # one magnitude per input channel (dim 0)
    assert isinstance(folded.deconv, torch.nn.ConvTranspose2d)
    assert not torch.nn.utils.parametrize.is_parametrized(folded.deconv)


# ---------------------------------------------------------------------------- CARN / CARN-M
def test_cascade_matches_its_definition():
    blocks = torch.nn.ModuleList(torch.nn.Conv2d(4, 4, 3, padding=1) for _ in range(3))
    fuse = Cascade(4, 3)
    x = torch.rand(1, 4, 6, 6)
    c0 = o0 = x
    c1 = torch.cat([c0, blocks[0](o0)], 1)
    o1 = torch.relu(fuse.convs[0](c1))
    c2 = torch.cat([c1, blocks[1](o1)], 1)
    o2 = torch.relu(fuse.convs[1](c2))
    c3 = torch.cat([c2, blocks[2](o2)], 1)
    o3 = torch.relu(fuse.convs[2](c3))
    assert [c.in_channels for c in fuse.convs] == [8, 12, 16]
    assert torch.allclose(fuse(x, blocks), o3)


def test_carn_m_shares_one_residual_e_block_per_cascading_block():
    shared = CascadingBlock(64, residual="carn_erb", groups=4, shared=True)
    separate = CascadingBlock(64, residual="carn_erb", groups=4)
    erb = 2 * conv_params(64, 64, 3, groups=4) + conv_params(64, 64, 1)
    fusions = sum(conv_params(k * 64, 64, 1) for k in (2, 3, 4))
    assert param_count(EResidualBlock(64)) == erb == 22_720
    assert param_count(shared) == erb + fusions and param_count(separate) == 3 * erb + fusions
    calls = []
    shared.blocks[0].register_forward_hook(lambda *_: calls.append(1))
    shared(torch.rand(1, 64, 5, 5))
    assert len(calls) == 3


@pytest.mark.parametrize("name,groups", [("carn", 1), ("carn_m", 4)])
def test_carn_count_by_hand_and_multiscale_tail(name, groups):
    c = 64
    residual = (2 * conv_params(c, c, 3) if name == "carn"
                else 2 * conv_params(c, c, 3, groups) + conv_params(c, c, 1))
    per_block = (3 if name == "carn" else 1) * residual
    fusions = sum(conv_params(k * c, c, 1) for k in (2, 3, 4))
    branches = {2: conv_params(c, 4 * c, 3, groups), 3: conv_params(c, 9 * c, 3, groups),
                4: 2 * conv_params(c, 4 * c, 3, groups)}
    body = conv_params(3, c, 3) + 3 * (per_block + fusions) + fusions + conv_params(c, 3, 3)
    expected = body + sum(branches.values())
    for scale in (2, 3, 4):
        model = build_model(get_anchor(name).spec.with_scale(scale))
        assert param_count(model) == expected == NEW_ANCHORS[name][0]
    single_scale_x4 = body + branches[4]
    assert single_scale_x4 == {"carn": 1_111_875, "carn_m": 294_147}[name]


def test_carn_tail_runs_only_the_spec_scale_branch():
    tail = CARNTail(8, 4, groups=4).eval()
    x = torch.rand(1, 8, 6, 5)
    with torch.no_grad():
        ref = tail(x)
        for p in (*tail.branches["x2"].parameters(), *tail.branches["x3"].parameters()):
            p.zero_()
        assert torch.equal(tail(x), ref)
    assert ref.shape == (1, 3, 24, 20)
    assert tail.branches["x3"][0].groups == 4


@pytest.mark.parametrize("name,published", [("carn", (222.8, 118.9, 90.9)),
                                            ("carn_m", (None, None, 32.5))])
def test_carn_mult_adds_match_published(name, published):
    for scale, value in zip((2, 3, 4), published, strict=True):
        if value is not None:
            spec = get_anchor(name).spec.with_scale(scale)
            assert mult_adds_720p_g(spec) == pytest.approx(value, rel=5e-3)


# ---------------------------------------------------------------------------- ERUM, [rg+u]
def test_erum_tail_matches_its_definition():
    tail = randomize_(ERUMTail(4, 2, 3)).eval()
    x = torch.rand(1, 4, 5, 6)
    maps = []
    for erum in tail.stages[0]:
        h = x
        for _ in range(2):  # x2: each ERUM recurses twice, weights shared
            h = erum.conv_b(torch.relu(erum.conv_a(h)))
            maps.append(h)
    expected = tail.conv(F.pixel_shuffle(torch.cat(maps, 1), 2))
    with torch.no_grad():
        assert torch.allclose(tail(x), expected, atol=1e-6)
    assert len(ERUMTail(4, 4).stages) == 2 and len(ERUMTail(4, 3).stages[0]) == 3


# ICLR'19 Table 2, the "-e" models with plain ERUM convs: scale -> (params K, Mult-Adds G at 720p)
TABLE2_E = {
    "rcan_lite": {2: (1006, 265.3), 3: (1080, 156.3), 4: (1154, 135.5)},  # bl-e
    "blm1": {2: (265, 94.7), 3: (339, 80.6), 4: (413, 92.8)},  # blm1-e[rg]
    "blrn_r2": {2: (464, 140.5), 3: (538, 100.9), 4: (612, 104.3)},  # blrn-e(r=2)[rg]
}


@pytest.mark.parametrize("name", TABLE2_E)
def test_plain_erum_reproduces_the_table2_e_models(name):
    """The ERUM construction is pinned by these: counts (4 / 6 / 8 C -> C convs at x2 / x3 / x4)
    and Mult-Adds (each conv applied f times per x f stage)."""
    spec = replace(get_anchor(name).spec, upsampler="erum")
    for scale, (params_k, mult_adds) in TABLE2_E[name].items():
        params = param_count(build_model(spec.with_scale(scale)))
        assert abs(params - 1000 * params_k) <= 0.01 * 1000 * params_k
        assert mult_adds_720p_g(spec.with_scale(scale)) == pytest.approx(mult_adds, rel=5e-3)
    # same count as the anchor's own staged sub-pixel tail at x4 (and x2), not at x3
    reference = get_anchor(name).reference["params"]
    assert param_count(build_model(spec.with_scale(4))) == reference["x4"]
    assert param_count(build_model(spec.with_scale(2))) == reference["x2"]
    if name == "rcan_lite":
        assert param_count(build_model(spec.with_scale(3))) == 1_080_235


@pytest.mark.parametrize("name,unit", [("blm1_e_rgu", DepthwiseSeparable),
                                       ("blrn_r2_e_rgu", Bottleneck)])
def test_rgu_variants_match_table2_at_every_scale(name, unit):
    anchor = get_anchor(name)
    for scale in (2, 3, 4):
        spec = anchor.spec.with_scale(scale)
        model = build_model(spec)
        row = anchor.published["results"][f"x{scale}"]
        params = param_count(model)
        assert params == anchor.reference["params"][f"x{scale}"]
        assert abs(params - 1000 * row["params_k"]) <= 0.02 * 1000 * row["params_k"]
        assert mult_adds_720p_g(spec) == pytest.approx(row["mult_adds_g"], rel=5e-3)
        # the unit replaces every ERUM conv (2 per ERUM); the conv to RGB stays plain
        units = [m for m in model.tail.modules() if isinstance(m, unit)]
        assert len(units) == 2 * sum(len(stage) for stage in model.tail.stages)
        assert isinstance(model.tail.conv, torch.nn.Conv2d)
