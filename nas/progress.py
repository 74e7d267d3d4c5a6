"""The live progress line of ``nas launch`` (stderr) and the end-of-run summary figures.

On a terminal the line is redrawn in place; otherwise (logs, CI) one line is printed per event.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

import pandas as pd

from analysis import pareto
from analysis.metrics import COL
from analysis.rundir import STATUS

__all__ = ["Progress", "pareto_front_size", "format_duration"]


def format_duration(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "?"
    seconds = max(0, int(round(seconds)))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m:02d}m" if h else (f"{m}m{s:02d}s" if m else f"{s}s")


def pareto_front_size(rows: Sequence[Mapping[str, Any]], objectives: Mapping[str, str]) -> int:
    """Number of non-dominated completed rows over ``objectives`` (``analysis.pareto``)."""
    columns = [COL.status, *objectives]
    table = pd.DataFrame([{c: r.get(c) for c in columns} for r in rows], columns=columns)
    return int(pareto.pareto_mask(table, objectives).sum()) if len(table) else 0


class Progress:
    """``[nas] 5/13 done | 1 running | 1 failed | best psnr 27.41 dB | front 3 | ETA 2m10s``.

    Args:
        total: Trials of this run (anchors included), None for a wall-clock budget.
        deadline: ``time.monotonic()`` at which a wall-clock budget ends, or None.
        concurrency: Trials at a time (for the ETA).
        objectives: For the front size.
        stream: Where to write (stderr).
        enabled: False silences it (tests, ``--quiet``).
    """

    def __init__(self, *, total: int | None, deadline: float | None, concurrency: int,
                 objectives: Mapping[str, str], stream: TextIO | None = None,
                 enabled: bool = True) -> None:
        self.total = total
        self.deadline = deadline
        self.concurrency = max(1, concurrency)
        self.objectives = dict(objectives)
        self.stream = stream  # None: sys.stderr at the time of writing
        self.enabled = enabled
        self.durations: list[float] = []
        self.started = time.monotonic()
        self._tty = bool(getattr(self._out(), "isatty", lambda: False)())
        self._last = ""

    def _out(self) -> TextIO:
        return self.stream or sys.stderr

    def __getstate__(self) -> dict[str, Any]:
        # Ray pickles the experiment (callbacks included); streams do not pickle
        return {**self.__dict__, "stream": None}

    def trial_done(self, seconds: float | None) -> None:
        if seconds is not None:
            self.durations.append(float(seconds))

    def line(self, rows: Sequence[Mapping[str, Any]]) -> str:
        finished = [r for r in rows if r.get(COL.status) not in (None, STATUS.running)]
        running = sum(1 for r in rows if r.get(COL.status) == STATUS.running)
        failed = sum(1 for r in finished if r.get(COL.status) == STATUS.failed)
        infeasible = sum(1 for r in finished if r.get(COL.status) == STATUS.infeasible)
        psnrs = [r[COL.psnr] for r in finished
                 if r.get(COL.status) == STATUS.completed and r.get(COL.psnr) is not None]
        total = f"/{self.total}" if self.total is not None else ""
        parts = [f"{len(finished)}{total} done", f"{running} running"]
        if failed:
            parts.append(f"{failed} failed")
        if infeasible:
            parts.append(f"{infeasible} infeasible")
        parts.append(f"best psnr {max(psnrs):.2f} dB" if psnrs else "best psnr -")
        parts.append(f"front {pareto_front_size(finished, self.objectives)}")
        parts.append(f"ETA {format_duration(self.eta(len(finished)))}")
        return "[nas] " + " | ".join(parts)

    def eta(self, finished: int) -> float | None:
        """Seconds left: the wall-clock budget's rest, or unfinished trials x mean trial time."""
        if self.deadline is not None:
            return max(0.0, self.deadline - time.monotonic())
        if self.total is None or not self.durations:
            return None
        mean = sum(self.durations) / len(self.durations)
        return max(0, self.total - finished) * mean / self.concurrency

    def update(self, rows: Sequence[Mapping[str, Any]]) -> None:
        if not self.enabled:
            return
        text = self.line(rows)
        if text == self._last:
            return
        self._last = text
        out = self._out()
        out.write("\r\033[K" + text if self._tty else text + "\n")
        out.flush()

    def close(self) -> None:
        if self.enabled and self._tty and self._last:
            self._out().write("\n")
            self._out().flush()
