"""Does a "no identity path" feature pay, leave-one-out? (docs/proxy.md, section 5)

Reads the per-reference records of a finished ``nas fidelity`` run and scores, leave-one-out,
the averaged predictor with its candidate feature sets as they are and with ``no_identity``
(1 for a network without a long residual or input skip) added to every set, plus the size-only
regression; overall and below 130K parameters. No training.

    python benchmarks/identity_feature.py runs/fidelity-cpu
    python benchmarks/identity_feature.py runs/fidelity-cpu --refs mine.yaml other.yaml
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from analysis.fidelity import count_pairs, kendall_tau, pairwise_accuracy
from analysis.predictor import (
    CANDIDATE_FEATURES,
    SIZE_FEATURES,
    features_of,
    fit_averaged,
    leave_one_out,
    ridge,
    with_identity_feature,
)
from nas.fidelity import SMALL_PARAMS
from nas.references import load_references


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", help="a nas fidelity output folder (its refs/*.json)")
    parser.add_argument("--refs", nargs="*", default=None,
                        help="reference lists (default: the shipped one)")
    args = parser.parse_args()
    lists = [load_references(p) for p in args.refs] if args.refs else [load_references()]
    records = []
    for ref in (r for refs in lists for r in refs):
        path = Path(args.out) / "refs" / f"{ref.name}.json"
        record = json.loads(path.read_text())
        records.append({**record, "psnr_ref": ref.psnr_ref,
                        "identity_path": ref.spec.has_identity_path()})
    feats = [features_of(r) for r in records]
    target = [r["psnr_ref"] for r in records]
    small = [i for i, r in enumerate(records) if r["params"] < SMALL_PARAMS]
    fits = {
        "predictor": lambda x, y: fit_averaged(x, y, candidates=CANDIDATE_FEATURES),
        "predictor + no_identity": lambda x, y: fit_averaged(
            x, y, candidates=with_identity_feature(CANDIDATE_FEATURES)),
        "size_model": ridge(SIZE_FEATURES),
    }
    print(f"{len(records)} references ({count_pairs(target)} pairs >= 0.10 dB), "
          f"{len(small)} below {SMALL_PARAMS:,} params ({count_pairs([target[i] for i in small])} "
          "pairs)")
    print("| model | tau | pairwise | MAE dB | tau <130K | pairwise <130K | MAE dB <130K |")
    print("|---|---|---|---|---|---|---|")
    for name, fit in fits.items():
        pred = leave_one_out(feats, target, fit=fit)
        cells = []
        for index in (range(len(records)), small):
            p, t = [pred[i] for i in index], [target[i] for i in index]
            mae = sum(abs(a - b) for a, b in zip(p, t, strict=True)) / len(t)
            cells += [f"{kendall_tau(p, t):+.3f}", f"{pairwise_accuracy(p, t):.3f}", f"{mae:.3f}"]
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
