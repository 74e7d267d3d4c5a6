from __future__ import annotations

import json

from analysis.metrics import COL
from nas.commands.show import add_limit_arguments
from search_space.errors import InputError
from search_space.limits import MAX_INPUT_PIXELS, MAX_INPUT_SIDE, PROFILE_RULES, input_hw_problem
from search_space.validation import check_value, short


def parse_input_hw(text: str) -> tuple[int, int]:
    """``"256x256"`` (or ``"256"`` for a square) -> (256, 256), within the profiler's input rule
    (``limits.input_hw_problem``); InputError naming ``--input`` otherwise."""
    sizes = tuple(int(p) if p.isascii() and p.isdigit() else -1 for p in text.lower().split("x"))
    hw = sizes * 2 if len(sizes) == 1 else sizes
    if input_hw_problem(hw):
        raise InputError(f"--input: expected HxW (e.g. 256x256), sides from 1 to {MAX_INPUT_SIDE}"
                         f" and at most {MAX_INPUT_PIXELS:,} pixels; got {short(text)}")
    return hw


def _format_table(out: dict) -> str:
    height, width = out["input"]
    threads = f", {out['threads']} threads" if out.get("threads") else ""
    runtime = "-" if out[COL.runtime_ms] is None else (
        f"{out[COL.runtime_ms]:.2f} (IQR {out[COL.runtime_iqr_ms]:.2f}, {out['repeats']} runs)")
    memory = "-" if out[COL.peak_memory_mb] is None else f"{out[COL.peak_memory_mb]:.2f}"
    rows = [
        ("params", f"{out[COL.params]:,}"),
        ("MACs [G]", f"{out[COL.macs_g]:.4f}"),
        ("activations [M]", f"{out[COL.activations_m]:.4f}"),
        ("convs", str(out[COL.num_conv])),
        ("runtime [ms]", runtime),
        *_paired_rows(out),
        ("peak memory [MiB]", memory),
        ("peak memory est. [MiB]", f"{out[COL.peak_memory_est_mb]:.2f}"),
    ]
    head = (f"{out['name']}  x{out['scale']}  arch_id {out[COL.arch_id]}\n"
            f"input 1x3x{height}x{width}, {out[COL.device]}{threads}")
    return head + "\n" + "\n".join(f"  {label:24s}{value}" for label, value in rows)


def _paired_rows(out: dict) -> list[tuple[str, str]]:
    """The runtime ratio to ``--baseline`` (timed paired), when one was given."""
    if out.get(COL.runtime_ratio) is None:
        return []
    return [(f"runtime / {out['baseline']}", f"{out[COL.runtime_ratio]:.3f} (IQR "
             f"{out[COL.runtime_ratio_iqr]:.3f}, paired; baseline "
             f"{out[COL.runtime_baseline_ms]:.2f} ms)")]


class Command:
    """Profile an architecture (anchor name or spec.yaml) in deploy form.

    Params, MACs (NTIRE "FLOPs"), conv activations and count, runtime (median and IQR of timed
    forwards) and peak memory, measured and estimated, for one 1x3xHxW LR input. With
    --baseline, the runtime is timed paired with the baseline (interleaved in this process) and
    the ratio of the two is reported beside it: comparable across processes and minutes.
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
        parser.add_argument("--baseline", default=None, metavar="ANCHOR|SPEC",
                            help="time the runtime paired with this network (anchor name or "
                                 "spec YAML) and report runtime_ratio")
        parser.add_argument("--json", action="store_true", help="print one JSON object")
        add_limit_arguments(parser)

    def run(self, args) -> int:
        from nas.commands.show import check_limits, resolve_spec
        from search_space.factory import build_model
        from trainers.device import resolve_device
        from trainers.profiling import profile_model

        input_hw = parse_input_hw(args.input)
        for flag, value in (("--repeats", args.repeats), ("--threads", args.threads)):
            check_value(flag, value, PROFILE_RULES[flag[2:]])
        resolve_device(args.device)  # fail before building anything
        label, spec = resolve_spec(args.target, args.scale)
        check_limits(spec, args, input_hw=input_hw, what=label)
        baseline = None
        if args.baseline is not None:
            base_label, base_spec = resolve_spec(args.baseline, spec.scale)
            check_limits(base_spec, args, input_hw=input_hw, what=base_label)
            baseline = build_model(base_spec, deploy=True)
        model = build_model(spec, deploy=True)
        profile = profile_model(model, input_hw=input_hw, device=args.device,
                                threads=args.threads, repeats=args.repeats, baseline=baseline)
        out = {"name": label, COL.arch_id: spec.arch_id(), "scale": spec.scale,
               "input": list(input_hw), "baseline": args.baseline and base_label,
               **profile.to_dict()}
        del out["input_hw"]
        if args.json:
            print(json.dumps(out, indent=1))
        else:
            print(_format_table({**out, "repeats": args.repeats}))
        return 0
