"""The model card of an export: ``README.md``, and the same facts in ``model.onnx``'s metadata.

What the weights are (proxy-trained, deploy form), the proxy that made them, the metrics the
trial was picked on, input range, scale, and how to load them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from analysis.export.training import _picked_metrics
from analysis.metrics import COL
from analysis.run import Run, protocol
from search_space.spec import ArchSpec

__all__ = ["model_card"]


def model_card(run: Run, row: Mapping[str, Any], spec: ArchSpec, *, why: str,
               recipe: str) -> dict[str, str]:
    """The facts of the model card (README.md) and of the ONNX metadata, as strings."""
    proxy = protocol(run)
    metrics = _picked_metrics(row)
    return {
        COL.arch_id: spec.arch_id(),
        "name": spec.name or "",
        "scale": str(spec.scale),
        "input_range": f"{spec.input_range:g}",
        "input": f"RGB, float32 NCHW in [0, {spec.input_range:g}]",
        "output": f"RGB, {spec.scale}x the input's height and width, in [0, {spec.input_range:g}]",
        "form": "deploy (re-parameterised, inference only)",
        "weights": "proxy-trained: the short training of the search, not a full training",
        "run": run.name,
        COL.trial_id: str(row[COL.trial_id]),
        "pick": why or "picked by hand",
        "proxy": ", ".join(f"{k} {v}" for k, v in proxy.items() if v not in (None, "")),
        "proxy_metrics": ", ".join(f"{k} {v}" for k, v in metrics.items()),
        "recipe": recipe,
        "producer": "esrnas",
    }


def _card_text(card: Mapping[str, str], *, has_weights: bool) -> str:
    weights = ("model_deploy.pth holds them (key params)" if has_weights else
               "not exported: the trial left no weights")
    return f"""# {card['name'] or 'esrnas network'} {card[COL.arch_id]} (x{card['scale']})

Super-resolution network found by an esrnas search (run `{card['run']}`, trial
`{card[COL.trial_id]}`, {card['pick']}).

- **Weights**: {card['weights']}; {weights}, in the {card['form']} form. Train the network
  fully with `nas train train.yaml` (or BasicSR with `basicsr.yml`) before comparing it with
  published models.
- **Proxy that produced them**: {card['proxy']}.
- **Proxy metrics**: {card['proxy_metrics'] or 'none recorded'}.
- **Scale**: x{card['scale']}.
- **Input**: {card['input']}. **Output**: {card['output']}.

Files: `arch.yaml` (spec), `train.yaml` (`nas train`, recipe {card['recipe']}), `basicsr.yml`
(BasicSR 1.4.2: `python -m analysis.basicsr_plugin -opt basicsr.yml`), `arch.py` (the network in
plain PyTorch), `model_deploy.pth`, `model.onnx` (the same facts in its metadata).

    import torch
    from arch import ESRNASDeployNet
    net = ESRNASDeployNet().eval()
    net.load_state_dict(torch.load("model_deploy.pth", weights_only=True)["params"])
"""
