"""RFDB, IMDB and CCA, and the RFDN/IMDN anchors: official-weight parity, CCA numerics, channel
splits and spec validation."""

from __future__ import annotations

import math

import pytest
import torch

from search_space.anchors import get_anchor, load
from search_space.blocks.cca import CCA, contrast_plus_mean
from search_space.blocks.imdb import IMDB
from search_space.blocks.rfdb import RFDB
from search_space.errors import SpecError
from search_space.reparam import is_deploy_form, reparameterize_model
from search_space.spec import ArchSpec
from tests.conftest import FIXTURES, randomize_
from trainers.memory import track_peak_live_bytes


@pytest.mark.parametrize("anchor, fixture", [("e_rfdn", "erfdn"), ("imdn_ntire", "imdn_baseline")])
def test_official_weights_reproduce_official_outputs(anchor, fixture):
    model = load(anchor, scale=4, weights="official")
    x = torch.load(FIXTURES / "parity" / f"{fixture}_img_input.pt", weights_only=True)
    expected = torch.load(FIXTURES / "parity" / f"{fixture}_img_output.pt", weights_only=True)
    with torch.no_grad():
        out = model(x)
    r = model.input_range
    assert out.shape == expected.shape == (1, 3, 192, 192)
    assert (out - expected).abs().max().item() <= 1e-5 * r

    def to_uint8(t: torch.Tensor) -> torch.Tensor:
        return (t.clamp(0, r) / r * 255).round()

    assert (to_uint8(out) == to_uint8(expected)).float().mean().item() >= 0.999


# e_rfdn guards the step-by-step RFDB forward; the IMDN forms are exact too but slow-marked
# to keep the default suite short (each is a full 256x256 forward under the tracker).
@pytest.mark.parametrize(
    "anchor",
    [
        "e_rfdn",
        pytest.param("imdn", marks=pytest.mark.slow),
        pytest.param("imdn_ntire", marks=pytest.mark.slow),
    ],
)
def test_peak_live_memory_matches_the_official_code(anchor):
    """Tensor lifetimes as in the official forwards (anchors.json, 1x3x256x256, CPU)."""
    expected = get_anchor(anchor).reference["peak_live_bytes_256"]
    peak, _ = track_peak_live_bytes(load(anchor, scale=4), (256, 256))
    assert abs(peak - expected) <= 0.001 * expected


def _count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _two_channel_image() -> torch.Tensor:
    # channel 0: 1, 2, 3, 4 -> mean 2.5, population variance 1.25
    # channel 1: 2, 2, 6, 6 -> mean 4,   population variance 4
    return torch.tensor([[[[1.0, 2.0], [3.0, 4.0]], [[2.0, 2.0], [6.0, 6.0]]]])


def test_contrast_is_population_std_plus_mean():
    stats = contrast_plus_mean(_two_channel_image()).flatten()
    torch.testing.assert_close(stats, torch.tensor([2.5 + math.sqrt(1.25), 4.0 + 2.0]))


def test_cca_gates_each_channel_by_its_statistics():
    cca = CCA(2, reduction=2)  # one hidden channel
    with torch.no_grad():
        cca.squeeze.weight.copy_(torch.tensor([-1.0, 1.0]).view(1, 2, 1, 1))
        cca.squeeze.bias.zero_()
        cca.excite.weight.copy_(torch.tensor([1.0, -1.0]).view(2, 1, 1, 1))
        cca.excite.bias.copy_(torch.tensor([0.0, 0.5]))
    x = _two_channel_image()
    hidden = max(0.0, 6.0 - (2.5 + math.sqrt(1.25)))  # relu(-stat0 + stat1) = 2.381966
    gate = [1 / (1 + math.exp(-hidden)), 1 / (1 + math.exp(hidden - 0.5))]
    expected = x * torch.tensor(gate).view(1, 2, 1, 1)
    torch.testing.assert_close(cca(x), expected)


def test_cca_gradient_is_finite_on_a_constant_channel():
    x = torch.rand(1, 16, 8, 8)
    x[:, 3] = 0.7  # zero variance: sqrt'(0) would be infinite
    x.requires_grad_(True)
    CCA(16)(x).sum().backward()
    assert torch.isfinite(x.grad).all()


