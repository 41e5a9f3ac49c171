"""The results object every bridge test returns: statsmodels-style, frozen, unpackable as (statistic, pvalue)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class TestResult:
    """A test's outcome: ``statistic``, ``pvalue`` (NaN when the test has none), ``n`` and an interval.

    ``details`` holds test-specific numbers (per axis, per environment) shown by :meth:`summary`.
    Unpacks as ``statistic, pvalue = result``.
    """

    __test__ = False  # not a pytest class

    name: str
    statistic: float
    pvalue: float
    n: int
    low: float = math.nan
    high: float = math.nan
    confidence_level: float = 0.95
    details: dict[str, Any] = field(default_factory=dict, compare=False)

    def conf_int(self) -> tuple[float, float]:
        """The interval computed with the test (at ``confidence_level``); NaNs when the test has none."""
        return (self.low, self.high)

    def __iter__(self) -> Iterator[float]:
        return iter((self.statistic, self.pvalue))

    def summary(self) -> str:
        """A plain-text table: statistic, p-value, n, interval and the test-specific details."""
        width = 62
        lines = [self.name.center(width), "=" * width]
        lines.append(f"{'statistic':<24}{self.statistic:>38.6g}")
        lines.append(f"{'p-value':<24}{self.pvalue:>38.4g}")
        lines.append(f"{'n':<24}{self.n:>38d}")
        level = f"{100 * self.confidence_level:g}% interval"
        lines.append(f"{level:<24}{f'[{self.low:.6g}, {self.high:.6g}]':>38}")
        if self.details:
            lines.append("-" * width)
            for key, value in self.details.items():
                shown = f"{value:.6g}" if isinstance(value, float) else str(value)
                lines.append(f"{key:<24}{shown:>38}")
        lines.append("=" * width)
        return "\n".join(lines)
