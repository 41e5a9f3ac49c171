"""Declared constraints on a law's free parameters (``"c > 0"``) and their judgement on the parameter's
interval: on the declared side, on the wrong side, straddling the bound, or undefined (:mod:`bridge.stats.fit`
fits the law and computes the intervals)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

import numpy as np


class Side(StrEnum):
    """Where a parameter's interval lies with respect to a declared constraint."""

    RIGHT = "right"  # the whole interval satisfies the constraint
    WRONG = "wrong"  # the whole interval violates it
    STRADDLES = "straddles"
    UNDEFINED = "undefined"  # no interval (too few configurations, a failed fit)


_CONSTRAINT = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*(<=|>=|<|>)\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*")


@dataclass(frozen=True)
class Constraint:
    """A declared sign or bound of a law's free parameter, ``PARAM OP NUMBER`` with OP in <, >, <=, >=."""

    parameter: str
    op: str
    bound: float

    @classmethod
    def parse(cls, text: str) -> Constraint:
        """Parse ``"c > 0"`` with a regular expression (the text is never evaluated).

        Example:
            >>> Constraint.parse("k >= 1e-3")
            Constraint(parameter='k', op='>=', bound=0.001)
        """
        match = _CONSTRAINT.fullmatch(text) if isinstance(text, str) else None
        if match is None or not np.isfinite(float(match[3])):
            raise ValueError(
                f"A constraint must read 'PARAM OP NUMBER' with OP one of <, >, <=, >= and a finite number "
                f"(e.g. 'c > 0'). Got {text!r}."
            )
        return cls(match[1], match[2], float(match[3]))

    @property
    def text(self) -> str:
        return f"{self.parameter} {self.op} {self.bound:g}"

    def side(self, low: float, high: float) -> Side:
        """:class:`Side` of the interval [low, high] (e.g. for ``c > 0``: RIGHT iff low > 0, WRONG iff high <= 0)."""
        if not (np.isfinite(low) and np.isfinite(high)):
            return Side.UNDEFINED
        b = self.bound
        right, wrong = {
            ">": (low > b, high <= b),
            ">=": (low >= b, high < b),
            "<": (high < b, low >= b),
            "<=": (high <= b, low > b),
        }[self.op]
        return Side.RIGHT if right else Side.WRONG if wrong else Side.STRADDLES


@dataclass(frozen=True)
class ConstraintCheck:
    """A constraint judged on its parameter's estimate and interval. ``p_for`` / ``p_against`` are the one-sided
    p-values of H1 "the parameter lies on the declared side" / "on the wrong side" of the bound (the t test of the
    Wald interval, or the share of bootstrap resamples on the other side), so that at an interval of confidence
    1 − 2α, RIGHT holds exactly when ``p_for`` < α and WRONG when ``p_against`` < α."""

    constraint: Constraint
    estimate: float
    low: float
    high: float
    p_for: float = np.nan
    p_against: float = np.nan

    @property
    def side(self) -> Side:
        return self.constraint.side(self.low, self.high)

    def describe(self) -> str:
        where = {
            Side.RIGHT: "lies on the declared side",
            Side.WRONG: "lies wholly on the wrong side",
            Side.STRADDLES: f"straddles {self.constraint.bound:g}",
            Side.UNDEFINED: "is undefined",
        }[self.side]
        interval = f"[{self.low:.3g}, {self.high:.3g}]"
        return f"{self.constraint.text}: {self.constraint.parameter} = {self.estimate:.3g}, interval {interval} {where}"
