"""Do a finer channel step and a two-stage body find better fronts? (issue 19, item 4)

Compares runs of the NTIRE formulation (objectives ntire_score min, psnr max; a PSNR floor
against the baseline anchor) by the hypervolume of their first N sampled trials' front, in the
objectives' own units (NTIRE score x dB), against one reference point for all runs: the
baseline's own score (e^2 = 7.389) and the PSNR floor (the baseline anchor's psnr in the run
minus 0.05 dB, averaged over the runs). A point outside it (slower than the baseline in score,
or below the floor) adds nothing. ``--predictor`` re-scores every trained trial of every run with
one predictor first (runs searched under different predictors are then compared alike; the floor
is re-applied with the baseline re-scored the same way). No training.

    python benchmarks/space_resolution.py step8-s0=runs/a step8-s1=runs/b step4x2-s0=runs/c \
        [--trials 20] [--baseline span_ch28] [--margin 0.05] [--predictor P.json]
"""

from __future__ import annotations

import argparse
import math

import numpy as np
from repredict import predict  # benchmarks/repredict.py, beside this script

from analysis import pareto
from analysis.metrics import COL
from analysis.predictor import Predictor
from analysis.run import load_run

OBJECTIVES = {COL.ntire_score: "min", COL.psnr: "max"}


def first_sampled(run_dir: str, n: int, predictor: Predictor | None, baseline: str,
                  margin: float):
    """The run's first ``n`` sampled trials (by number) and its PSNR floor; re-scored by
    ``predictor`` when given (a trial then passes the floor, or not, on the new figure)."""
    run = load_run(run_dir)
    df = run.trials.copy()
    if predictor is not None:
        trained = df[COL.status].isin(["completed", "infeasible"])
        for label in df.index[trained]:
            folder = run.layout.trial_dir(df.at[label, COL.trial_id])
            if (folder / "metrics.json").is_file():
                df.at[label, COL.psnr] = predict(predictor, folder, run.input_hw or (128, 128))
    floor = float(df.loc[df[COL.anchor] == baseline, COL.psnr].iloc[0]) - margin
    if predictor is not None:
        failed_floor = df[COL.reason].astype(str).str.startswith(f"{COL.psnr} ")
        refit = df[COL.status].isin(["completed"]) | failed_floor
        df.loc[refit, COL.status] = np.where(df.loc[refit, COL.psnr] >= floor, "completed",
                                             "infeasible")
    sampled = df[~df[COL.is_anchor].astype(bool)].sort_values(COL.number).head(n)
    return sampled, floor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="LABEL=RUN_DIR")
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--baseline", default="span_ch28")
    parser.add_argument("--margin", type=float, default=0.05)
    parser.add_argument("--predictor", help="re-score every run with this predictor.json")
    args = parser.parse_args()
    runs = dict(item.split("=", 1) for item in args.runs)
    predictor = Predictor.load(args.predictor) if args.predictor else None
    tables, floors = {}, []
    for label, path in runs.items():
        tables[label], floor = first_sampled(path, args.trials, predictor, args.baseline,
                                             args.margin)
        floors.append(floor)
    reference = np.array([math.exp(2), -float(np.mean(floors))])
    print(f"reference point: ntire_score {reference[0]:.3f}, psnr {-reference[1]:.3f} dB "
          f"(the {args.baseline} floors per run: {', '.join(f'{f:.3f}' for f in floors)})")
    print("| run | sampled | completed | front size | best psnr | best ntire_score | "
          "hypervolume |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for label, sampled in tables.items():
        done = sampled[pareto.eligible_mask(sampled, OBJECTIVES)]
        losses = pareto.loss_matrix(done, OBJECTIVES)
        inside = losses[np.all(losses <= reference, axis=1)] if len(losses) else losses
        hv = pareto._hypervolume(inside, reference) if len(inside) else 0.0
        front = pareto.pareto_front(done, OBJECTIVES) if len(done) else done
        print(f"| {label} | {len(sampled)} | {len(done)} | {len(front)} | "
              f"{done[COL.psnr].max():.3f} | {done[COL.ntire_score].min():.3f} | {hv:.4f} |")


if __name__ == "__main__":
    main()
