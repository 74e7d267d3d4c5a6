"""``--budget``: a number of sampled trials or a wall-clock time, bounded."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from search_space.errors import InputError
from search_space.validation import parse_number, short

__all__ = ["Budget", "MAX_BUDGET_TRIALS", "MAX_BUDGET_SECONDS"]

# Documented maxima (docs/validation.md): a budget is finite and at most this.
MAX_BUDGET_TRIALS = 100_000
MAX_BUDGET_SECONDS = 30 * 24 * 3600.0


@dataclass(frozen=True)
class Budget:
    """``--budget``: a number of sampled trials (anchors come on top) or a wall-clock time."""

    trials: int | None = None
    seconds: float | None = None

    _UNITS = {"s": 1, "m": 60, "h": 3600}

    @classmethod
    def parse(cls, text: str | int) -> Budget:
        """``8`` (trials, 1 to :data:`MAX_BUDGET_TRIALS`) or ``90s`` / ``45m`` / ``2h`` (wall
        clock, at most :data:`MAX_BUDGET_SECONDS`); ASCII digits only."""
        raw = str(text).strip()
        hint = ("expected a number of trials (e.g. 8) or a wall-clock duration "
                "(e.g. 90s, 45m, 2h)")
        if raw.isascii() and raw.isdigit():
            if not 1 <= int(raw) <= MAX_BUDGET_TRIALS:
                raise InputError(f"--budget: {hint}; a number of trials must be >= 1 and <= "
                                 f"{MAX_BUDGET_TRIALS}, got {short(raw)}")
            return cls(trials=int(raw))
        number, unit = raw[:-1], raw[-1:].lower()
        value = parse_number(number) if "e" not in number.lower() else None
        if unit not in cls._UNITS or value is None or not value > 0:
            raise InputError(f"--budget: {hint}, got {short(raw)}")
        seconds = value * cls._UNITS[unit]
        if seconds > MAX_BUDGET_SECONDS:
            raise InputError(f"--budget: a wall-clock budget is at most "
                             f"{MAX_BUDGET_SECONDS / 86400:g} days, got {short(raw)}")
        return cls(seconds=seconds)

    def to_dict(self) -> dict[str, Any]:
        return {"trials": self.trials, "seconds": self.seconds}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Budget:
        return cls(trials=data.get("trials"), seconds=data.get("seconds"))

    def describe(self) -> str:
        if self.trials is not None:
            return f"{self.trials} trials"
        return f"{self.seconds:g} s wall clock"