def test_imdb_channel_splits_match_the_official_convs():
    # NTIRE baseline / paper at C=64: d = 16, remaining 48; conv2/conv3 take 48 and give 64.
    block = IMDB(64, cca=False)
    shapes = [tuple(c.weight.shape) for c in block.convs]
    assert shapes == [(64, 64, 3, 3), (64, 48, 3, 3), (64, 48, 3, 3)]
    assert tuple(block.last.weight.shape) == (16, 48, 3, 3)
    assert tuple(block.fuse.weight.shape) == (64, 64, 1, 1)
    assert not any(isinstance(m, CCA) for m in block.modules())
    # Paper form adds CCA on the 4 * 16 concatenated channels (bottleneck 64 -> 4 -> 64).
    paper = IMDB(64, cca=True)
    assert tuple(paper.cca.squeeze.weight.shape) == (4, 64, 1, 1)
    # distill_ratio 0.5 at C=32: d = 16, remaining 16, concat 64 -> 1x1 back to 32.
    half = IMDB(32, distill_ratio=0.5)
    assert tuple(half.convs[1].weight.shape) == (32, 16, 3, 3)
    assert tuple(half.last.weight.shape) == (16, 16, 3, 3)
    assert tuple(half.fuse.weight.shape) == (32, 64, 1, 1)


def test_imdb_paper_form_applies_cca_before_the_fusion_conv():
    block = randomize_(IMDB(32, cca=True)).eval()
    x = torch.rand(1, 32, 12, 12)
    lrelu = torch.nn.LeakyReLU(0.05)
    with torch.no_grad():
        d1, r1 = torch.split(lrelu(block.convs[0](x)), (8, 24), dim=1)
        d2, r2 = torch.split(lrelu(block.convs[1](r1)), (8, 24), dim=1)
        d3, r3 = torch.split(lrelu(block.convs[2](r2)), (8, 24), dim=1)
        concat = torch.cat([d1, d2, d3, block.last(r3)], dim=1)
        expected = block.fuse(block.cca(concat)) + x
        torch.testing.assert_close(block(x), expected)


def test_rfdb_distilled_widths_and_esa():
    block = RFDB(50)
    assert [tuple(c.weight.shape) for c in block.distill] == [(25, 50, 1, 1)] * 3
    assert tuple(block.last.weight.shape) == (25, 50, 3, 3)
    assert tuple(block.fuse.weight.shape) == (50, 100, 1, 1)
    assert tuple(block.esa.conv1.weight.shape) == (12, 50, 1, 1)  # f = 50 // 4
    assert isinstance(RFDB(50, esa="none").esa, torch.nn.Identity)


def test_rfdb_with_a_reparameterisable_conv_unit_deploys_exactly():
    block = randomize_(RFDB(32, conv="rrrb")).eval()
    x = torch.rand(1, 32, 20, 20)
    with torch.no_grad():
        deploy = reparameterize_model(block)
        assert is_deploy_form(deploy)
        torch.testing.assert_close(deploy(x), block(x), rtol=1e-5, atol=1e-5)
    # each RRRB folds into one 3x3 conv: the deploy form is as small as the plain block
    assert _count(deploy) == _count(RFDB(32)) < _count(block)


def _spec(channels: int, block: str, **args) -> dict:
    return {"scale": 4, "channels": channels, "body": [{"block": block, "args": args}]}


@pytest.mark.parametrize(
    "channels, args, message",
    [
        (
            51,
            {},
            r"body\[0\]\.args: `channels \* distill_ratio` must be a whole number >= 1, "
            r"got channels=51, distill_ratio=0\.5",
        ),
        (50, {"distill_ratio": 0.25}, r"got channels=50, distill_ratio=0\.25"),
        (2, {}, r"body\[0\]\.args: esa: .*channels=2"),  # ESA width 2 // 4 = 0
    ],
)
def test_rfdb_rejects_channels_it_cannot_split(channels, args, message):
    with pytest.raises(SpecError, match=message):
        ArchSpec.from_dict(_spec(channels, "rfdb", **args))


def test_imdb_rejects_a_cca_without_bottleneck_channels():
    with pytest.raises(SpecError, match=r"cca: `4 \* channels \* distill_ratio >= 16` must hold"):
        ArchSpec.from_dict(_spec(12, "imdb"))
    ArchSpec.from_dict(_spec(12, "imdb", cca=False))  # the KAIR form has no CCA: valid
