from __future__ import annotations

import json


def resolve_spec(target: str, scale: int | None = None):
    """An anchor name or a spec YAML path -> (label, ArchSpec); scale overrides the spec's."""
    from pathlib import Path

    from search_space.anchors import get_anchor, list_anchors
    from search_space.errors import InputError
    from search_space.spec import ArchSpec

    if target in list_anchors():
        spec = get_anchor(target).spec
    elif Path(target).suffix in (".yaml", ".yml") or Path(target).exists():
        spec = ArchSpec.from_file(target)
    else:
        get_anchor(target)  # raises with the list of anchors and a suggestion
        raise InputError(f"{target!r} is neither an anchor nor a spec file")
    if scale is not None:
        if scale not in (2, 3, 4):
            raise InputError(f"--scale: {scale} not allowed; allowed: 2, 3, 4")
        spec = spec.with_scale(scale)
    return spec.name or target, spec


class Command:
    """Print a resolved spec (anchor name or spec.yaml), its arch_id and parameter counts."""

    @staticmethod
    def add_arguments(parser) -> None:
        parser.add_argument("target", help="anchor name or path to a spec YAML")
        parser.add_argument("--scale", type=int, default=None, help="override the scale (2, 3, 4)")
        parser.add_argument("--json", action="store_true", help="print one JSON object")

    def run(self, args) -> int:
        from search_space.builder import build_model

        label, spec = resolve_spec(args.target, args.scale)
        train = build_model(spec)
        deploy = build_model(spec, deploy=True)
        out = {
            "name": label,
            "arch_id": spec.arch_id(),
            "scale": spec.scale,
            "params": sum(p.numel() for p in deploy.parameters()),
            "params_train": sum(p.numel() for p in train.parameters()),
            "spec": spec.to_dict(),
        }
        if args.json:
            print(json.dumps(out, indent=1))
            return 0
        print(spec.to_yaml().rstrip())
        print(f"# arch_id: {out['arch_id']}")
        print(f"# params: {out['params']:,} (deploy), {out['params_train']:,} (train form)")
        return 0
