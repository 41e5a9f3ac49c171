"""Parameter constraints as data: what each parameter of a phenomenon must be, checked before anything runs.

A phenomenon declares ``constraints`` next to its ``parameters`` (scikit-learn's ``_parameter_constraints``
habit)::

    constraints = {"n_train": Interval(1, None), "optimizer": OneOf(["adam", "sgd"]),
                   "rewind_step": Interval(0, "train_steps", closed="left")}

Every parameter is first checked against the type of its default (:func:`type_problem`), then against its
constraint. A bound may name another parameter (``"train_steps"``), so one run's parameters are checked together
(:func:`first_problem`). :meth:`~empirics.phenomena.base.Phenomenon.resolve` raises on the first problem, and spec
validation reports it with the file and key (``params.n_train``), so a spec the loader accepts is one every run
accepts.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

Bound = float | str | None
"""A number, the name of another parameter, or ``None`` (unbounded)."""


def _real(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class _Constraint:
    """What every constraint offers: :meth:`holds`, :meth:`expected` and ``refs`` (other parameters it reads)."""

    refs: tuple[str, ...] = ()

    def holds(self, value: Any, params: Mapping[str, Any]) -> bool:
        raise NotImplementedError

    def expected(self, params: Mapping[str, Any]) -> str:
        raise NotImplementedError

    def problem(self, value: Any, params: Mapping[str, Any]) -> str | None:
        """``None`` if ``value`` satisfies the constraint in a run with ``params``, else what was expected."""
        return None if self.holds(value, params) else self.expected(params)


@dataclass(frozen=True)
class Interval(_Constraint):
    """A finite number (an int if ``integer``) between ``low`` and ``high`` (``closed``: which ends belong to it;
    ``None`` is unbounded and open). A bound given as a string is the value of that parameter in the same run."""

    low: Bound = None
    high: Bound = None
    closed: Literal["both", "left", "right", "neither"] = "both"
    integer: bool = False

    def holds(self, value: Any, params: Mapping[str, Any]) -> bool:
        low, high = (params.get(b) if isinstance(b, str) else b for b in (self.low, self.high))
        inside = _real(value) and math.isfinite(value) and (isinstance(value, int) or not self.integer)
        if inside and _real(low):
            inside = value > low or (value == low and self.closed in ("both", "left"))
        if inside and _real(high):
            inside = value < high or (value == high and self.closed in ("both", "right"))
        return inside

    def expected(self, params: Mapping[str, Any]) -> str:
        def text(bound: Bound, infinite: str) -> str:
            if bound is None:
                return infinite
            return f"{bound}={params.get(bound)!r}" if isinstance(bound, str) else repr(bound)

        left = "[" if self.low is not None and self.closed in ("both", "left") else "("
        right = "]" if self.high is not None and self.closed in ("both", "right") else ")"
        what = "an integer" if self.integer else "a value"
        return f"{what} in {left}{text(self.low, '-inf')}, {text(self.high, 'inf')}{right}"

    @property
    def refs(self) -> tuple[str, ...]:
        return tuple(b for b in (self.low, self.high) if isinstance(b, str))


@dataclass(frozen=True)
class OneOf(_Constraint):
    """One of ``options`` (compared with ``==``)."""

    options: Sequence[Any]

    def holds(self, value: Any, params: Mapping[str, Any]) -> bool:
        return value in list(self.options)

    def expected(self, params: Mapping[str, Any]) -> str:
        return f"one of {', '.join(map(repr, self.options))}"


@dataclass(frozen=True)
class Each(_Constraint):
    """A list of at least ``min_len`` values, each satisfying ``item`` (and all distinct if ``distinct``)."""

    item: Interval | OneOf
    min_len: int = 0
    distinct: bool = False

    def holds(self, value: Any, params: Mapping[str, Any]) -> bool:
        return (
            isinstance(value, list)
            and len(value) >= self.min_len
            and not (self.distinct and len(set(map(repr, value))) != len(value))
            and all(self.item.holds(v, params) for v in value)
        )

    def expected(self, params: Mapping[str, Any]) -> str:
        size = f"at least {self.min_len} " if self.min_len else ""
        return f"a list of {size}{'distinct ' if self.distinct else ''}values, each {self.item.expected(params)}"

    @property
    def refs(self) -> tuple[str, ...]:
        return self.item.refs


@dataclass(frozen=True)
class Rule(_Constraint):
    """Anything else: ``predicate(value, params)`` must hold; ``description`` says what is expected. ``refs`` names the
    other parameters it reads (a spec error may point at them)."""

    predicate: Callable[[Any, Mapping[str, Any]], bool]
    description: str
    refs: tuple[str, ...] = ()

    def holds(self, value: Any, params: Mapping[str, Any]) -> bool:
        return bool(self.predicate(value, params))

    def expected(self, params: Mapping[str, Any]) -> str:
        return self.description


Constraint = Interval | OneOf | Each | Rule

# The common ones; integer-ness comes from the type of the parameter's default.
POSITIVE_INT = Interval(1, None)
NON_NEGATIVE = Interval(0, None)
POSITIVE = Interval(0, None, closed="right")
FRACTION = Interval(0, 1)
FINITE = Interval()


def type_problem(value: Any, default: Any) -> str | None:
    """``None`` if ``value`` has the type of ``default`` (an int is a valid float; ``None`` allows any scalar), else
    what was expected."""
    if default is None:
        ok, expected = value is None or isinstance(value, (bool, int, float, str)), "a scalar"
    elif isinstance(default, bool):
        ok, expected = isinstance(value, bool), "a boolean"
    elif isinstance(default, int):
        ok, expected = isinstance(value, int) and not isinstance(value, bool), "an integer"
    elif isinstance(default, float):
        ok, expected = _real(value), "a number"
    else:
        ok, expected = isinstance(value, type(default)), f"a {type(default).__name__}"
    return None if ok else f"{expected} (like the default {default!r})"


def first_problem(
    defaults: Mapping[str, Any],
    constraints: Mapping[str, Constraint | Iterable[Constraint]],
    params: Mapping[str, Any],
) -> tuple[str, str, tuple[str, ...]] | None:
    """The first problem of one run's resolved ``params``: ``(name, expected, refs)``, or ``None``.

    Types come first (every parameter against its default), then the constraints in declaration order, so a
    constraint's bound is checked before the constraint that reads it when it is declared first.
    """
    for name, default in defaults.items():
        if name in params and (expected := type_problem(params[name], default)) is not None:
            return name, expected, ()
    for name, declared in constraints.items():
        for constraint in (declared,) if isinstance(declared, _Constraint) else tuple(declared):
            if name in params and (expected := constraint.problem(params[name], params)) is not None:
                return name, expected, tuple(constraint.refs)
    return None


__all__ = [
    "FINITE",
    "FRACTION",
    "NON_NEGATIVE",
    "POSITIVE",
    "POSITIVE_INT",
    "Constraint",
    "Each",
    "Interval",
    "OneOf",
    "Rule",
    "first_problem",
    "type_problem",
]
