"""Cells and values for people: a JSON cell of trials.csv as data, a metric as text, a spec as
one line. Used by the plots, the report, the export and the CLI's tables."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = ["parse_json", "format_value", "spec_summary"]


def parse_json(value: Any) -> Any:
    """A JSON cell of trials.csv (``spec``, ``hparams``) as data; None when empty or invalid."""
    if isinstance(value, (Mapping, list)):
        return value
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return None


def spec_summary(spec: Mapping[str, Any] | str | None) -> str:
    """One line: ``x4 C=48 | conv, rlfb x4 (esa=esa) | sequential | pixelshuffle``."""
    data = parse_json(spec)
    if not isinstance(data, Mapping):
        return ""
    stages = []
    for stage in data.get("body") or []:
        if isinstance(stage, str):
            stage = {"block": stage}
        text = str(stage.get("block", "?"))
        if int(stage.get("repeat", 1) or 1) > 1:
            text += f" x{stage['repeat']}"
        args = stage.get("args") or {}
        if args:
            inner = ", ".join(f"{k}={v}" for k, v in args.items())
            text += f" ({inner[:40]}{'...' if len(inner) > 40 else ''})"
        stages.append(text)
    if len(stages) > 4:  # long bodies (anchors): block counts in order of appearance
        counts: dict[str, int] = {}
        for stage in data.get("body") or []:
            block = stage if isinstance(stage, str) else str(stage.get("block", "?"))
            repeat = 1 if isinstance(stage, str) else int(stage.get("repeat", 1) or 1)
            counts[block] = counts.get(block, 0) + repeat
        stages = [f"{block} x{n}" if n > 1 else block for block, n in counts.items()]
    parts = [f"x{data.get('scale', '?')} C={data.get('channels', '?')}", ", ".join(stages),
             str(data.get("fusion", "sequential")), str(data.get("upsampler", "pixelshuffle"))]
    return " | ".join(p for p in parts if p)


def format_value(value: Any) -> str:
    """A metric for people: 4 significant digits, thousands separators, ``-`` when missing."""
    if value is None:
        return "-"
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value)).lower()
    if isinstance(value, (float, np.floating)):
        if math.isnan(value):
            return "-"
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        return f"{value:.4g}"
    if isinstance(value, (int, np.integer)):
        return f"{value:,d}"
    return str(value)
