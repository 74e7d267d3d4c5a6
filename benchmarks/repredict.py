"""Re-score a finished run's trials with another PSNR predictor, offline (no training).

Each completed trial's folder keeps what the predictor reads (metrics.json: the row and the
training history; spec.yaml), so a run searched with one predictor can be scored with another:
the same proxy records, two predictions. Used for issue 18's "re-predict the frontier":

    python benchmarks/repredict.py RUN NEW_PREDICTOR.json [--old OLD_PREDICTOR.json] [--floor A]

prints, per completed trial, params, the raw proxy PSNR, the run's ``psnr`` (old predictor) and
the new prediction, and whether each clears the run's PSNR floor (``psnr >= <anchor> - d``) as
scored by the same predictor on the anchor's own trial.
"""

from __future__ import annotations

import argparse
import json
import math
import re
from pathlib import Path

from analysis.metrics import COL
from analysis.predictor import Predictor, features_of, proxy_record
from analysis.run import load_run
from search_space.spec import ArchSpec


def predict(predictor: Predictor, folder: Path, hw: tuple[int, int]) -> float | None:
    record = json.loads((folder / "metrics.json").read_text())
    row = record["row"]
    spec = ArchSpec.from_file(folder / "spec.yaml")
    rec = proxy_record(spec, psnr_proxy=row[COL.psnr_proxy], params=row[COL.params],
                       macs_g=row[COL.macs_g], history=record.get("history") or [],
                       input_hw=hw, synflow=row.get(COL.synflow))
    return predictor.predict(features_of(rec))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run")
    ap.add_argument("predictor", help="the new predictor.json")
    ap.add_argument("--old", help="the old predictor.json (default: the run's own psnr column)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    run = load_run(args.run)
    new = Predictor.load(args.predictor)
    old = Predictor.load(args.old) if args.old else None
    hw = run.input_hw or (128, 128)
    floor = (run.search.get("constraints") or {}).get(COL.psnr)
    match = re.fullmatch(r"\s*>=\s*(\w+)\s*-\s*([\d.]+)\s*", floor or "")
    df = run.trials[run.trials[COL.status] == "completed"]
    rows = []
    for _, r in df.iterrows():
        folder = run.layout.trial_dir(r[COL.trial_id])
        rows.append({"trial": r[COL.trial_id], "anchor": r[COL.anchor] or None,
                     "params": int(float(r[COL.params])),
                     "psnr_proxy": float(r[COL.psnr_proxy]),
                     "old": predict(old, folder, hw) if old else float(r[COL.psnr]),
                     "new": predict(new, folder, hw)})
    floors = {}
    if match:
        anchor, margin = match.group(1), float(match.group(2))
        base = next(x for x in rows if x["anchor"] == anchor)
        floors = {k: base[k] - margin for k in ("old", "new")}
    for x in rows:
        for k in ("old", "new"):
            x[f"clears_{k}"] = None if not floors else bool(x[k] >= floors[k])
    if args.json:
        print(json.dumps({"floors": floors, "rows": rows}, indent=1))
        return
    print(f"floor: {floor} -> old {floors.get('old', math.nan):.3f}, new "
          f"{floors.get('new', math.nan):.3f} dB")
    print(f"{'trial':10} {'anchor':12} {'params':>8} {'proxy':>7} {'old':>7} {'new':>7} "
          f"{'clears old/new'}")
    for x in sorted(rows, key=lambda x: -x["old"]):
        print(f"{x['trial']:10} {x['anchor'] or '':12} {x['params']:8,d} {x['psnr_proxy']:7.3f} "
              f"{x['old']:7.3f} {x['new']:7.3f} {x['clears_old']}/{x['clears_new']}")


if __name__ == "__main__":
    main()
