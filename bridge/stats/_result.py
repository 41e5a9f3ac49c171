"""The results object every bridge test returns: statsmodels-style, frozen, unpackable as (statistic, pvalue)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class TestResult:
    """A test's outcome: ``statistic``, ``pvalue`` (NaN when the test has none), ``n`` and an interval.

    ``p_greater`` and ``p_less`` are the one-sided p-values of H1: "the parameter is above (below) its null
    value" (0 for correlations, 1/2 for a sign-error), NaN when the test has none; the verdict rules read the
    side the prediction names. ``details`` holds test-specific numbers (per axis, per environment, how the
    interval was obtained) shown by :meth:`summary`. Unpacks as ``statistic, pvalue = result``.
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
    p_greater: float = math.nan
    p_less: float = math.nan

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
        if math.isfinite(self.p_greater) or math.isfinite(self.p_less):
            lines.append(f"{'p (greater) / p (less)':<24}{f'{self.p_greater:.4g} / {self.p_less:.4g}':>38}")
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
