"""Registry-wide block checks: a new block is tested here without editing this file."""

from __future__ import annotations

import copy
import inspect

import pytest
import torch

import search_space.blocks  # noqa: F401  (registers the catalogue before parametrisation)
from search_space.registry import get_block, get_conv_unit, list_blocks, list_conv_units
from search_space.reparam import is_deploy_form, reparameterize_model
from tests.conftest import randomize_

CHANNELS = 32


def _size(name: str, height: int, width: int) -> tuple[int, int]:
    """The test input size, raised to the block's declared ``min_input_size`` (EADB: 29)."""
    least = getattr(get_block(name).cls, "min_input_size", 0)
    return max(height, least), max(width, least)


def _channels(name: str) -> int:
    """The test width, raised to a multiple of the block's declared ``channel_multiple`` (FMDB:
    12, so 36)."""
    multiple = getattr(get_block(name).cls, "channel_multiple", 1)
    return -(-CHANNELS // multiple) * multiple


def _relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).abs().max() / b.abs().max().clamp_min(1e-12)).item()


@pytest.mark.parametrize("name", list_blocks())
def test_block_shape_backward_and_reparam(name):
    channels = _channels(name)
    block = get_block(name).cls(channels)
    x = torch.rand(2, channels, *_size(name, 24, 19), requires_grad=True)
    y = block(x)
    assert y.shape == x.shape
    y.square().mean().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()

    randomize_(block).eval()
    with torch.no_grad():
        ref = block(x)
        deploy = reparameterize_model(block)
        assert is_deploy_form(deploy)
        assert _relative_error(deploy(x), ref) <= 1e-5
        again = reparameterize_model(deploy)  # idempotent
        assert _relative_error(again(x), ref) <= 1e-5


@pytest.mark.parametrize("unit", list_conv_units())
def test_conv_unit_reparam(unit):
    module = get_conv_unit(unit).fn(CHANNELS, CHANNELS)
    x = torch.rand(1, CHANNELS, 17, 23)
    randomize_(module).eval()
    with torch.no_grad():
        ref = module(x)
        assert ref.shape == x.shape
        deploy = reparameterize_model(module)
        assert is_deploy_form(deploy)
        assert _relative_error(deploy(x), ref) <= 1e-5


@pytest.mark.parametrize("name", list_blocks())
def test_block_contract(name):
    """Every block: a docstring with Args, channels first, keyword-only options, valid choices."""
    entry = get_block(name)
    doc = inspect.getdoc(entry.cls) or ""
    assert doc and "Args:" in doc, f"{name}: docstring with Args missing"
    params = list(inspect.signature(entry.cls).parameters.values())
    assert params[0].name == "channels"
    assert all(p.kind == p.KEYWORD_ONLY for p in params[1:]), \
        f"{name}: options must be keyword-only"
    for option, allowed in entry.choices.items():
        default = entry.options()[option].default
        assert default in allowed, f"{name}.{option}: default {default!r} not in choices"
    channels = _channels(name)
    for option, allowed in entry.choices.items():
        for value in allowed:  # every allowed choice builds and runs
            block = entry.cls(channels, **{option: value})
            size = _size(name, 20, 20)
            assert block(torch.rand(1, channels, *size)).shape == (1, channels, *size)


def test_deepcopy_is_independent():
    block = get_block("esa").cls(CHANNELS)
    clone = copy.deepcopy(block)
    assert clone.conv1.weight.data_ptr() != block.conv1.weight.data_ptr()
