"""``nas export``: write a picked architecture as training configs, weights and ONNX."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from analysis.metrics import COL
from search_space.validation import check_value, field_rule
from trainers.config import TrainConfig
from trainers.recipes import DEFAULT_RECIPE, RECIPES, get_recipe


class Command:
    """Export one architecture of a run to runs/<name>/exports/<arch_id>/.

    Writes train.yaml (for `nas train`), arch.yaml, basicsr.yml, model_deploy.pth (proxy weights,
    deploy form, key params), arch.py (the network in plain PyTorch), README.md (model card) and
    model.onnx (when onnx is installed).
    """

    @staticmethod
    def add_arguments(parser) -> None:
        parser.add_argument("run", help="run directory (runs/<name>)")
        parser.add_argument("--pick", default="knee",
                            help="knee | max-psnr | fastest | smallest-memory | <trial id> | "
                                 "<arch id> | <anchor> (default: knee)")
        parser.add_argument("--where", default=None,
                            help="conditions on trials.csv columns, e.g. \"runtime_ms<=30, "
                                 "params<400000\"")
        parser.add_argument("--objectives", default=None,
                            help="objectives of the knee's front (default: the search's)")
        parser.add_argument("--allow-extrapolated", action="store_true",
                            help="let knee and max-psnr pick a trial whose psnr is predicted "
                                 "beyond the predictor's references (skipped by default)")
        parser.add_argument("--recipe", default=DEFAULT_RECIPE,
                            help=f"full-training recipe: {' | '.join(RECIPES)} (default: "
                                 f"{DEFAULT_RECIPE})")
        parser.add_argument("--iterations", type=int, default=None,
                            help="override the recipe's number of iterations")
        parser.add_argument("--train-data", default=None,
                            help="training data of train.yaml and basicsr.yml: a dataset made by "
                                 "nas data prepare (default: the run's, if prepared, else "
                                 "datasets/DIV2K_sub)")
        parser.add_argument("--no-onnx", action="store_true", help="skip model.onnx")
        parser.add_argument("--force", action="store_true",
                            help="replace an earlier export of the same architecture (its files, "
                                 "edits included, are lost)")
        parser.add_argument("--json", action="store_true", help="print one JSON object")

    def run(self, args) -> int:
        from analysis import pareto
        from analysis.export import export_trial, select_trial
        from analysis.run import check_objectives, default_objectives
        from nas.commands.pareto import load_run

        run = load_run(args.run)
        if args.objectives:
            objectives = pareto.resolve_objectives(args.objectives)
            check_objectives(run, objectives)
        else:
            objectives, _ = default_objectives(run)
        check_value("--iterations", args.iterations, field_rule(TrainConfig, "iterations"))
        label, why = select_trial(run.trials, args.pick, objectives, where=args.where,
                                 extrapolated=args.allow_extrapolated)
        train_data = _train_data(args.train_data, run)
        result = export_trial(run, label, why=why, objectives=objectives, where=args.where,
                              recipe=get_recipe(args.recipe), iterations=args.iterations,
                              train_data=train_data, data_note=_data_note(train_data),
                              onnx=not args.no_onnx, force=args.force)
        for note in result.warnings:
            print(f"nas export: warning: {note}", file=sys.stderr)
        if args.json:
            print(json.dumps({"directory": str(result.directory), COL.trial_id: result.trial_id,
                              COL.arch_id: result.arch_id, "pick": why,
                              "metrics": result.metrics,
                              "onnx_max_abs_diff": result.onnx_max_abs_diff,
                              "files": [str(f) for f in result.files]}, indent=1))
            return 0
        shown = (COL.psnr, COL.runtime_ms, COL.peak_memory_mb, COL.params, COL.macs_g)
        metrics = ", ".join(f"{k} {v}" for k, v in result.metrics.items() if k in shown)
        print(f"exported trial {result.trial_id} (arch {result.arch_id}; {why}): {metrics}")
        for path in result.files:
            print(f"  {path}")
        if result.onnx_max_abs_diff is not None:
            print(f"ONNX vs PyTorch max |diff| / input range: {result.onnx_max_abs_diff:.2e}")
        print(f"next: nas train {result.directory / 'train.yaml'}")
        return 0


def _train_data(given: str | None, run) -> str:
    """--train-data, else the run's training data if it is a prepared dataset, else the
    default path that the README's ``nas data prepare`` writes."""
    from analysis.export import DEFAULT_TRAIN_DATA
    from analysis.run import proxy_train
    from trainers.store import is_prepared

    if given:
        return given
    proxy = (proxy_train(run).get("data") or {}).get("train")
    return proxy if isinstance(proxy, str) and is_prepared(proxy) else DEFAULT_TRAIN_DATA


def _data_note(train: str) -> str:
    """What train.yaml's header says about its training data."""
    from trainers.data import BUNDLED
    from trainers.store import is_prepared

    if train in BUNDLED:
        return (f"{train}, a small bundled set: fine for a smoke test, not for the recipe "
                "(prepare DIV2K with nas data prepare)")
    if is_prepared(train):
        return f"{train}, a dataset prepared by nas data prepare"
    if Path(train).expanduser().is_dir():
        return (f"{train}, a folder of images (nas data prepare {train} --out DIR makes loading "
                "it many times faster)")
    return (f"{train}, not there yet: make it with nas data prepare DIV2K_train_HR --out "
            f"{train} (or set data.train to your prepared set)")
