"""ESA variants, SRN's NRB, RLFN's RLFB, and the rlfn / srn_s_ntire23 official-weight parity."""

from __future__ import annotations

import pytest
import torch

from search_space.anchors import get_anchor, load
from search_space.anchors.importers import get_importer
from search_space.blocks.esa import ESA, ESA_MIN_SIZE, ESA_VARIANTS
from search_space.blocks.nrb import NRB
from search_space.blocks.rlfb import RLFB
from search_space.errors import InputError, SpecError
from search_space.factory import build_model
from search_space.spec import ArchSpec
from tests.conftest import FIXTURES


def _count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _zero_(module: torch.nn.Module) -> torch.nn.Module:
    with torch.no_grad():
        for p in module.parameters():
            p.zero_()
    return module


# ----------------------------------------------------------------------------- parity
@pytest.mark.parametrize(
    "anchor, fixture", [("rlfn", "rlfn_cut"), ("srn_s_ntire23", "srn_ntire2023")]
)
def test_official_weights_match_official_output(anchor, fixture):
    """48x48 patch of Set5 baby (x4 LR, 0..255) through the official model vs through ours."""
    model = load(anchor, weights="official")
    x = torch.load(FIXTURES / "parity" / f"{fixture}_img_input.pt", weights_only=True)
    expected = torch.load(FIXTURES / "parity" / f"{fixture}_img_output.pt", weights_only=True)
    with torch.no_grad():
        out = model(x)
    rng = get_anchor(anchor).spec.input_range
    assert rng == 255.0
    assert out.shape == expected.shape == (1, 3, 192, 192)
    assert (out - expected).abs().max().item() <= 1e-5 * rng

    def to_uint8(t: torch.Tensor) -> torch.Tensor:
        return (t.clamp(0, rng) / rng * 255).round()

    assert (to_uint8(out) == to_uint8(expected)).float().mean().item() >= 0.999


@pytest.mark.parametrize("anchor", ["rlfn", "srn_s_ntire23"])
def test_peak_live_memory_equals_official_code(anchor):
    """Tensor lifetimes mirror the official forward, so the peak of live storage at 256x256
    (meta-device replay of the dispatch-level tracker) is the official model's, to the byte."""
    from trainers.memory import estimate_peak_live_bytes

    expected = get_anchor(anchor).reference["peak_live_bytes_256"]
    assert estimate_peak_live_bytes(load(anchor), (256, 256)) == expected


def test_importer_is_strict_and_strips_module_prefix():
    model = build_model(get_anchor("srn_s_ntire23").spec, deploy=True)
    official = {f"module.{k}": v for k, v in _official_srn_like(model).items()}
    mapped = get_importer("srn_s_ntire23")(official, model)
    assert set(mapped) == set(model.state_dict())
    official.pop("module.recon_trunk.2.ESA.conv3.bias")
    with pytest.raises(InputError, match=r"recon_trunk\.2\.ESA\.conv3\.bias"):
        get_importer("srn_s_ntire23")(official, model)


