"""Trial-worker memory across a long search: RSS of the Ray trial worker, trial by trial.

Runs ``nas launch`` (default space, a tiny proxy: 20 iterations, Set5 validation, a 64x64
profile) as a user would, and reads the resident set of every ``ray::`` worker process from
``/proc``. The worker is reused across trials (``reuse_actors``), so anything a trial leaves
behind accumulates there. Linux only (``/proc``).

    .venv/bin/python benchmarks/worker_memory.py --trials 100 --out /tmp/worker_memory

The worker's RSS is polled every 50 ms. For each trial the benchmark keeps the lowest value
seen while it ran (the baseline: what the worker holds between trials, so what earlier trials
left behind) and the highest (that trial's own working set on top); ``<out>/worker_rss.csv``
has both curves, and the last two lines compare the last trial with trial 10.
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
import time
from pathlib import Path

import yaml

TINY_PROXY = {"iterations": 20, "eval_every": 0, "data": {"val": ["Set5"]}}
PROFILE = {"input_hw": [64, 64], "warmup": 1, "repeats": 3}


def ray_worker_rss_mb() -> dict[int, float]:
    """RSS (MB) of every live process whose command line starts with ``ray::``."""
    out = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes()
            if not cmdline.startswith(b"ray::") or cmdline.startswith(b"ray::IDLE"):
                continue
            status = (proc / "status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                out[int(proc.name)] = int(line.split()[1]) / 1024
    return out


def finished_trials(trials_csv: Path) -> int:
    try:
        with trials_csv.open() as f:
            return sum(row["status"] != "running" for row in csv.DictReader(f))
    except (OSError, KeyError, csv.Error):
        return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--out", default="/tmp/worker_memory")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    config = out / "search.yaml"
    config.write_text(yaml.safe_dump({"anchors": [], "proxy": {"preset": "cpu",
                                                                "train": TINY_PROXY},
                                      "profile": PROFILE}))
    run = out / "run"
    proc = subprocess.Popen([sys.executable, "-m", "nas.cli", "launch", "--quiet", "--config",
                             str(config), "--budget", str(args.trials), "--out", str(run)])
    # Per trial: the lowest worker RSS while it ran (what earlier trials left behind: the
    # worker's baseline between trials) and the highest (that trial's working set on top).
    curve: list[tuple[int, float, float]] = []
    seen, low, high = 0, float("inf"), 0.0
    while proc.poll() is None:
        rss = ray_worker_rss_mb()
        if rss:  # the worker that runs the trials is the largest ray:: process
            low, high = min(low, max(rss.values())), max(high, max(rss.values()))
        done = finished_trials(run / "trials.csv")
        if done > seen and high > 0:
            seen = done
            curve.append((done, low, high))
            print(f"trial {done}: worker RSS {low:.0f} MB baseline, {high:.0f} MB peak",
                  flush=True)
            low, high = float("inf"), 0.0
        time.sleep(0.05)
    if proc.returncode != 0:
        sys.exit(f"nas launch failed (exit {proc.returncode})")
    with (out / "worker_rss.csv").open("w") as f:
        f.write("trials_done,baseline_rss_mb,peak_rss_mb\n")
        f.writelines(f"{n},{lo:.1f},{hi:.1f}\n" for n, lo, hi in curve)
    after10 = [c for c in curve if c[0] >= 10]
    if not after10:
        sys.exit(f"fewer than 10 trials were sampled ({len(curve)}): run more with --trials")
    for what, i in (("baseline", 1), ("peak", 2)):
        at10, values = after10[0][i], [c[i] for c in after10]
        print(f"worker RSS {what}: {at10:.0f} MB after trial 10, {values[-1]:.0f} MB after trial "
              f"{after10[-1][0]} ({100 * (values[-1] / at10 - 1):+.1f}%), {min(values):.0f}-"
              f"{max(values):.0f} MB from trial 10 on")


if __name__ == "__main__":
    main()
