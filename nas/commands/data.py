"""``nas data prepare``: turn a folder of HR images into a prepared training set."""

from __future__ import annotations

import json
import sys

from search_space.errors import InputError
from search_space.validation import Rule, check_value


class Command:
    """Prepare training data: BasicSR-layout sub-images, their LR and a memory-mapped store.

      nas data prepare DIV2K_train_HR --out datasets/DIV2K_sub        # x2, x3, x4
      nas data prepare LSDIR/HR --out datasets/LSDIR_sub --scale 4 --workers 8

    Writes OUT/HR_sub, OUT/LR_bicubic/X{s}_sub (PNG), OUT/store/*.npy (what `nas train` reads when
    data.train is OUT) and OUT/manifest.json (sha256 of every file). Interrupted (Ctrl-C, kill),
    the same command resumes where it stopped. A bad image (not 8-bit RGB, smaller than --crop,
    unreadable) is named and skipped; --strict stops at it instead.
    """

    @staticmethod
    def add_arguments(parser) -> None:
        sub = parser.add_subparsers(dest="action", metavar="ACTION", parser_class=type(parser))
        sub.required = True
        p = sub.add_parser("prepare", help="folder of HR images -> prepared dataset")
        p.add_argument("src", help="folder of HR images (PNG/JPEG/BMP, 8-bit RGB)")
        p.add_argument("--out", required=True, help="output folder (resumed if interrupted)")
        p.add_argument("--scale", default="2,3,4",
                       help="comma-separated LR scale factors (default: 2,3,4)")
        p.add_argument("--crop", type=int, default=480, help="HR sub-image side (default: 480)")
        p.add_argument("--step", type=int, default=240,
                       help="stride between sub-images (default: 240)")
        p.add_argument("--workers", type=int, default=None,
                       help="processes (default: all cores)")
        p.add_argument("--strict", action="store_true",
                       help="stop at the first bad image instead of skipping it")
        p.add_argument("--quiet", action="store_true", help="no progress line")
        p.add_argument("--json", action="store_true", help="print one JSON summary")

    def run(self, args) -> int:
        from trainers.prepare import Settings, prepare

        parts = [s.strip() for s in args.scale.split(",") if s.strip()]
        if not all(p.isascii() and p.isdigit() for p in parts):
            raise InputError(f"--scale: expected comma-separated integers, got {args.scale!r}")
        scales = tuple(int(p) for p in parts)
        check_value("--workers", args.workers, Rule(kind=int, low=0, high=4096))
        settings = Settings(scales=scales, crop=args.crop, step=args.step)
        try:
            result = prepare(args.src, args.out, settings, workers=args.workers,
                             strict=args.strict, progress=not args.quiet)
        except KeyboardInterrupt:
            print(f"nas data: interrupted; the same command resumes: nas data prepare {args.src} "
                  f"--out {args.out}", file=sys.stderr)
            return 130
        summary = {"out": str(result.out), "images": result.images,
                   "sub_images": result.sub_images, "reused": result.reused,
                   "skipped": [{"file": f, "reason": r} for f, r in result.skipped],
                   "seconds": round(result.seconds, 2)}
        if args.json:
            print(json.dumps(summary, indent=1))
            return 0
        print(f"prepared {result.images} images into {result.sub_images} sub-images in "
              f"{result.seconds:.1f} s ({result.reused} done by an earlier run, "
              f"{len(result.skipped)} skipped): {result.out}")
        print(f"next: set data.train: {result.out} in a training config (nas train)")
        return 0
