from __future__ import annotations

import json
import sys
from pathlib import Path

from search_space.errors import InputError
from search_space.io import check_output_dir, write_atomic
from search_space.validation import check_value, field_rule
from trainers.config import TrainConfig


class Command:
    """Train a model from a training config (YAML; see trainers/config.py).

    Writes OUT/config.yaml, OUT/checkpoint.pth (every checkpoint_every iterations, atomically),
    OUT/model_deploy.pth and OUT/metrics.json; a progress line goes to stderr. Examples:

      nas train runs/search/exports/<arch_id>/train.yaml
      nas train train.yaml --iters 1000 --out runs/train/quick
      nas train train.yaml --resume          # continue OUT/checkpoint.pth
    """

    @staticmethod
    def add_arguments(parser) -> None:
        from nas.commands.show import add_limit_arguments

        parser.add_argument("config", help="training config YAML")
        parser.add_argument("--iters", type=int, default=None, help="override iterations")
        parser.add_argument("--out", default=None, help="override out_dir")
        parser.add_argument("--device", default=None, help="override device (auto, cpu, cuda)")
        parser.add_argument("--resume", action="store_true",
                            help="continue from OUT/checkpoint.pth")
        parser.add_argument("--quiet", action="store_true", help="no progress line")
        add_limit_arguments(parser)

    def run(self, args) -> int:
        from nas.commands.show import check_limits
        from trainers.device import resolve_device
        from trainers.loop import CHECKPOINT_NAME, NonFiniteLossError, train

        config = _override(TrainConfig.from_file(args.config), args)
        out = Path(config.out_dir)
        _check_out(out, args.resume, CHECKPOINT_NAME)
        resolve_device(config.device)
        patch = config.data.lr_patch
        check_limits(config.spec, args, input_hw=(patch, patch), batch=config.data.batch_size,
                     what=f"arch of {args.config}")
        check_output_dir(out, "--out")  # made by the training once its data is read
        # Validated: from here on a crash is a failure of the run, resumable once it checkpointed.
        args.log_dir = out
        args.resume_hint = f"nas train {args.config} --out {out} --resume"
        try:
            result = train(config, progress=not args.quiet, resume=args.resume)
        except NonFiniteLossError as e:
            last = out / CHECKPOINT_NAME
            where = f"; last good checkpoint: {last}" if last.exists() else ""
            print(f"nas train: stopped: {e}{where}", file=sys.stderr)
            return 1
        summary = {"iterations": result.iterations, "train_seconds": result.train_seconds,
                   "eval_seconds": result.eval_seconds, "metrics": result.metrics,
                   "history": result.history}
        write_atomic(out / "metrics.json", json.dumps(summary, indent=1))
        for name, m in result.metrics.items():
            ssim = f", SSIM-Y {m['ssim_y']:.4f}" if m.get("ssim_y") is not None else ""
            print(f"{name}: PSNR-Y {m['psnr_y']:.4f} dB{ssim}, PSNR-RGB {m['psnr_rgb']:.4f} dB")
        print(f"trained {result.iterations} iterations in {result.train_seconds:.1f} s "
              f"(+ {result.eval_seconds:.1f} s validation); deploy weights: "
              f"{out / 'model_deploy.pth'}")
        return 0


def _check_out(out: Path, resume: bool, checkpoint: str) -> None:
    """A fresh run needs a new or empty folder; --resume needs the earlier run's checkpoint."""
    if resume:
        return  # the loop refuses a folder without a checkpoint to resume
    if (out / checkpoint).exists():
        raise InputError(f"{out}: already holds {checkpoint} from an earlier run; pass "
                         "--resume to continue it, or --out DIR for a new run")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InputError(f"{out}: already exists and is not an empty folder; nothing in it is "
                         "overwritten: choose another --out (or --resume a run there)")


def _override(config, args):
    """Command-line overrides, validated through the config schema again."""
    check_value("--iters", args.iters, field_rule(TrainConfig, "iterations"))
    overrides = {"iterations": args.iters, "out_dir": args.out, "device": args.device}
    overrides = {k: v for k, v in overrides.items() if v is not None}
    if not overrides:
        return config
    return TrainConfig.from_dict({**config.to_dict(), **overrides},
                                 source=f"{args.config} with command-line overrides")
