from __future__ import annotations

import json
from pathlib import Path

from analysis.metrics import COL
from search_space.anchors import get_anchor, list_anchors
from search_space.choices import SCALES
from search_space.errors import InputError, did_you_mean
from search_space.limits import MAX_MEMORY_MB, MAX_PARAMS, check_resources
from search_space.spec import ArchSpec
from search_space.validation import Rule


def resolve_spec(target: str, scale: int | None = None):
    """An anchor name or a spec YAML path -> (label, ArchSpec); scale overrides the spec's."""
    if target in list_anchors():
        spec = get_anchor(target).spec
    elif Path(target).suffix in (".yaml", ".yml") or Path(target).exists():
        spec = ArchSpec.from_file(target)
    else:  # the target may be either: the message says so, lists the anchors and suggests one
        anchors = list_anchors()
        raise InputError(f"{target!r} is neither an anchor nor a spec file; anchors: "
                         f"{', '.join(anchors)}{did_you_mean(target, anchors)}")
    if scale is not None:
        problem = Rule(kind=int, choices=SCALES).apply("--scale", scale)[1]
        if problem:
            raise InputError(problem)
        spec = spec.with_scale(scale)
    return spec.name or target, spec


def add_limit_arguments(parser) -> None:
    """``--max-params`` / ``--max-memory-mb``: the resource limits a command checks before it
    builds a model (search_space/limits.py)."""
    parser.add_argument("--max-params", type=int, default=MAX_PARAMS, metavar="N",
                        help=f"refuse larger models (default: {MAX_PARAMS:,})")
    parser.add_argument("--max-memory-mb", type=float, default=MAX_MEMORY_MB, metavar="MB",
                        help=f"refuse models whose estimated memory is larger (default: "
                             f"{MAX_MEMORY_MB:,})")


def check_limits(spec, args, *, input_hw=None, batch: int = 1, what: str = "spec") -> int:
    """Parameter count and estimated memory of ``spec`` against ``args``' limits; the count."""
    for flag, value in (("--max-params", args.max_params), ("--max-memory-mb",
                                                             args.max_memory_mb)):
        problem = Rule(kind=float, low=0, low_open=True).apply(flag, value)[1]
        if problem:
            raise InputError(problem)
    return check_resources(spec, input_hw=input_hw, batch=batch, max_params=args.max_params,
                           max_memory_mb=args.max_memory_mb, what=what)


class Command:
    """Print a resolved spec (anchor name or spec.yaml), its arch_id and parameter counts."""

    @staticmethod
    def add_arguments(parser) -> None:
        parser.add_argument("target", help="anchor name or path to a spec YAML")
        parser.add_argument("--scale", type=int, default=None, help="override the scale (2, 3, 4)")
        parser.add_argument("--json", action="store_true", help="print one JSON object")
        add_limit_arguments(parser)

    def run(self, args) -> int:
        from search_space.factory import build_model

        label, spec = resolve_spec(args.target, args.scale)
        check_limits(spec, args, what=label)
        train = build_model(spec)
        deploy = build_model(spec, deploy=True)
        out = {
            "name": label,
            COL.arch_id: spec.arch_id(),
            "scale": spec.scale,
            COL.params: sum(p.numel() for p in deploy.parameters()),
            COL.params_train: sum(p.numel() for p in train.parameters()),
            COL.spec: spec.to_dict(),
        }
        if args.json:
            print(json.dumps(out, indent=1))
            return 0
        print(spec.to_yaml().rstrip())
        print(f"# arch_id: {out[COL.arch_id]}")
        print(f"# params: {out[COL.params]:,} (deploy), {out[COL.params_train]:,} (train form)")
        return 0
