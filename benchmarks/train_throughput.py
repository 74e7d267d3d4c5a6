"""Training throughput of ``trainers.loop.train`` against a bare PyTorch loop.

For each model: the trainer (real data pipeline: seeded patches from SunHays80 made by the MATLAB
bicubic resize, augmentation, schedule, loss bookkeeping) and a bare loop (the same model,
batch, patch size and thread count; one pre-made random batch; ``l1_loss``, ``backward``,
``Adam.step``) run the same number of iterations, alternately, ``--repeats`` times; the best
samples/s of each is kept (the least disturbed by other load). The bare loop runs in both memory
formats, which is also the measurement behind ``channels_last: auto``
(:func:`trainers.loop.use_channels_last`); the trainer runs with its ``auto`` choice and is
compared with the bare loop in the same format.

    .venv/bin/python benchmarks/train_throughput.py      # rlfn srn_s_ntire23 e_rfdn fmen_s
    .venv/bin/python benchmarks/train_throughput.py rlfn --batch 16 --patch 32 --threads 2

Measured on a shared 2-core VM in a quiet moment (``--threads 2 --iters 6 --repeats 3``, batch 16,
32x32 LR), samples/s:

    model          trainer  bare NCHW  bare NHWC  NHWC speed-up  trainer / bare NHWC
    rlfn            165.7     137.8      173.2       1.26            0.957
    srn_s_ntire23   149.2     140.2      158.1       1.13            0.944
    e_rfdn           93.1      66.3       96.9       1.46            0.960
    fmen_s           41.2      32.5       41.4       1.28            0.994

With ``--threads 1``: ratios 0.956 / 0.917 / 0.984 / 0.997. Timings with 2 threads are only
meaningful on an otherwise idle machine: when more runnable threads than cores compete, OpenMP's
barriers stall and a 2-thread step can take 10-100x longer than a 1-thread one.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

import torch
from torch.nn import functional as F

from search_space.anchors import get_anchor
from search_space.factory import build_model
from trainers.config import TrainConfig
from trainers.data import PatchDataset
from trainers.loop import train, use_channels_last


def bare_loop(spec, *, batch: int, patch: int, iters: int, channels_last: bool) -> float:
    """Samples/s of a plain forward/backward/step loop on one fixed random batch."""
    torch.manual_seed(0)
    model = build_model(spec).train()
    scale, value_range = spec.scale, spec.input_range
    x = torch.rand(batch, 3, patch, patch) * value_range
    y = torch.rand(batch, 3, patch * scale, patch * scale) * value_range
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
        y = y.contiguous(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    start = time.perf_counter()
    for _ in range(iters):
        loss = F.l1_loss(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return iters * batch / (time.perf_counter() - start)


def trainer(name: str, *, batch: int, patch: int, iters: int, threads: int) -> float:
    """Samples/s of ``trainers.loop.train`` (training steps only: no validation, no files timed)."""
    with tempfile.TemporaryDirectory() as out:
        cfg = TrainConfig.from_dict({
            "arch": name, "data": {"train": "SunHays80", "val": [], "lr_patch": patch,
                                   "batch_size": batch, "workers": 0},
            "iterations": iters, "eval_every": 0, "checkpoint_every": 0, "threads": threads,
            "device": "cpu", "channels_last": "auto", "out_dir": out})
        result = train(cfg)
    return iters * batch / result.train_seconds


def measure(name: str, args: argparse.Namespace) -> dict:
    spec = get_anchor(name).spec
    auto = use_channels_last(build_model(spec), "cpu")
    best = {"trainer": 0.0, "bare_nchw": 0.0, "bare_nhwc": 0.0}
    torch.set_num_threads(args.threads)
    # Images are decoded and downscaled once per process (and LR kept on disk): warm the caches
    # outside the timings, as the first few hundred batches of a run would.
    PatchDataset("SunHays80", scale=spec.scale, lr_patch=args.patch, seed=0).preload()
    for _ in range(args.repeats):
        best["trainer"] = max(best["trainer"], trainer(
            name, batch=args.batch, patch=args.patch, iters=args.iters, threads=args.threads))
        for fmt, cl in (("bare_nchw", False), ("bare_nhwc", True)):
            torch.set_num_threads(args.threads)
            best[fmt] = max(best[fmt], bare_loop(spec, batch=args.batch, patch=args.patch,
                                                 iters=args.iters, channels_last=cl))
    same_format = best["bare_nhwc"] if auto else best["bare_nchw"]
    return {"model": name, "channels_last_auto": auto, **{k: round(v, 2) for k, v in best.items()},
            "nhwc_speedup": round(best["bare_nhwc"] / best["bare_nchw"], 2),
            "ratio": round(best["trainer"] / same_format, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="*", default=["rlfn", "srn_s_ntire23", "e_rfdn", "fmen_s"])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--patch", type=int, default=32, help="LR patch side")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--iters", type=int, default=10, help="iterations per timed run")
    parser.add_argument("--repeats", type=int, default=3, help="alternating runs; best kept")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = []
    for name in args.models:
        row = measure(name, args)
        rows.append(row)
        if not args.json:
            print(f"{name:14s} channels_last(auto)={str(row['channels_last_auto']):5s} "
                  f"trainer {row['trainer']:7.2f} samples/s | bare NCHW {row['bare_nchw']:7.2f} "
                  f"NHWC {row['bare_nhwc']:7.2f} (NHWC x{row['nhwc_speedup']:.2f}) | "
                  f"trainer / bare (same format) = {row['ratio']:.3f}", flush=True)
    if args.json:
        print(json.dumps({"settings": vars(args), "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
