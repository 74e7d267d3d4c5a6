"""FMEN family: RRRB merge, HFAB against the official training-form computation, deploy structure,
and the official FMEN-S weights against the official output."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from search_space.anchors import WEIGHTS_DIR, get_anchor, load
from search_space.anchors.importers import get_importer
from search_space.blocks.hfab import HFAB
from search_space.blocks.rrrb import ERB, RRRB
from search_space.errors import InputError
from search_space.factory import build_model
from search_space.registry import build_conv
from search_space.reparam import is_deploy_form, reparameterize_model
from search_space.spec import ArchSpec
from tests.conftest import FIXTURES

PARITY = FIXTURES / "parity"


def _relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).abs().max() / b.abs().max()).item()


def _randomize_biases_(module: nn.Module, scale: float = 1.0) -> nn.Module:
    """Large conv biases: a wrong border value would show up far above float32 rounding."""
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.Conv2d):
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * scale)
    return module


def _randomize_bn_(module: nn.Module) -> nn.Module:
    """BN statistics far from identity (mean up to ~1, var 0.2..3, affine != (1, 0))."""
    g = torch.Generator().manual_seed(4)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=g))
                m.running_var.copy_(torch.rand(m.num_features, generator=g) * 2.8 + 0.2)
                m.weight.copy_(torch.rand(m.num_features, generator=g) * 1.5 + 0.25)
                m.bias.copy_(torch.randn(m.num_features, generator=g) * 0.5)
    return module


# ---------------------------------------------------------------------------------------- RRRB
@pytest.mark.parametrize("expand_ratio", [1, 2, 3])
def test_rrrb_merges_exactly_including_the_border(expand_ratio):
    block = _randomize_biases_(RRRB(8, expand_ratio=expand_ratio)).eval()
    # 5x4: every pixel but two touches the border, so a wrong padding value cannot hide.
    x = torch.randn(2, 8, 5, 4)
    with torch.no_grad():
        ref = block(x)
        expanded = block.expand_conv(x)
        zero_padded = (
            block.reduce_conv(block.fea_conv(F.pad(expanded, (1, 1, 1, 1))) + expanded) + x
        )
        deploy = reparameterize_model(block)
        out = deploy(x)
    assert _relative_error(out, ref) <= 1e-5
    # The bias padding matters here: zero padding would differ by far more than the tolerance.
    assert _relative_error(zero_padded, ref) > 1e-2
    assert isinstance(deploy.rep_conv, nn.Conv2d) and deploy.rep_conv.padding == (1, 1)
    assert [name for name, _ in deploy.named_children()] == ["rep_conv"]
    assert sum(p.numel() for p in deploy.parameters()) == 8 * 8 * 9 + 8


def test_rrrb_conv_unit_is_channel_preserving_only():
    assert isinstance(build_conv({"type": "rrrb", "expand_ratio": 3}, 16, 16), RRRB)
    with pytest.raises(InputError, match=r"in_channels == out_channels must hold.*16.*24"):
        build_conv("rrrb", 16, 24)


def test_spec_wide_rrrb_conv_gives_reparameterisable_training():
    spec = ArchSpec.from_dict(
        {
            "scale": 2,
            "channels": 8,
            "conv": "rrrb",
            "body": [{"block": "conv", "repeat": 2, "args": {"post_act": "relu"}}],
        }
    )
    model = _randomize_biases_(build_model(spec), 0.1).eval()
    assert all(isinstance(b.conv, RRRB) for b in model.body)
    x = torch.rand(1, 3, 9, 7)
    with torch.no_grad():
        ref = model(x)
        deploy = reparameterize_model(model)
        out = deploy(x)
    assert is_deploy_form(deploy)
    assert sum(p.numel() for p in deploy.body.parameters()) == 2 * (8 * 8 * 9 + 8)
    assert _relative_error(out, ref) <= 1e-5


# ---------------------------------------------------------------------------------------- HFAB
def _pad_border(t: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """Pad by one pixel whose value is ``values[c]`` per channel (written independently of
    ``search_space.layers.pad_with_values``)."""
    padded = F.pad(t, (1, 1, 1, 1))
    border = torch.ones_like(padded, dtype=torch.bool)
    border[:, :, 1:-1, 1:-1] = False
    return torch.where(border, values.view(1, -1, 1, 1), padded)


def _official_hfab_train_forward(h: HFAB, x: torch.Tensor, slope: float = 0.1) -> torch.Tensor:
    """TRAIN_FMEN's HFAB written out with functional ops on ``h``'s parameters (eval BN)."""

    def bn(t, m):
        return F.batch_norm(t, m.running_mean, m.running_var, m.weight, m.bias, False, 0.0, m.eps)

    def bn_shift(m):
        return m.bias - m.running_mean * m.weight / (m.running_var + m.eps).sqrt()

    def rrrb(t, r):
        e = F.conv2d(t, r.expand_conv.weight, r.expand_conv.bias)
        y = F.conv2d(_pad_border(e, r.expand_conv.bias), r.fea_conv.weight, r.fea_conv.bias) + e
        return F.conv2d(y, r.reduce_conv.weight, r.reduce_conv.bias) + t

    a = _pad_border(bn(x, h.bn1), bn_shift(h.bn1))
    a = F.leaky_relu(F.conv2d(a, h.squeeze.weight, h.squeeze.bias), slope)
    for erb in h.convs:
        a = rrrb(F.leaky_relu(rrrb(a, erb.conv1), slope), erb.conv2)
    a = _pad_border(bn(F.leaky_relu(a, slope), h.bn2), bn_shift(h.bn2))
    a = F.conv2d(a, h.excitate.weight, h.excitate.bias)
    return torch.sigmoid(bn(a, h.bn3)) * x


@pytest.mark.parametrize("num_erb", [1, 2])
def test_hfab_training_form_matches_the_official_computation(num_erb):
    block = _randomize_bn_(_randomize_biases_(HFAB(10, mid_channels=6, num_erb=num_erb), 0.3))
    block.eval()
    x = torch.randn(2, 10, 7, 6)
    with torch.no_grad():
        assert _relative_error(block(x), _official_hfab_train_forward(block, x)) <= 1e-6


def test_hfab_reparam_is_exact_with_nontrivial_bn_statistics():
    block = _randomize_bn_(_randomize_biases_(HFAB(12, mid_channels=8, num_erb=2), 0.3)).eval()
    x = torch.randn(2, 12, 6, 5) * 3
    with torch.no_grad():
        ref = block(x)
        deploy = reparameterize_model(block)
        out = deploy(x)
    assert _relative_error(out, ref) <= 1e-5
    # Sanity: the BN statistics are far from identity, so skipping their merge would be visible.
    for bn in (block.bn1, block.bn2, block.bn3):
        bn.reset_parameters()
    with torch.no_grad():
        assert _relative_error(block(x), ref) > 1e-2


def test_hfab_trains_with_batch_statistics_and_reaches_every_parameter():
    block = HFAB(8, mid_channels=4, num_erb=1).train()
    x = torch.randn(4, 8, 9, 9, requires_grad=True)
    block(x).square().mean().backward()
    missing = [n for n, p in block.named_parameters() if p.grad is None or not p.grad.abs().sum()]
    assert not missing
    assert block.bn1.num_batches_tracked.item() == 1


def test_hfab_rejects_a_zero_width_branch():
    with pytest.raises(InputError, match=r"mid_channels >= 1 must hold, got mid_channels=0"):
        ArchSpec.from_dict(
            {"scale": 4, "channels": 8, "body": [{"block": "hfab", "args": {"mid_channels": 0}}]}
        )


# ---------------------------------------------------------------------------------- deploy form
def _leaf_modules(module: nn.Module) -> list[nn.Module]:
    return [m for m in module.modules() if not list(m.children())]


@pytest.mark.parametrize("name, num_conv", [("fmen_s", 34), ("fmen", 44)])
def test_deploy_form_has_only_plain_convs_in_erb_and_hfab(name, num_conv):
    train = build_model(name)
    assert sum(isinstance(m, nn.BatchNorm2d) for m in train.modules()) == 3 * 5
    assert sum(isinstance(m, RRRB) for m in train.modules()) > 0
    deploy = build_model(name, deploy=True)
    assert is_deploy_form(deploy)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in deploy.modules())
    blocks = [b for b in deploy.body if isinstance(b, (ERB, HFAB))]
    assert len(blocks) == 9
    for block in blocks:
        for leaf in _leaf_modules(block):
            if isinstance(leaf, nn.Conv2d):
                assert leaf.kernel_size == (3, 3) and leaf.padding == (1, 1)
                assert leaf.stride == (1, 1) and leaf.groups == 1 and leaf.dilation == (1, 1)
            else:
                assert isinstance(leaf, nn.LeakyReLU) and leaf.negative_slope == 0.1
    # The NTIRE #conv of the official deploy form (anchors.json num_conv).
    assert sum(isinstance(m, nn.Conv2d) for m in deploy.modules()) == num_conv
    assert get_anchor(name).reference["num_conv"] == num_conv


def test_fmen_s_deploy_peak_memory_matches_the_official_code():
    """anchors.json: the official deploy form peaks at the HFAB sigmoid with the input image and
    four C-wide maps live (53,215,232 bytes at 256x256 = 4 * (3 + 4 * 50) * 256 * 256)."""
    from trainers.profiling import measure_peak_memory

    model = build_model("fmen_s", deploy=True)
    assert get_anchor("fmen_s").reference["peak_live_bytes_256"] == 4 * (3 + 4 * 50) * 256 * 256
    peak_live = 4 * (3 + 4 * 50) * 64 * 64
    param_bytes = 4 * sum(p.numel() for p in model.parameters())
    got = measure_peak_memory(model, input_hw=(64, 64), device="cpu")
    assert got == pytest.approx((param_bytes + peak_live) / 2**20, abs=1e-9)


# ------------------------------------------------------------------------------ official weights
def test_fmen_s_official_weights_match_the_official_output():
    model = load("fmen_s", weights="official")
    assert model.input_range == 255.0
    x = torch.load(PARITY / "fmen_s_img_input.pt", weights_only=True)
    expected = torch.load(PARITY / "fmen_s_img_output.pt", weights_only=True)
    with torch.no_grad():
        out = model(x)
    assert out.shape == expected.shape == (1, 3, 192, 192)
    assert (out - expected).abs().max().item() <= 1e-5 * 255

    def to_uint8(t):
        return t.clamp(0, 255).round()

    assert (to_uint8(out) == to_uint8(expected)).float().mean().item() >= 0.999


def _official_state() -> dict[str, torch.Tensor]:
    path = WEIGHTS_DIR / get_anchor("fmen_s").official["weights"]
    return torch.load(path, map_location="cpu", weights_only=True)


def test_importer_accepts_the_authors_naming_and_rejects_a_missing_tensor():
    importer = get_importer("fmen_s")
    model = build_model("fmen_s", deploy=True)
    team03 = _official_state()
    authors = {
        "module." + k.replace("basic_blocks.", "ERBs.").replace("hfabs.", "HFABs."): v
        for k, v in team03.items()
    }
    a, b = importer(team03, model), importer(authors, model)
    assert a.keys() == b.keys() == model.state_dict().keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    del team03["hfabs.3.excitate.bias"]
    with pytest.raises(InputError, match="hfabs.3.excitate.bias"):
        importer(team03, model)
