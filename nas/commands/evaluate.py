from __future__ import annotations

import json
from pathlib import Path

from search_space.anchors import list_anchors, load
from search_space.errors import InputError
from search_space.validation import check_value
from trainers.config import DEVICE_RULE

_CHECKPOINT_SUFFIXES = (".pth", ".pt", ".ckpt")


class Command:
    """Evaluate a model: PSNR/SSIM on Y and RGB PSNR per dataset (NTIRE protocol, deploy form).

    TARGET is an anchor name, a spec YAML (both need --weights), or an esrnas checkpoint
    (model_deploy.pth / checkpoint.pth, which carries its architecture). Examples:

      nas eval fmen_s --weights official --data Set5,Set14 --scale 4
      nas eval runs/train/x/model_deploy.pth --data path/to/HR_folder --json
    """

    @staticmethod
    def add_arguments(parser) -> None:
        parser.add_argument("target", help="anchor name, spec YAML or esrnas checkpoint")
        parser.add_argument("--weights", default=None,
                            help="'official' (anchors that ship official weights) or a checkpoint "
                                 "/ state dict path")
        parser.add_argument("--data", default="Set5,Set14",
                            help="comma-separated bundled sets (Set5, Set14, SunHays80) or folders "
                                 "of HR images (default: Set5,Set14)")
        parser.add_argument("--scale", type=int, default=None,
                            help="2, 3 or 4 (default: the spec's / checkpoint's scale)")
        parser.add_argument("--device", default="auto", help="auto, cpu or cuda[:i]")
        parser.add_argument("--json", action="store_true",
                            help='print {"<dataset>": {"psnr_y", "ssim_y", "psnr_rgb", ...}}')

    def run(self, args) -> int:
        from trainers.data import resolve_dataset
        from trainers.evaluate import evaluate

        device = _device(args.device)
        datasets = [d.strip() for d in args.data.split(",") if d.strip()]
        if not datasets:
            raise InputError("--data: expected dataset names or folders, got nothing")
        for name in datasets:
            try:
                resolve_dataset(name)
            except InputError as e:
                raise InputError(f"--data: {e}") from None
        label, model = _load(args.target, args.weights, args.scale)
        results = evaluate(model, datasets, scale=model.scale, device=device)
        if args.json:
            print(json.dumps(results, indent=1))
            return 0
        print(f"{label} x{model.scale} (input range {model.input_range:g})")
        print(f"{'dataset':12s} {'images':>6s} {'PSNR-Y':>8s} {'SSIM-Y':>7s} {'PSNR-RGB':>8s}")
        for name, r in results.items():
            print(f"{name:12s} {r['images']:>6d} {r['psnr_y']:8.4f} {r['ssim_y']:7.4f} "
                  f"{r['psnr_rgb']:8.4f}")
        return 0


def _load(target: str, weights: str | None, scale: int | None):
    """(label, deploy-form model with weights) for an anchor / spec YAML / checkpoint target."""
    from trainers.evaluate import load_deploy_model, model_from_checkpoint

    path = Path(target)
    if path.suffix in _CHECKPOINT_SUFFIXES or (path.is_file() and path.suffix not in
                                                 (".yaml", ".yml")):
        if weights is not None:
            raise InputError("--weights: not used with a checkpoint target (it has its weights)")
        model = model_from_checkpoint(path)
        if scale is not None and scale != model.scale:
            raise InputError(f"--scale: {scale} does not match the checkpoint's scale "
                             f"{model.scale}")
        return path.name, model

    from nas.commands.show import resolve_spec

    label, spec = resolve_spec(target, scale)
    if weights is None:
        raise InputError(f"--weights: required for {target!r} (an anchor or spec has no weights "
                         "of its own); pass --weights official or --weights PATH")
    if weights == "official":

        if target not in list_anchors():
            raise InputError("--weights official: only for anchor names (nas anchors lists them)")
        return label, load(target, scale=spec.scale, weights="official")
    return label, load_deploy_model(spec, weights)


def _device(choice: str) -> str:
    from trainers.device import resolve_device

    return resolve_device(check_value("--device", choice, DEVICE_RULE))
