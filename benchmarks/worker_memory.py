"""Trial-worker memory across a long search: RSS of the Ray trial worker after every trial.

Runs ``nas launch`` (default space, a tiny proxy: 20 iterations, Set5 validation, a 64x64
profile) as a user would, and samples the resident set of every ``ray::`` worker process from
``/proc`` each time a trial finishes. The worker is reused across trials (``reuse_actors``), so
anything a trial leaves behind accumulates there. Linux only (``/proc``).

    .venv/bin/python benchmarks/worker_memory.py --trials 100 --out /tmp/worker_memory

The last line reads ``worker RSS: A MB after trial 10, B MB after trial N (+P%)``; the
per-trial curve is written to ``<out>/worker_rss.csv``.
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
    curve: list[tuple[int, float]] = []
    seen = 0
    while proc.poll() is None:
        done = finished_trials(run / "trials.csv")
        if done > seen:
            rss = ray_worker_rss_mb()
            seen = done
            if rss:  # the worker that ran the trials is the largest ray:: process
                curve.append((done, max(rss.values())))
                print(f"trial {done}: worker RSS {curve[-1][1]:.0f} MB", flush=True)
        time.sleep(0.25)
    if proc.returncode != 0:
        sys.exit(f"nas launch failed (exit {proc.returncode})")
    with (out / "worker_rss.csv").open("w") as f:
        f.write("trials_done,worker_rss_mb\n")
        f.writelines(f"{n},{mb:.1f}\n" for n, mb in curve)
    at10 = next(mb for n, mb in curve if n >= 10)
    last_n, last = curve[-1]
    print(f"worker RSS: {at10:.0f} MB after trial 10, {last:.0f} MB after trial {last_n} "
          f"({100 * (last / at10 - 1):+.1f}%)")


if __name__ == "__main__":
    main()
