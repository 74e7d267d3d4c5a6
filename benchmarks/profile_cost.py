"""What profiling costs: seconds per metric for every anchor (CPU).

    .venv/bin/python benchmarks/profile_cost.py [--input 256x256] [--threads 1] [--repeats 20]
                                                [--anchors fmen_s,rlfn]

Columns: building the deploy form, the meta-device pass (MACs, activations, conv count and the
memory estimate together), the memory estimate alone (what a sampler would call), the tracked CPU
peak memory (one real forward), the runtime measurement (warm-ups + repeats) and the whole
``profile_model``. Compare the total with a trial's proxy training time (~30 s on CPU).
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch

from nas.commands.profile import parse_input_hw
from search_space.anchors import list_anchors
from search_space.factory import build_model
from search_space.reparam import reparameterize_model
from trainers.memory import estimate_peak_memory
from trainers.profiling import (
    count_macs,
    measure_peak_memory,
    measure_runtime,
    profile_model,
)


def _seconds(fn) -> tuple[float, object]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input", default="256x256")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--anchors", default=",".join(list_anchors()))
    args = parser.parse_args()
    input_hw = parse_input_hw(args.input)
    torch.set_num_threads(args.threads)
    lock_dir = tempfile.mkdtemp(prefix="profile-cost-")  # time ourselves, not the queue

    print(f"input 1x3x{input_hw[0]}x{input_hw[1]}, {args.threads} thread(s), "
          f"{args.warmup} warm-ups + {args.repeats} repeats; seconds")
    header = ("anchor", "deploy", "meta pass", "estimate", "tracked mem", "runtime",
              "profile_model", "runtime_ms")
    print("{:16s} {:>8s} {:>10s} {:>9s} {:>12s} {:>8s} {:>14s} {:>11s}".format(*header))
    for name in args.anchors.split(","):
        train = build_model(name)
        t_deploy, deploy = _seconds(lambda m=train: reparameterize_model(m))
        t_meta, _ = _seconds(lambda m=deploy: count_macs(m, input_hw))
        t_est, _ = _seconds(lambda m=deploy: estimate_peak_memory(m, input_hw))
        t_mem, _ = _seconds(lambda m=deploy: measure_peak_memory(m, input_hw=input_hw))
        t_run, (median, _) = _seconds(lambda m=deploy: measure_runtime(
            m, input_hw=input_hw, threads=args.threads, warmup=args.warmup,
            repeats=args.repeats, lock_dir=lock_dir))
        t_all, _ = _seconds(lambda m=train: profile_model(
            m, input_hw=input_hw, threads=args.threads, warmup=args.warmup,
            repeats=args.repeats, lock_dir=lock_dir))
        print(f"{name:16s} {t_deploy:8.2f} {t_meta:10.2f} {t_est:9.2f} {t_mem:12.2f} "
              f"{t_run:8.2f} {t_all:14.2f} {median:11.1f}", flush=True)


if __name__ == "__main__":
    main()
