"""BasicSR plugin: the ``ESRNASNet`` arch of an exported ``basicsr.yml``, in ``ARCH_REGISTRY``.

Importing this module registers ``ESRNASNet`` when BasicSR is installed; run as a script it is
BasicSR's ``train.py`` with that arch known::

    python -m analysis.basicsr_plugin -opt runs/<name>/exports/<arch_id>/basicsr.yml

``network_g: {type: ESRNASNet, deploy: true, <spec>}`` builds the esrnas network of the spec with
the same parameter names as ``search_space.builder.build_model``, so that ``model_deploy.pth``
(key ``params``) and BasicSR's own checkpoints load strictly. BasicSR feeds images in [0, 1];
a spec with another input range gets its input scaled up and its output scaled back.

Install BasicSR 1.4.2 with ``pip install --no-build-isolation 'esrnas[basicsr]'`` (its setup.py
imports torch); it needs a torchvision built for the installed torch.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

from search_space.spec import ArchSpec

__all__ = ["ESRNASNet", "register"]

ARCH_NAME = "ESRNASNet"


def ESRNASNet(deploy: bool = True, **spec: Any):  # noqa: N802  (BasicSR's arch name)
    """The spec's network (deploy form by default) taking and giving [0, 1] images.

    Args:
        deploy: Build the fused inference form (the form of exported weights); False builds
            the re-parameterisable training form.
        **spec: The ArchSpec mapping (``ArchSpec.to_dict()``).
    """
    from search_space.factory import build_model

    model = build_model(ArchSpec.from_dict(spec, what="network_g"), deploy=deploy)
    value_range = float(model.input_range)
    if value_range != 1.0:  # hooks, not a wrapper module: parameter names stay esrnas's
        model.register_forward_pre_hook(lambda _m, args: (args[0] * value_range, *args[1:]))
        model.register_forward_hook(lambda _m, _args, out: out / value_range)
    return model


def _alias_functional_tensor() -> None:
    """BasicSR 1.4.2 imports ``torchvision.transforms.functional_tensor``, which torchvision 0.17
    renamed ``_functional_tensor``: point the old name at the new module before BasicSR loads."""
    name = "torchvision.transforms.functional_tensor"
    try:
        importlib.import_module(name)
    except ModuleNotFoundError as e:
        if e.name not in (name, None):
            raise  # torchvision itself is missing: BasicSR's import says so
        sys.modules[name] = importlib.import_module("torchvision.transforms._functional_tensor")


def register() -> bool:
    """Register :func:`ESRNASNet` with BasicSR (once); False when BasicSR is not installed."""
    try:
        _alias_functional_tensor()
        from basicsr.utils.registry import ARCH_REGISTRY
    except ImportError:
        return False
    if ARCH_NAME not in ARCH_REGISTRY:
        ARCH_REGISTRY.register()(ESRNASNet)
    return True


register()

if __name__ == "__main__":
    if not register():
        raise SystemExit("basicsr is not installed: pip install --no-build-isolation "
                         "'esrnas[basicsr]'")
    from basicsr.train import train_pipeline

    train_pipeline(os.getcwd())  # experiments/ and tb_logger/ go under the current folder
