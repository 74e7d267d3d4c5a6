"""Paired runtime ratio against plain runtime: how much each moves between runs and processes.

    python benchmarks/paired_runtime.py runs/paired-a runs/paired-b      # two runs of one config
    python benchmarks/paired_runtime.py --profiles 'runs/drift/p*.json'  # `nas profile --baseline
                                                                         #  --json` outputs

For two runs of the same search config and seed (which sample the same architectures), prints,
per architecture present in both, ``runtime_ms`` and ``runtime_ratio`` of each run and their
run-to-run change, the relative IQR of each within its trial, and the baseline anchor's own
``ntire_score``. For a series of ``nas profile --baseline`` outputs (one process each, minutes
apart), prints the coefficient of variation of ``runtime_ms``, of the baseline's time and of the
ratio across the processes.
"""

from __future__ import annotations

import argparse
import glob
import json
import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analysis.metrics import COL  # noqa: E402
from analysis.rundir import STATUS, RunDir, read_json, read_trials  # noqa: E402


def _completed(run: str):
    df = read_trials(run)
    done = df[df[COL.status] == STATUS.completed]
    return done.drop_duplicates(COL.arch_id).set_index(COL.arch_id)


def compare_runs(run_a: str, run_b: str) -> None:
    a, b = _completed(run_a), _completed(run_b)
    shared = [arch for arch in a.index if arch in b.index]
    print(f"{len(shared)} architectures in both runs ({run_a}: {len(a)}, {run_b}: {len(b)})")
    print(f"  {'network':12s} {'ms A':>8s} {'ms B':>8s} {'B/A':>6s}   {'ratio A':>8s} "
          f"{'ratio B':>8s} {'B/A':>6s}   {'rel IQR ms':>10s} {'rel IQR ratio':>13s}")
    moves_ms, moves_ratio = [], []
    for arch in shared:
        ra, rb = a.loc[arch], b.loc[arch]
        name = ra[COL.anchor] or str(ra[COL.trial_id])[:8]
        ms = rb[COL.runtime_ms] / ra[COL.runtime_ms]
        ratio = rb[COL.runtime_ratio] / ra[COL.runtime_ratio]
        moves_ms.append(abs(math.log(ms)))
        moves_ratio.append(abs(math.log(ratio)))
        rel_ms = np.mean([r[COL.runtime_iqr_ms] / r[COL.runtime_ms] for r in (ra, rb)])
        rel_ratio = np.mean([r[COL.runtime_ratio_iqr] / r[COL.runtime_ratio] for r in (ra, rb)])
        print(f"  {name:12s} {ra[COL.runtime_ms]:8.2f} {rb[COL.runtime_ms]:8.2f} {ms:6.3f}   "
              f"{ra[COL.runtime_ratio]:8.3f} {rb[COL.runtime_ratio]:8.3f} {ratio:6.3f}   "
              f"{rel_ms:10.3f} {rel_ratio:13.3f}")
    print(f"mean |log(B/A)|: runtime_ms {np.mean(moves_ms):.3f}, runtime_ratio "
          f"{np.mean(moves_ratio):.3f}")
    for label, run, df in (("A", run_a, a), ("B", run_b, b)):
        baseline_ntire_score(label, run, df)


def baseline_ntire_score(label: str, run: str, df) -> None:
    """The baseline anchor's own score, paired (the run's) and as an unpaired ratio to the
    baseline's profile in references.json (taken once, in another process) would give it."""
    name = df[COL.runtime_baseline].dropna().iloc[0]
    reference = read_json(RunDir(run).references_json)[name][COL.runtime_ms]
    for _, row in df[df[COL.anchor] == name].iterrows():
        unpaired = row[COL.runtime_ms] / reference
        print(f"run {label}: baseline {name} ntire_score {row[COL.ntire_score]:.4f} (e^2 = "
              f"{math.exp(2):.4f}), runtime_ratio {row[COL.runtime_ratio]:.4f} (IQR "
              f"{row[COL.runtime_ratio_iqr]:.4f}); unpaired ratio to references.json "
              f"{unpaired:.4f} -> score {_score(unpaired):.4f}")


def _score(runtime_ratio: float) -> float:
    """The NTIRE score of the baseline itself at this runtime ratio (MACs, params equal)."""
    return 0.8 * math.exp(2 * runtime_ratio) + 0.2 * math.exp(2)


def compare_profiles(pattern: str) -> None:
    texts = [Path(p).read_text() for p in sorted(glob.glob(pattern))]
    docs = [json.loads(t) for t in texts if t.strip()]  # one still being written is empty
    docs = [d for d in docs if d.get(COL.runtime_ratio) is not None]
    if not docs:
        sys.exit(f"no `nas profile --baseline --json` outputs match {pattern}")
    series = {"runtime_ms": [d[COL.runtime_ms] for d in docs],
              "runtime_baseline_ms": [d[COL.runtime_baseline_ms] for d in docs],
              "runtime_ratio": [d[COL.runtime_ratio] for d in docs]}
    print(f"{len(docs)} processes: {docs[0]['name']} against {docs[0]['baseline']}")
    for name, values in series.items():
        v = np.asarray(values)
        print(f"  {name:20s} mean {v.mean():9.3f}  min {v.min():9.3f}  max {v.max():9.3f}  "
              f"CV {v.std(ddof=1) / v.mean():.3f}  max/min {v.max() / v.min():.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="*", help="two run directories of one config")
    parser.add_argument("--profiles", help="glob of `nas profile --baseline --json` outputs")
    args = parser.parse_args()
    if len(args.runs) == 2:
        compare_runs(*args.runs)
    if args.profiles:
        compare_profiles(args.profiles)


if __name__ == "__main__":
    main()
