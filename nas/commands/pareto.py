"""``nas pareto``: the Pareto front of a run, its report and plots."""

from __future__ import annotations

import json
import sys

from analysis.metrics import COL
from analysis.rundir import STATUS
from search_space.errors import InputError
from trainers.presets import PRESETS


def load_run(path):
    """``analysis.run.load_run`` plus the proxy preset the search resolved.

    analysis does not know the presets (it depends on search_space only); nas does. A search.yaml
    that no longer validates (e.g. written by another version) keeps the run readable.
    """
    from analysis.run import load_run as load

    run = load(path)
    if not run.search:
        return run
    try:
        from nas.config import SearchConfig
        from nas.trial_settings import deep_merge

        config = SearchConfig.from_dict(run.search, source=str(run.layout.search_yaml))
    except (ImportError, InputError):
        return run
    run.preset = config.proxy.resolved_preset(config.resources.gpus_per_trial)
    if run.preset in PRESETS:
        run.proxy_config = deep_merge(PRESETS[run.preset], config.proxy.train)
    return run


def print_front(front, objectives, knee) -> None:
    """The front as a fixed-width table, best first in the first objective."""
    from analysis.formatting import format_value

    header = [COL.trial_id, COL.anchor, COL.arch_id, *objectives]
    rows = [[str(row[COL.trial_id]) + (" *" if label == knee else ""), row[COL.anchor] or "-",
             row.get(COL.arch_id, "")] + [format_value(row[c]) for c in objectives]
            for label, row in front.iterrows()]
    widths = [max(len(str(x)) for x in [h] + [r[i] for r in rows]) for i, h in enumerate(header)]
    for line in [header] + rows:
        print("  ".join(str(x).ljust(w) for x, w in zip(line, widths, strict=True)).rstrip())


class Command:
    """Compute the Pareto front of a run; write report.html and pareto_*.html/png.

    The front is taken over completed trials and anchors with a value for every objective;
    running, failed, infeasible and pruned trials are counted in the report, never in the front.
    """

    @staticmethod
    def add_arguments(parser) -> None:
        parser.add_argument("run", help="run directory (runs/<name>)")
        parser.add_argument("--objectives", default=None,
                            help="comma-separated metrics, e.g. psnr,runtime_ms (default: the "
                                 "search's objectives, else psnr,runtime_ms,peak_memory_mb)")
        parser.add_argument("--json", action="store_true",
                            help="print the front as one JSON list of rows")
        parser.add_argument("--no-png", action="store_true",
                            help="skip PNG export (needs a local Chrome/Chromium)")

    def run(self, args) -> int:
        from analysis import pareto
        from analysis.report import front_records, write_report
        from analysis.run import default_objectives

        run = load_run(args.run)
        if args.objectives:
            objectives, notes = pareto.resolve_objectives(args.objectives), []
        else:
            objectives, notes = default_objectives(run)
        result = write_report(run, objectives, png=not args.no_png)
        for note in notes + result.warnings:
            print(f"nas pareto: warning: {note}", file=sys.stderr)
        if args.json:
            print(json.dumps(front_records(result.front, objectives, result.knee), indent=1))
            return 0
        n_done = int((run.trials[COL.status] == STATUS.completed).sum())
        print(f"Pareto front of {', '.join(f'{k} ({v[:3]})' for k, v in objectives.items())}: "
              f"{len(result.front)} of {n_done} completed trials (* = knee)")
        print_front(result.front, objectives, result.knee)
        if result.hypervolume is not None:
            print(f"hypervolume (normalised, reference = worst + {pareto.HV_MARGIN:.0%}): "
                  f"{result.hypervolume:.4f}")
        print(f"report: {run.layout.report_html}")
        return 0
