"""What a session of ``nas launch`` did: :class:`LaunchSummary` and the lines it prints."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from analysis.fidelity import kendall_tau
from analysis.metrics import COL
from analysis.rundir import FINISHED, STATUS, RunDir, read_json
from nas.budget import Budget
from nas.config import SearchConfig
from nas.progress import format_duration

__all__ = ["LaunchSummary", "summary_lines"]


@dataclass
class LaunchSummary:
    """What a session did; printed by ``nas launch``."""

    run_dir: Path
    rows: list[dict[str, Any]]
    wall_seconds: float
    trial_seconds: float
    concurrency: int
    budget: Budget
    resumed: bool = False
    interrupted: bool = False  # stopped (Ctrl-C) before the budget was spent
    lines: list[str] = field(default_factory=list)

    @property
    def overhead_seconds(self) -> float:
        """Wall time not explained by trial compute: wall - trial time / concurrency."""
        return self.wall_seconds - self.trial_seconds / max(1, self.concurrency)

    @property
    def overhead_fraction(self) -> float:
        return self.overhead_seconds / self.wall_seconds if self.wall_seconds > 0 else 0.0

    def anchor_tau(self) -> tuple[float | None, int]:
        """Kendall tau between anchors' proxy PSNR and official-weight PSNR, and n."""
        pairs = [(r[COL.psnr_proxy], r[COL.psnr_official]) for r in self.rows
                 if r.get(COL.is_anchor) and r.get(COL.status) == STATUS.completed
                 and r.get(COL.psnr_proxy) is not None and r.get(COL.psnr_official) is not None]
        if len(pairs) < 2:
            return None, len(pairs)
        tau = kendall_tau([p for p, _ in pairs], [o for _, o in pairs])
        return (None if math.isnan(tau) else tau), len(pairs)

    def counts(self) -> dict[str, int]:
        out = {s: 0 for s in FINISHED}
        for r in self.rows:
            if r.get(COL.status) in out:
                out[r[COL.status]] += 1
        return out


def _calibration_line(run_dir: Path) -> str:
    try:
        record = read_json(RunDir(run_dir).calibration_json)
    except (OSError, ValueError):
        return "psnr: raw proxy PSNR (no calibration record)"
    if not record.get("calibrated"):
        return f"psnr: raw proxy PSNR; {record.get('predictor')}"
    fid = record.get("fidelity")
    if not fid:
        return f"psnr: predicted converged PSNR ({record['predictor']})"
    p = fid["scores"]["predictor"]
    cal = record.get("calibration")
    where = (f"calibration.json; it trained {cal['trained']} references, took "
             f"{format_duration(cal['wall_s'])} of the wall time, and reused {cal['reused']} "
             "from the store" if cal
             else "`nas fidelity --shipped" + (f" --scale {fid['scale']}`" if fid.get("scale")
                                              else "`"))
    return (f"psnr: predicted converged PSNR ({record['predictor']}; leave-one-out over "
            f"{fid['n']} references: Kendall tau {p['kendall_tau']:+.2f}, pairwise accuracy "
            f"{p['pairwise_accuracy']:.2f}; {where})")


def summary_lines(summary: LaunchSummary, config: SearchConfig) -> list[str]:
    c = summary.counts()
    lines = [
        f"run: {summary.run_dir}",
        "trials: " + ", ".join(f"{v} {k}" for k, v in c.items()) +
        f" ({sum(1 for r in summary.rows if r.get(COL.is_anchor))} anchors; "
        f"budget {summary.budget.describe()})",
        f"wall time {format_duration(summary.wall_seconds)}; harness overhead "
        f"{summary.overhead_seconds:.1f} s = {100 * summary.overhead_fraction:.1f}% "
        f"(wall - trial compute / {summary.concurrency})",
    ]
    best = [r for r in summary.rows if r.get(COL.status) == STATUS.completed
            and r.get(COL.psnr) is not None and not r.get(COL.is_anchor)]
    if best:
        top = max(best, key=lambda r: r[COL.psnr])
        lines.append(f"best sampled psnr {top[COL.psnr]:.3f} dB (trial {top[COL.number]}, "
                     f"arch {top[COL.arch_id]}, {top.get(COL.params)} params, "
                     f"{top.get(COL.runtime_ms) or float('nan'):.1f} ms)")
    failed = [r for r in summary.rows if r.get(COL.status) == STATUS.failed]
    for r in failed[:5]:
        lines.append(f"trial {r[COL.number]} failed: {r.get(COL.reason) or '?'} "
                     f"(see {RunDir(summary.run_dir).trial(r[COL.trial_id]).train_log})")
    if len(failed) > 5:
        lines.append(f"... and {len(failed) - 5} more failed trials (trials.csv)")
    lines.append(_calibration_line(summary.run_dir))
    tau, n = summary.anchor_tau()
    if n >= 2 and tau is not None:
        lines.append(f"proxy fidelity: Kendall tau {tau:+.2f} between anchors' proxy psnr and "
                     f"official-weight psnr (n={n}; with n < 10 only a rough indication)")
    else:
        lines.append(f"proxy fidelity: not computed ({n} anchors with official weights completed;"
                     f" needs >= 2)")
    if summary.interrupted:
        lines.append(f"interrupted before the budget was spent; continue with "
                     f"`nas launch --resume {summary.run_dir}`")
    else:
        lines.append(f"next: nas pareto {summary.run_dir}")
    return lines
