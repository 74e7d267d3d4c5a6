from __future__ import annotations

from pathlib import Path

from nas.budget import Budget
from search_space.errors import InputError


class Command:
    """Run an architecture search (Ray Tune + Optuna) or continue a stopped one.

    Examples:
      nas launch --budget 8                          default search, 8 sampled trials + anchors
      nas launch --config search.yaml --budget 2h    a wall-clock budget
      nas launch --resume runs/search-20250101-120000
      nas launch --budget 50 --address auto --gpus-per-trial 0.25 --storage postgresql://...
    """

    @staticmethod
    def add_arguments(parser) -> None:
        parser.add_argument("--config", metavar="YAML",
                            help="search config (default: nas/default_search.yaml)")
        parser.add_argument("--budget", metavar="N|DURATION",
                            help="number of sampled trials (e.g. 8; anchors come on top) or a "
                                 "wall-clock budget (e.g. 90s, 45m, 2h)")
        parser.add_argument("--out", metavar="DIR",
                            help="run directory (default: runs/search-<date>-<time>)")
        parser.add_argument("--resume", metavar="DIR", help="continue the run in DIR")
        parser.add_argument("--seed", type=int, metavar="S", help="override the config's seed")
        parser.add_argument("--max-concurrent", type=int, metavar="N", help="trials at a time")
        parser.add_argument("--cpus-per-trial", type=float, metavar="N", help="CPUs per trial")
        parser.add_argument("--gpus-per-trial", type=float, metavar="G",
                            help="GPUs per trial (fractions allowed, e.g. 0.25)")
        parser.add_argument("--address", metavar="ADDR",
                            help="address of an existing Ray cluster (e.g. auto)")
        parser.add_argument("--storage", metavar="URL",
                            help="Optuna RDB storage URL (default: sqlite in the run dir)")
        parser.add_argument("--quiet", action="store_true", help="no live progress line")

    def run(self, args) -> int:
        from nas.config import SearchConfig

        budget = Budget.parse(args.budget) if args.budget is not None else None
        if args.resume and (args.out or args.config):
            raise InputError("--resume: continues a run with its own search.yaml and folder; "
                             "do not combine it with --config or --out")
        if args.resume is None and budget is None:
            raise InputError("--budget: required (a number of trials, e.g. 8, or a wall-clock "
                             "duration, e.g. 90s, 45m, 2h)")
        overrides = dict(seed=args.seed, max_concurrent=args.max_concurrent,
                         cpus_per_trial=args.cpus_per_trial, gpus_per_trial=args.gpus_per_trial)
        if args.resume:
            from analysis.rundir import RunDir

            run = RunDir.open(args.resume)
            if args.seed is not None:
                raise InputError("--seed: a resumed run keeps its seed")
            config = SearchConfig.from_file(run.search_yaml)
        elif args.config:
            config = SearchConfig.from_file(args.config)
        else:
            config = SearchConfig.defaults()
        config = config.with_overrides(**overrides)

        from analysis.rundir import RunDir
        from nas.launcher import default_run_dir, launch

        out = None if args.resume else (args.out or str(default_run_dir()))
        if out is not None:
            _check_new_folder(out)
        where = args.resume or out
        try:
            summary = launch(config, budget=budget, out=out, resume=args.resume,
                             address=args.address, storage=args.storage,
                             progress=not args.quiet)
        except InputError:
            raise
        except BaseException:  # the CLI reports it; point it at the run once there is one
            if RunDir(where).is_run():
                args.log_dir, args.resume_hint = where, f"nas launch --resume {where}"
            raise
        for line in summary.lines:
            print(line)
        return 130 if summary.interrupted else 0


def _check_new_folder(out: str) -> None:
    """A new run goes to a new (or empty) folder: nothing of an earlier run is overwritten."""
    from analysis.rundir import RunDir

    path = Path(out)
    if RunDir(path).is_run():
        raise InputError(f"--out: {path} already holds a run; continue it with "
                         f"`nas launch --resume {path}` or choose another --out")
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise InputError(f"--out: {path} already exists and is not an empty folder; choose "
                         "another --out")
