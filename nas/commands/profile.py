from __future__ import annotations

import json

from nas.commands.show import add_limit_arguments
from search_space.errors import InputError

MAX_SIDE = 8192  # per side of --input (the area is capped by limits.MAX_INPUT_PIXELS)


def parse_input_hw(text: str) -> tuple[int, int]:
    """``"256x256"`` (or ``"256"`` for a square) -> (256, 256), each side at most
    :data:`MAX_SIDE` and the area at most ``limits.MAX_INPUT_PIXELS``; InputError otherwise."""
    from search_space.limits import MAX_INPUT_PIXELS
    from search_space.validation import short

    parts = text.lower().split("x")
    sizes = [int(p) for p in parts if p.isascii() and p.isdigit()]
    if len(sizes) != len(parts):
        sizes = []
    if len(sizes) == 1:
        sizes *= 2
    if len(sizes) != 2 or min(sizes) < 1 or max(sizes) > MAX_SIDE:
        raise InputError(f"--input: expected HxW with integers from 1 to {MAX_SIDE} (e.g. "
                         f"256x256), got {short(text)}")
    if sizes[0] * sizes[1] > MAX_INPUT_PIXELS:
        raise InputError(f"--input: {sizes[0]}x{sizes[1]} is {sizes[0] * sizes[1]:,} pixels; at "
                         f"most {MAX_INPUT_PIXELS:,}")
    return sizes[0], sizes[1]


def _format_table(out: dict) -> str:
    height, width = out["input"]
    threads = f", {out['threads']} threads" if out.get("threads") else ""
    runtime = "-" if out["runtime_ms"] is None else (
        f"{out['runtime_ms']:.2f} (IQR {out['runtime_iqr_ms']:.2f}, {out['repeats']} runs)")
    memory = "-" if out["peak_memory_mb"] is None else f"{out['peak_memory_mb']:.2f}"
    rows = [
        ("params", f"{out['params']:,}"),
        ("MACs [G]", f"{out['macs_g']:.4f}"),
        ("activations [M]", f"{out['activations_m']:.4f}"),
        ("convs", str(out["num_conv"])),
        ("runtime [ms]", runtime),
        ("peak memory [MiB]", memory),
        ("peak memory est. [MiB]", f"{out['peak_memory_est_mb']:.2f}"),
    ]
    head = (f"{out['name']}  x{out['scale']}  arch_id {out['arch_id']}\n"
            f"input 1x3x{height}x{width}, {out['device']}{threads}")
    return head + "\n" + "\n".join(f"  {label:24s}{value}" for label, value in rows)


class Command:
    """Profile an architecture (anchor name or spec.yaml) in deploy form.

    Params, MACs (NTIRE "FLOPs"), conv activations and count, runtime (median and IQR of timed
    forwards) and peak memory, measured and estimated, for one 1x3xHxW LR input.
    """

    @staticmethod
    def add_arguments(parser) -> None:
        parser.add_argument("target", help="anchor name or path to a spec YAML")
        parser.add_argument("--scale", type=int, default=None, help="override the scale (2, 3, 4)")
        parser.add_argument("--input", default="256x256", metavar="HxW",
                            help="LR input size (default: 256x256)")
        parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"),
                            help="where runtime and peak memory are measured (default: cpu)")
        parser.add_argument("--threads", type=int, default=None,
                            help="CPU threads for the timing (default: torch's current count)")
        parser.add_argument("--repeats", type=int, default=20,
                            help="timed forwards (default: 20, after 5 warm-ups)")
        parser.add_argument("--json", action="store_true", help="print one JSON object")
        add_limit_arguments(parser)

    def run(self, args) -> int:
        from nas.commands.show import check_limits, resolve_spec
        from search_space.builder import build_model
        from search_space.validation import Rule
        from trainers.profiling import profile_model, resolve_device

        input_hw = parse_input_hw(args.input)
        for flag, value, high in (("--repeats", args.repeats, 10_000),
                                  ("--threads", args.threads, 4096)):
            problem = Rule(kind=int, low=1, high=high, optional=True).apply(flag, value)[1]
            if problem:
                raise InputError(problem)
        resolve_device(args.device)  # fail before building anything
        label, spec = resolve_spec(args.target, args.scale)
        check_limits(spec, args, input_hw=input_hw, what=label)
        model = build_model(spec, deploy=True)
        profile = profile_model(model, input_hw=input_hw, device=args.device,
                                threads=args.threads, repeats=args.repeats)
        out = {"name": label, "arch_id": spec.arch_id(), "scale": spec.scale,
               "input": list(input_hw), **profile.to_dict()}
        del out["input_hw"]
        if args.json:
            print(json.dumps(out, indent=1))
        else:
            print(_format_table({**out, "repeats": args.repeats}))
        return 0
