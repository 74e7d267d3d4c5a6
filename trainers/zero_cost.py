"""Training-free scores of an architecture at initialisation (zero-cost proxies).

They are baselines a training proxy has to beat: if a few hundred iterations of training rank
networks no better than a score computed in one backward pass, the training adds nothing.

- ``grad_norm``: the L2 norm of the L1 loss's gradient over all parameters, for one fixed batch
  of training patches (Abdelfattah et al., "Zero-Cost Proxies for Lightweight NAS", ICLR 2021).
- ``synflow``: sum over parameters of ``|theta * dR/dtheta|`` with all weights replaced by their
  absolute values and ``R`` the sum of the output for an all-ones input (Tanaka et al., 2020),
  computed in float64 to keep deep products finite; reported as log10.

Both depend on the initialisation, so the seed is fixed like every trial's.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from search_space.factory import build_model
from search_space.spec import ArchSpec
from trainers.data import PatchDataset, resolve_dataset

__all__ = ["zero_cost_scores", "synflow_score"]


def _batch(spec: ArchSpec, *, seed: int, lr_patch: int, batch: int, train: str):
    data = PatchDataset(resolve_dataset(train), scale=spec.scale, lr_patch=lr_patch, seed=seed)
    pairs = [data[i] for i in range(batch)]
    return torch.stack([p[0] for p in pairs]), torch.stack([p[1] for p in pairs])


def grad_norm(model: nn.Module, lr: torch.Tensor, hr: torch.Tensor, input_range: float) -> float:
    model.train()
    model.zero_grad(set_to_none=True)
    loss = nn.functional.l1_loss(model(lr * input_range), hr * input_range)
    loss.backward()
    total = sum(float(p.grad.double().square().sum()) for p in model.parameters()
                if p.grad is not None)
    return math.sqrt(total)


@torch.no_grad()
def _linearise(model: nn.Module) -> None:
    for p in model.parameters():
        p.abs_()


def synflow(model: nn.Module, hw: int) -> float:
    model = model.double().eval()  # eval: BatchNorm with its (initial) running statistics
    _linearise(model)
    model.zero_grad(set_to_none=True)
    model(torch.ones(1, 3, hw, hw, dtype=torch.float64)).sum().backward()
    total = sum(float((p.detach() * p.grad).abs().sum()) for p in model.parameters()
                if p.grad is not None)
    return math.log10(total) if total > 0 and math.isfinite(total) else float("nan")


def synflow_score(spec: ArchSpec, *, seed: int = 0, lr_patch: int = 16) -> float:
    """log10 synflow of the spec's training form at the seed's initialisation."""
    torch.manual_seed(seed)
    return synflow(build_model(spec), lr_patch)


def zero_cost_scores(spec: ArchSpec, *, seed: int = 0, lr_patch: int = 16, batch: int = 4,
                     train: str = "SunHays80") -> dict[str, float]:
    """``{"grad_norm", "synflow"}`` of the spec's training form at the seed's initialisation."""
    lr, hr = _batch(spec, seed=seed, lr_patch=lr_patch, batch=batch, train=train)
    torch.manual_seed(seed)
    model = build_model(spec)
    return {"grad_norm": grad_norm(model, lr, hr, spec.input_range),
            "synflow": synflow_score(spec, seed=seed, lr_patch=lr_patch)}
