"""What calibrating on fewer references costs (issue 20, item 3; docs/proxy.md, section 7).

Reads a fidelity document with per-reference features (the shipped
``analysis/predictors/cpu_x4.fidelity.json`` by default) and, for subsets of the references,
fits the shipped form of the predictor on the subset only and scores it on every reference of
the full set: a reference in the subset leave-one-out within the subset, one outside it by the
subset's fit (it never saw it either). Subsets: :func:`nas.references.spanning_subset` (what
``proxy.calibrate: {refs: N}`` trains) and, for comparison, random draws of the same size.
No training.

    python benchmarks/calibration_subsets.py [--doc FILE] [--sizes 42 32 21 14 10] [--draws 30]
"""

from __future__ import annotations

import argparse
import json
import random

import numpy as np

from analysis.fidelity import kendall_tau, pairwise_accuracy
from analysis.predictor import fit_averaged
from nas.fidelity import PREDICTOR_CANDIDATES
from nas.references import spanning_subset

DEFAULT_DOC = "analysis/predictors/cpu_x4.fidelity.json"


def scores_from(refs: list[dict], subset: set[int]) -> dict[str, float]:
    """tau, pairwise accuracy and MAE over every reference of a predictor fitted on ``subset``."""
    def fit(index):
        return fit_averaged([refs[j]["features"] for j in index],
                            [refs[j]["psnr_ref"] for j in index],
                            candidates=PREDICTOR_CANDIDATES)

    full = fit(sorted(subset))
    pred = [fit(sorted(subset - {i})).predict(r["features"]) if i in subset
            else full.predict(r["features"]) for i, r in enumerate(refs)]
    target = [r["psnr_ref"] for r in refs]
    return {"tau": kendall_tau(pred, target), "pairwise": pairwise_accuracy(pred, target),
            "mae": float(np.mean(np.abs(np.subtract(pred, target))))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--doc", default=DEFAULT_DOC)
    parser.add_argument("--sizes", type=int, nargs="*", default=None)
    parser.add_argument("--draws", type=int, default=30)
    args = parser.parse_args()
    refs = json.load(open(args.doc))["refs"]
    n = len(refs)
    sizes = args.sizes or sorted({n, round(n * 3 / 4), round(n / 2), round(n / 3), 10},
                                 reverse=True)
    psnr_ref, params = [r["psnr_ref"] for r in refs], [r["params"] for r in refs]
    print(f"{n} references; a subset's predictor scored on all {n} (leave-one-out inside it)")
    print("| refs | spanning: tau | pairwise | MAE dB | random (mean +- sd of "
          f"{args.draws}): tau | pairwise |")
    print("|---:|---:|---:|---:|---:|---:|")
    rng = random.Random(0)
    for size in sizes:
        span = scores_from(refs, set(spanning_subset(psnr_ref, params, size)))
        draws = [scores_from(refs, set(rng.sample(range(n), size)))
                 for _ in range(args.draws if size < n else 0)]
        rand = (" | ".join(f"{np.mean([d[k] for d in draws]):.3f} +- "
                           f"{np.std([d[k] for d in draws]):.3f}" for k in ("tau", "pairwise"))
                if draws else "- | -")
        print(f"| {size} | {span['tau']:+.3f} | {span['pairwise']:.3f} | {span['mae']:.3f} | "
              f"{rand} |", flush=True)


if __name__ == "__main__":
    main()
