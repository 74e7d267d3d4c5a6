"""``nas verify``: retrain a run's best networks and its baseline under a longer schedule."""

from __future__ import annotations

import json

from analysis.metrics import COL
from search_space.limits import PROFILE_RULES
from search_space.validation import Rule, check_value, field_rule
from trainers.config import TrainConfig


class Command:
    """Verify a run's front under a longer schedule (the verification rung).

    Retrains the K best feasible networks of the run's Pareto front (highest psnr first; or the
    ones --pick names), plus the run's baseline anchor, from scratch under the run's proxy
    recipe with --iterations (default 8x the proxy's; the same data, seed and recipe for all).
    Reports each network's PSNR at the rung, its paired difference to the baseline, Kendall tau
    between the proxy rung and this one, and the pairs that flip. Rows go to runs/<name>/
    verify.csv and verify/<name>/; run it again to continue after an interruption (finished
    networks are never retrained).

    Examples:
      nas verify runs/s1                       top 3 of the front + the baseline, 8x schedule
      nas verify runs/s1 --top 5 --json
      nas verify runs/s1 --pick knee,max-psnr --baseline rlfn
    """

    @staticmethod
    def add_arguments(parser) -> None:
        parser.add_argument("run", help="run directory (runs/<name>)")
        parser.add_argument("--top", type=int, default=3, metavar="K",
                            help="sampled trials of the front to verify, highest psnr first "
                                 "(default: 3)")
        parser.add_argument("--pick", default=None,
                            help="comma-separated picks instead of --top: knee | max-psnr | "
                                 "fastest | smallest-memory | <trial id> | <arch id> | <anchor>")
        parser.add_argument("--baseline", default=None, metavar="ANCHOR",
                            help="the anchor every network is compared with (default: the "
                                 "run's NTIRE / runtime baseline, else its PSNR floor's anchor, "
                                 "else its first anchor)")
        parser.add_argument("--iterations", type=int, default=None, metavar="N",
                            help="training iterations of the rung (default: 8x the proxy's)")
        parser.add_argument("--threads", type=int, default=None, metavar="N",
                            help="CPU threads per training (default: torch's)")
        parser.add_argument("--json", action="store_true", help="print one JSON object")
        parser.add_argument("--quiet", action="store_true", help="no per-network progress")

    def run(self, args) -> int:
        from nas.proxy import proxy_train_base
        from nas.verify import (
            check_sizes,
            open_run,
            pick_candidates,
            run_verify,
            rung_train_base,
            summarise,
        )

        check_value("--iterations", args.iterations, field_rule(TrainConfig, "iterations"))
        check_value("--threads", args.threads, PROFILE_RULES["threads"])
        check_value("--top", args.top, _TOP_RULE)
        run, config = open_run(args.run)
        picks = [p.strip() for p in args.pick.split(",") if p.strip()] if args.pick else []
        candidates = pick_candidates(run, config, top=args.top, picks=picks,
                                     baseline=args.baseline)
        base, _, _ = proxy_train_base(config)
        train_base = rung_train_base(base, args.iterations)
        check_sizes(candidates, train_base, run)
        args.log_dir = str(run.layout.path)
        args.resume_hint = f"nas verify {args.run}" + (
            f" --iterations {args.iterations}" if args.iterations else "")
        quiet = args.quiet or args.json
        rows = run_verify(run, config, candidates, train_base, threads=args.threads,
                          progress=(lambda _: None) if quiet else None)
        summary = {"run": str(run.layout.path), **summarise(rows)}
        print(json.dumps(summary, indent=1) if args.json else format_summary(summary))
        return 0


_TOP_RULE = Rule(kind=int, low=1, high=1000)


def format_summary(summary) -> str:
    """The rung's table, the rank agreement and the flipped pairs, as text."""
    def num(value, fmt):
        return "-" if value is None else format(value, fmt)

    lines = [f"verification rung of {summary['run']}: {summary[COL.iterations]} iterations, "
             f"baseline {summary['baseline']}",
             f"  {'network':16s} {'rung PSNR':>9s} {'vs base':>8s} {'proxy psnr':>10s} "
             f"{'vs base':>8s} {'raw proxy':>9s}"]
    for r in summary["rows"]:
        name = r["name"] + (" (base)" if r["is_baseline"] else "")
        lines.append(f"  {name:16s} {num(r['psnr_rung'], '9.3f')} {num(r['diff_rung'], '+8.3f')} "
                     f"{num(r['psnr_run'], '10.3f')} {num(r['diff_run'], '+8.3f')} "
                     f"{num(r[COL.psnr_proxy], '9.3f')}")
    lines.append(f"Kendall tau, proxy rung psnr vs this rung: {num(summary['kendall_tau'], '+.3f')}"
                 f" (raw proxy PSNR: {num(summary['kendall_tau_raw'], '+.3f')})")
    if not summary["flips"]:
        lines.append("no pair flips between the rungs")
    for f in summary["flips"]:
        noise = " (within 0.10 dB at the rung: a tie)" if f["within_noise"] else ""
        lines.append(f"  flip: the proxy put {f['proxy_prefers']} above {f['over']} by "
                     f"{f['gap_run']:.3f} dB; the rung puts it {abs(f['gap_rung']):.3f} dB "
                     f"below{noise}")
    return "\n".join(lines)
