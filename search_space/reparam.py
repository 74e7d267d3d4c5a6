"""Training form -> deploy form.

Each re-parameterisable block implements an idempotent ``reparameterize()`` that fuses its
branches once and deletes the train-only modules (never fuse inside ``forward``: eval-time fusing
would skew latency). :func:`reparameterize_model` walks the model bottom-up and also folds weight
normalisation.
"""

from __future__ import annotations

import copy

from torch import nn

from search_space.layers import fold_weight_norm

__all__ = ["reparameterize_model", "is_deploy_form"]


def _post_order(module: nn.Module) -> list[nn.Module]:
    out = []
    for child in module.children():
        out += _post_order(child)
    out.append(module)
    return out


def reparameterize_model(model: nn.Module, *, inplace: bool = False) -> nn.Module:
    """Return the deploy form (eval mode): RRRB -> conv, BN merged, weight norm folded."""
    if not inplace:
        model = copy.deepcopy(model)
    model.eval()
    fold_weight_norm(model)
    for m in _post_order(model):
        fn = getattr(m, "reparameterize", None)
        if callable(fn):
            fn()
    return model.eval()


def is_deploy_form(model: nn.Module) -> bool:
    """No BatchNorm and no block left with train-only branches."""
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            return False
        if getattr(m, "deploy", True) is False:
            return False
    return True
