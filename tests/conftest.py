"""Shared fixtures: tiny specs, seeded RNG, paths to the shipped test fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(autouse=True)
def _seeded():
    torch.manual_seed(0)
    torch.set_num_threads(2)


@pytest.fixture
def tiny_spec():
    from search_space.spec import ArchSpec

    return ArchSpec.from_dict({
        "scale": 2, "channels": 8,
        "body": [{"block": "conv", "repeat": 2, "args": {"post_act": "lrelu0.1"}}],
    })


def randomize_(model: torch.nn.Module) -> torch.nn.Module:
    """Non-trivial weights and BN statistics: a reparam bug cannot hide behind identity BN."""
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.2)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.2)
            elif isinstance(m, torch.nn.Conv2d) and m.bias is not None:
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.05)
    return model


# ---------------------------------------------------------------------------- counting helpers
# LR sizes for a 1280x720 output, as the papers' Mult-Adds (x3: 426x240, rounded down).
LR_720P = {2: (360, 640), 3: (240, 426), 4: (180, 320)}


def param_count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def conv_params(cin: int, cout: int, k: int, groups: int = 1) -> int:
    """Weights and biases of a k x k conv cin -> cout."""
    return cin // groups * cout * k * k + cout


def mult_adds_720p_g(spec) -> float:
    """Mult-Adds (G) of ``spec`` for a 720p output, shapes only (meta device)."""
    from torch.utils.flop_counter import FlopCounterMode

    from search_space.factory import build_model

    with torch.device("meta"):
        model = build_model(spec)
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            model(torch.empty(1, 3, *LR_720P[spec.scale]))
    return counter.get_total_flops() / 2 / 1e9
