from __future__ import annotations

import json
from dataclasses import replace

from analysis.metrics import COL
from nas.references import load_references
from search_space.choices import SCALES
from search_space.errors import InputError
from search_space.limits import PROFILE_RULES
from search_space.validation import check_value


class Command:
    """Measure how faithfully a search's proxy ranks networks, against reference networks.

    Proxy-trains every reference exactly as a trial of the config would be trained, then reports
    Kendall tau, Spearman and pairwise accuracy (pairs >= 0.10 dB apart), each with a bootstrap
    90% interval, for the calibrated predictor (leave-one-out), the raw proxy PSNR and
    training-free baselines (log params, MACs, a size-only regression, grad-norm, synflow).

    Examples:
      nas fidelity                          the shipped references, the default (cpu) proxy
      nas fidelity --shipped                the figures shipped for the preset, no training
      nas fidelity --shipped --scale 2      ... at x2
      nas fidelity --refs mine.yaml         your own networks: [{name, spec, psnr_ref, source}]
      nas fidelity --config gpu.yaml --fit  refit the predictor for another proxy
    """

    @staticmethod
    def add_arguments(parser) -> None:
        parser.add_argument("--config", metavar="YAML",
                            help="search config whose proxy is measured (default: the defaults)")
        parser.add_argument("--refs", metavar="YAML",
                            help="reference list (default: the shipped reference set)")
        parser.add_argument("--out", metavar="DIR",
                            help="output folder; finished references in it are reused "
                                 "(default: runs/fidelity-<preset>)")
        parser.add_argument("--fit", action="store_true",
                            help="fit the predictor on these references (<out>/predictor.json)")
        parser.add_argument("--shipped", action="store_true",
                            help="print the shipped figures of the config's preset; train nothing")
        parser.add_argument("--scale", type=int, metavar="S",
                            help="upscaling factor (default: the config's); the shipped list "
                                 "and predictor of that scale")
        parser.add_argument("--threads", type=int, metavar="N",
                            help="CPU threads per proxy training (default: all, as a trial)")
        parser.add_argument("--json", action="store_true", help="print one JSON object")
        parser.add_argument("--quiet", action="store_true", help="no per-reference progress")

    def run(self, args) -> int:
        from nas.config import SearchConfig
        from nas.fidelity import run_fidelity, shipped_fidelity
        from nas.proxy import proxy_preset

        config = SearchConfig.from_file(args.config) if args.config else SearchConfig.defaults()
        check_value("--threads", args.threads, PROFILE_RULES["threads"])
        if args.scale is not None:
            if args.scale not in SCALES:
                raise InputError(f"--scale: expected one of {', '.join(map(str, SCALES))}, got "
                                 f"{args.scale}")
            config = replace(config, space={**config.space, "scale": args.scale})
        if args.shipped:
            if args.refs or args.fit:
                raise InputError("--shipped: prints the shipped figures; do not combine it "
                                 "with --refs or --fit")
            doc = shipped_fidelity(proxy_preset(config), config.scale)
        else:
            refs = load_references(args.refs, scale=config.scale)
            out = args.out or f"runs/fidelity-{proxy_preset(config)}"
            doc = run_fidelity(config, refs, out, fit=args.fit, threads=args.threads,
                               progress=not (args.quiet or args.json),
                               shipped_refs=args.refs is None)
        if args.json:
            print(json.dumps(doc, indent=1))
        else:
            print(format_fidelity(doc))
        return 0


def format_fidelity(doc) -> str:
    """The statistics table and the per-reference table, as text."""
    lines = [f"proxy preset {doc['preset']}{_scale_text(doc)}: {doc['n']} references, "
             f"{doc['pairs']} pairs >= {doc['min_gap_db']:.2f} dB apart; predictor "
             f"{doc['predictor_mode']}; mean proxy cost {doc['mean_proxy_seconds']:.0f} s per "
             "reference",
             f"  {'score':12s} {'kendall tau':>22s} {'spearman':>22s} {'pairwise acc.':>22s}"]
    for name, s in doc["scores"].items():
        cells = ["-" if s[k] is None else
                 f"{s[k]:+.3f} [{s[k + '_ci'][0]:+.2f}, {s[k + '_ci'][1]:+.2f}]"
                 for k in ("kendall_tau", "spearman", "pairwise_accuracy")]
        lines.append(f"  {name:12s} " + " ".join(f"{c:>22s}" for c in cells))
    verdict = "beats" if doc["predictor_beats_baselines"] else "does NOT beat"
    lines.append(f"the predictor {verdict} every training-free baseline (tau and pairwise)")
    if doc.get("mae_db"):
        lines.append("mean absolute error: " + ", ".join(
            f"{k} {v:.3f} dB" for k, v in doc["mae_db"].items()))
    small = doc.get("small")
    if small and small.get("n"):
        head = (f"below {small['max_params']:,} params: {small['n']} references, "
                f"{small['pairs']} pairs")
        for name in ("predictor", "size_model", "proxy"):
            s = (small.get("scores") or {}).get(name)
            if s and s["kendall_tau"] is not None and s["pairwise_accuracy"] is not None:
                head += (f"; {name} tau {s['kendall_tau']:+.3f}, pairwise "
                         f"{s['pairwise_accuracy']:.3f}")
        lines.append(head + "; MAE " + ", ".join(
            f"{k} {v:.3f} dB" for k, v in (small.get("mae_db") or {}).items()))
    lines.append(f"  {'reference':16s} {'ref':>7s} {'proxy':>7s} {'pred':>7s} {'params':>9s} "
                 f"{'MACs[G]':>8s} {'seconds':>7s}")
    for r in sorted(doc["refs"], key=lambda r: r["psnr_ref"]):
        pred = "-" if r["psnr_pred"] is None else f"{r['psnr_pred']:.3f}"
        lines.append(f"  {r['name']:16s} {r['psnr_ref']:7.3f} {r[COL.psnr_proxy]:7.3f} {pred:>7s} "
                     f"{r[COL.params]:9,d} {r[COL.macs_g]:8.2f} {r['proxy_seconds']:7.0f}")
    return "\n".join(lines)


def _scale_text(doc) -> str:
    scale = doc.get("scale")
    return f" at x{scale}" if scale else ""