def _official_srn_like(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Random tensors under the official SRN key names, shaped like our model's."""
    renamed = {}
    for key, value in model.state_dict().items():
        key = key.replace("body.", "recon_trunk.").replace(".esa.", ".ESA.")
        renamed[key.replace("tail.conv.", "tail.")] = torch.randn_like(value)
    return renamed


def test_official_weights_only_at_x4():
    with pytest.raises(InputError, match="only at x4"):
        load("rlfn", scale=2, weights="official")


# ----------------------------------------------------------------------------- ESA
def test_esa_variant_parameter_counts():
    # rfdn at C=50, f=C//4=12: conv1 50*12+12, conv_f 12*12+12, conv2/conv_max/conv3/conv3_
    # 4 x (9*12*12+12), conv4 12*50+50.
    assert _count(ESA(50, variant="rfdn")) == 612 + 156 + 4 * 1308 + 650 == 6650
    # rlfn at C=46, f=16: conv1 46*16+16, conv_f 16*16+16, conv2/conv3 2 x (9*16*16+16),
    # conv4 16*46+46.
    assert _count(ESA(46, esa_channels=16, variant="rlfn")) == 752 + 272 + 2 * 2320 + 782 == 6446
    # slim at C=64, f=16: no conv_f; conv1 64*16+16, conv2/conv3 2 x 2320, conv4 16*64+64.
    assert _count(ESA(64, esa_channels=16, variant="slim")) == 1040 + 2 * 2320 + 1088 == 6768


@pytest.mark.parametrize("variant", ESA_VARIANTS)
def test_esa_minimum_input_size(variant):
    esa = ESA(16, variant=variant)
    assert ESA_MIN_SIZE == 15
    assert esa(torch.rand(1, 16, 15, 15)).shape == (1, 16, 15, 15)
    assert esa(torch.rand(1, 16, 15, 41)).shape == (1, 16, 15, 41)
    for shape in ((14, 40), (40, 14)):
        with pytest.raises(
            InputError,
            match=r"height and width >= 15 must hold.*got "
            f"{shape[0]}x{shape[1]}",
        ):
            esa(torch.rand(1, 16, *shape))


def test_esa_slim_skip_is_identity_and_rlfn_skip_is_a_conv():
    """conv3 zeroed: gate = sigmoid(conv4(c1)) for slim, sigmoid(conv4(conv_f(c1))) for rlfn."""
    x = torch.rand(1, 8, 20, 20)
    slim = ESA(8, esa_channels=4, variant="slim")
    with torch.no_grad():
        _zero_(slim.conv3)
        gate = torch.sigmoid(slim.conv4(slim.conv1(x)))
        assert torch.allclose(slim(x), x * gate, atol=1e-6)
        rlfn = ESA(8, esa_channels=4, variant="rlfn")
        _zero_(rlfn.conv3)
        gate = torch.sigmoid(rlfn.conv4(rlfn.conv_f(rlfn.conv1(x))))
        assert torch.allclose(rlfn(x), x * gate, atol=1e-6)


# ----------------------------------------------------------------------------- NRB / RLFB
def test_nrb_and_rlfb_parameter_counts():
    # NRB at C=64: two 3x3 convs 2 x (9*64*64+64) + slim ESA 6768.
    assert _count(NRB(64)) == 2 * 36928 + 6768 == 80624
    # RLFB at C=46, m=48: 3x3 46->48, 48->48, 48->46, 1x1 46->46, rlfn ESA f=16.
    assert _count(RLFB(46, mid_channels=48)) == 19920 + 20784 + 19918 + 2162 + 6446 == 69230
    assert _count(RLFB(32, esa="none")) == 3 * (9 * 32 * 32 + 32) + 32 * 32 + 32


def test_nrb_has_no_residual_path():
    """All weights zero: an NRB outputs a constant (0 * gate), not x; residual=True gives x."""
    x = torch.rand(2, 16, 18, 21) + 1.0
    with torch.no_grad():
        out = _zero_(NRB(16))(x)
        assert torch.count_nonzero(out) == 0
        assert torch.equal(_zero_(NRB(16, residual=True))(x), x)


def test_rlfb_has_its_inner_residual():
    """3x3 convs zeroed, 1x1 conv = identity, no ESA: the block passes x through its skip."""
    block = RLFB(12, mid_channels=20, esa="none")
    x = torch.rand(1, 12, 9, 11)
    with torch.no_grad():
        for conv in (block.conv1, block.conv2, block.conv3):
            _zero_(conv)
        _zero_(block.conv_out).weight.copy_(torch.eye(12).view(12, 12, 1, 1))
        assert torch.allclose(block(x), x)


def test_spec_rejects_bad_esa_options():
    spec = {
        "scale": 4,
        "channels": 2,
        "body": [
            {"block": "rlfb", "args": {"esa": "rlfn", "esa_channels": 0}},
            {"block": "nrb", "args": {"esa": "slimm"}},
        ],
    }
    with pytest.raises(SpecError) as err:
        ArchSpec.from_dict(spec)
    assert err.value.problems == [
        "body[0].args: `esa_channels >= 1` must hold (0 means channels // 4), got "
        "esa_channels=0, channels=2",
        "body[1].args.esa: 'slimm' not allowed; allowed: none, rfdn, rlfn, slim "
        "(did you mean 'slim'?)",
    ]


def test_spec_activation_overrides_block_act():
    spec = get_anchor("srn_s_ntire23").spec
    model = build_model(ArchSpec.from_dict({**spec.to_dict(), "activation": "relu"}))
    assert all(isinstance(b.act, torch.nn.ReLU) for b in model.body)
    assert all(b.act.negative_slope == 0.1 for b in build_model(spec).body)
