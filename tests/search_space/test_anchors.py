"""Every anchor: exact parameter counts against the official code, builds at x2/x3/x4, runs on odd
sizes, and its deploy form equals its training form. Parametrised over the shipped anchors."""

from __future__ import annotations

import pytest
import torch

from search_space.anchors import get_anchor, list_anchors
from search_space.factory import build_model
from search_space.reparam import is_deploy_form, reparameterize_model
from tests.conftest import randomize_

ANCHORS = list_anchors()


def _count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name", ANCHORS)
def test_param_counts_match_official_code(name):
    anchor = get_anchor(name)
    ref = anchor.reference
    assert ref.get("params"), f"{name}: reference.params missing in its YAML"
    for key, expected in ref["params"].items():
        spec = anchor.spec.with_scale(int(key[1:]))
        assert _count(build_model(spec, deploy=True)) == expected, f"{name} {key} deploy"
    for key, expected in (ref.get("params_train") or {}).items():
        spec = anchor.spec.with_scale(int(key[1:]))
        assert _count(build_model(spec)) == expected, f"{name} {key} train"


@pytest.mark.parametrize("name", ANCHORS)
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_builds_runs_odd_sizes_and_reparam_is_exact(name, scale):
    spec = get_anchor(name).spec.with_scale(scale)
    model = randomize_(build_model(spec)).eval()
    x = torch.rand(1, 3, 37, 53) * spec.input_range
    with torch.no_grad():
        ref = model(x)
        deploy = reparameterize_model(model)
        out = deploy(x)
    assert ref.shape == (1, 3, 37 * scale, 53 * scale)
    assert is_deploy_form(deploy)
    assert ((out - ref).abs().max() / ref.abs().max()).item() <= 1e-5
