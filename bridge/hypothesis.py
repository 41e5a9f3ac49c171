"""Declared hypotheses: a TOML file of ``[[hypothesis]]`` tables, validated into frozen dataclasses.

A hypothesis names an explanatory quantity, an outcome, its scope, one prediction (a rank relation, a sympy
functional form with a null model, an event ordering, or an equivalence), the tests to run, α, an equivalence
margin, declared confounders and the negative controls to beat (Jeffares & van der Schaar 2025 checklist), and
optionally the size of the effect it claims (``[hypothesis.power] effect = ...``), which ``unitheory study NAME
--plan`` turns into the power of the study's design (:mod:`bridge.plan`). The effect's unit depends on the
prediction kind (:data:`bridge.calibration.EFFECT_UNITS`): a rank claim's is the configuration-level Kendall τ
between the quantity and the outcome (in (0, 1)); a law's its signal-to-noise ratio (the standard deviation of
the law's mean outcome over configurations divided by the seed-level noise); an event ordering's the mean lag's
distance inside the tolerance in standard deviations of the lag; an equivalence's the margin in standard
deviations of a run's value.
Malformed files raise :class:`HypothesisFileError` naming the file, the key and the reason. Formulas are
parsed without evaluating their text (:mod:`bridge.expressions`), so a hostile file is refused, naming the
offending construct. See ``bridge/hypotheses/*.toml`` for worked examples.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from enum import Enum, StrEnum
from pathlib import Path
from typing import Any

import sympy

from bridge.stats.fit import Constraint, Expression, FitMethod, parse_expression, parse_formula

DEFAULT_CONTROLS = ("prime_count", "random_measure", "param_count")
MAX_FILE_BYTES = 1_000_000  #: a hypothesis file is a short text; larger ones are refused before reading


class Test(StrEnum):
    """The falsification tests a hypothesis may request (each needs a matching prediction kind)."""

    __test__ = False

    KENDALL = "kendall"
    PSI = "psi"
    CMI = "cmi"
    CMI_PGDL = "cmi_pgdl"
    ROBUST = "robust_sign_error"
    PARTIAL = "partial_rank"
    FIT = "fit"
    OUT_OF_SETTING = "out_of_setting"
    EVENT = "event_order"
    TOST = "tost"


class Kind(StrEnum):
    """Prediction kinds: ``rank`` ("higher Q -> larger outcome"), ``functional`` (sympy form + null model),
    ``event_order`` (event A precedes event B within a tolerance), ``equivalence`` ("no difference")."""

    RANK = "rank"
    FUNCTIONAL = "functional"
    EVENT = "event_order"
    EQUIVALENCE = "equivalence"


#: tests allowed per prediction kind
TESTS_FOR: dict[Kind, tuple[Test, ...]] = {
    Kind.RANK: (Test.KENDALL, Test.PSI, Test.CMI, Test.ROBUST, Test.PARTIAL, Test.CMI_PGDL),
    Kind.FUNCTIONAL: (Test.FIT, Test.OUT_OF_SETTING),
    Kind.EVENT: (Test.EVENT,),
    Kind.EQUIVALENCE: (Test.TOST,),
}
#: the tests run when a file declares none. A rank claim leaves out ``robust_sign_error`` (opt-in): it passes
#: only when every environment is significantly better than a coin flip, which needs >= 5 seeds per
#: configuration; over 3-12 configurations x 2-10 seeds it passed for 0-25% of true drivers (0% from 6
#: configurations on), so with it a true driver was supported in 0-11% of sweeps (``benchmarks/calibration.py``)
DEFAULT_TESTS: dict[Kind, tuple[Test, ...]] = {
    Kind.RANK: (Test.KENDALL, Test.PSI, Test.CMI, Test.PARTIAL),
    Kind.FUNCTIONAL: (Test.FIT, Test.OUT_OF_SETTING),
    Kind.EVENT: (Test.EVENT,),
    Kind.EQUIVALENCE: (Test.TOST,),
}


class HypothesisFileError(ValueError):
    """A malformed hypothesis file: the message reads ``FILE: KEY: REASON``."""


class Over(StrEnum):
    """What a rank claim ranges over: ``RUNS`` (default; one value per run, at ``at``) or ``STEPS`` (along
    training: a rank test within each run over its recorded steps, combined over configurations)."""

    RUNS = "runs"
    STEPS = "steps"


@dataclass(frozen=True)
class Scope:
    """Which runs the claim covers: spec and phenomenon names (empty = all), hyperparameter ``axes`` (the
    columns that define a configuration), the ``environment`` column that splits runs into settings, and
    ``over``: whether a rank claim ranges over runs or over the recorded steps within each run."""

    specs: tuple[str, ...] = ()
    phenomena: tuple[str, ...] = ()
    axes: tuple[str, ...] = ()
    environment: str = "spec"
    over: Over = Over.RUNS


@dataclass(frozen=True)
class Event:
    """The first recorded step at which ``expression`` (of recorded quantities) is above/below ``threshold``."""

    text: str
    expression: sympy.Expr
    threshold: float
    above: bool

    @property
    def quantities(self) -> tuple[str, ...]:
        return tuple(sorted(s.name for s in self.expression.free_symbols))


@dataclass(frozen=True)
class Prediction:
    """One prediction; only the fields of its ``kind`` are set.

    rank: ``direction`` (+1 "higher Q -> larger outcome", −1 the reverse). functional: ``expression``, ``null``,
    ``method``, ``fit_on`` (environment value the law is fitted on, for ``fit`` and ``out_of_setting``, which
    predicts every other environment; unset: ``fit`` pools all environments and ``out_of_setting`` fits on the
    first in sorted order), ``p0``, ``constraints`` (``"c > 0"``: a free parameter, one of < > <= >=, a number);
    an expression's symbols that are columns of the run table are data, the others free parameters (so never
    name a parameter like a run column). event_order:
    ``first``, ``second``, ``tolerance`` (steps B may precede A). equivalence: ``variable`` compared between
    the two ``levels`` of column ``by`` (``paired`` by seed).
    """

    kind: Kind
    direction: int = 1
    expression: Expression | None = None
    null: Expression | None = None
    method: FitMethod = FitMethod.CURVE_FIT
    fit_on: str | None = None
    p0: tuple[tuple[str, float], ...] = ()
    constraints: tuple[Constraint, ...] = ()
    first: Event | None = None
    second: Event | None = None
    tolerance: float = 0.0
    variable: str | None = None
    by: str | None = None
    levels: tuple[Any, ...] = ()
    paired: bool = False


@dataclass(frozen=True)
class Hypothesis:
    """A declared, checkable claim "``quantity`` explains ``outcome`` within ``scope``" (see module docstring).

    ``at`` picks which recorded value of each quantity enters the per-run table: ``"final"``, ``"initial"``, a
    step, or an :class:`Event` (the value at the run's first step where the event holds, e.g. at grokking).
    ``controls``: the negative controls to beat; omitted in the file means :data:`DEFAULT_CONTROLS` (or the
    file-level list) without the quantity itself, ``controls = []`` opts out explicitly (verdicts then say that
    no control was declared); a hypothesis that lists its own quantity among its controls is an error.
    ``equivalence_margin``: for an equivalence prediction the TOST margin; for a rank prediction the smallest
    correlation that matters, so that Kendall τ and the partial rank correlation fail when significantly below
    it. ``effect``: the effect the hypothesis claims (``[hypothesis.power] effect``), in its prediction kind's unit
    (module docstring; None: the plan uses :data:`bridge.calibration.DEFAULT_EFFECTS`, "a moderate effect")."""

    name: str
    quantity: str
    outcome: str
    prediction: Prediction
    scope: Scope = Scope()
    tests: tuple[Test, ...] = ()
    at: str | int | Event = "final"
    alpha: float = 0.05
    equivalence_margin: float | None = None
    confounders: tuple[str, ...] = ()
    controls: tuple[str, ...] = DEFAULT_CONTROLS
    n_test: int | None = None
    description: str = ""
    effect: float | None = None


class _Reader:
    """Typed access to one TOML table that reports ``file: key: reason`` and rejects unknown keys."""

    def __init__(self, source: str, table: Any, prefix: str) -> None:
        self.source, self.prefix = source, prefix
        if not isinstance(table, dict):
            self.fail("", f"expected a table, got {type(table).__name__}")
        self.table, self.used = table, set()

    def fail(self, key: str, reason: str):
        where = f"{self.prefix}.{key}" if self.prefix and key else (self.prefix or key)
        raise HypothesisFileError(f"{self.source}: {where}: {reason}")

    def get(self, key: str, types: type | tuple[type, ...], default: Any = ..., *, what: str = "") -> Any:
        self.used.add(key)
        if key not in self.table:
            if default is ...:
                self.fail(key, "missing required key")
            return default
        value = self.table[key]
        if isinstance(value, bool) and bool not in (types if isinstance(types, tuple) else (types,)):
            self.fail(key, f"expected {what or types}, got {value!r}")
        if not isinstance(value, types):
            self.fail(key, f"expected {what or types}, got {value!r}")
        return value

    def names(self, key: str, default: tuple[str, ...] = ()) -> tuple[str, ...]:
        value = self.get(key, list, list(default), what="a list of names")
        if not all(isinstance(v, str) and v for v in value):
            self.fail(key, f"expected a list of non-empty strings, got {value!r}")
        return tuple(value)

    def option(self, key: str, enum: type[Enum], default: Any = ...) -> Any:
        value = self.get(key, str, default.value if isinstance(default, Enum) else default, what="a string")
        try:
            return enum(value)
        except ValueError:
            self.fail(key, f"must be one of {[m.value for m in enum]}, got {value!r}")

    def finish(self) -> None:
        unknown = sorted(set(self.table) - self.used)
        if unknown:
            self.fail(unknown[0], f"unknown key (allowed: {sorted(self.used)})")

    def sub(self, key: str, *, required: bool = True) -> _Reader:
        table = self.get(key, dict, ... if required else {}, what="a table")
        return _Reader(self.source, table, f"{self.prefix}.{key}" if self.prefix else key)


def _event(reader: _Reader, key: str) -> Event:
    r = reader.sub(key)
    text = r.get("expression", str, what="a formula of recorded quantities")
    try:
        expression = parse_formula(text)
    except ValueError as err:
        r.fail("expression", str(err))
    has_above, has_below = "above" in r.table, "below" in r.table
    if has_above == has_below:
        r.fail("above", "give exactly one of 'above' or 'below'")
    threshold = r.get("above" if has_above else "below", (int, float), what="a number")
    r.used |= {"above", "below"}
    r.finish()
    return Event(text, expression, float(threshold), has_above)


def _expression(r: _Reader, key: str, text: str) -> Expression:
    try:
        return parse_expression(text)
    except ValueError as err:
        r.fail(key, str(err))


def _constraints(r: _Reader, expr: Expression, data: frozenset[str]) -> tuple[Constraint, ...]:
    """``constraints = ["c > 0"]``: each names a free parameter of the law (a symbol of its expression that is
    not a run column named by the hypothesis) and is parsed by a regular expression, never evaluated."""
    out = []
    for text in r.names("constraints"):
        try:
            c = Constraint.parse(text)
        except ValueError as err:
            r.fail("constraints", str(err))
        free = [s for s in expr.symbols if s not in data]
        if c.parameter not in free:
            r.fail("constraints", f"{text!r} names {c.parameter!r}, not a free parameter of the expression {free}")
        out.append(c)
    return tuple(out)


def _prediction(r: _Reader, quantity: str, outcome: str, data: frozenset[str] = frozenset()) -> Prediction:
    kind = r.option("kind", Kind)
    if kind is Kind.RANK:
        direction = r.get("direction", str, "increasing", what="'increasing' or 'decreasing'")
        if direction not in ("increasing", "decreasing"):
            r.fail("direction", f"must be 'increasing' or 'decreasing', got {direction!r}")
        out = Prediction(kind, direction=1 if direction == "increasing" else -1)
    elif kind is Kind.FUNCTIONAL:
        expr = _expression(r, "expression", r.get("expression", str, what="'target = formula'"))
        if expr.target != outcome:
            r.fail("expression", f"its target {expr.target!r} must be the hypothesis outcome {outcome!r}")
        null = _expression(r, "null", r.get("null", str, f"{outcome} = c_null", what="'target = formula'"))
        if null.target != outcome:
            r.fail("null", f"its target {null.target!r} must be the hypothesis outcome {outcome!r}")
        p0 = r.get("p0", dict, {}, what="a table of parameter start values")
        if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in p0.values()):
            r.fail("p0", f"start values must be numbers, got {p0!r}")
        columns = data | {quantity, outcome}
        free = sorted(dict.fromkeys(s for s in (*expr.symbols, *null.symbols) if s not in columns))
        if unknown := sorted(set(p0) - set(free)):
            r.fail("p0", f"names {unknown}, not a free parameter of the expression or the null {free}")
        fit_on = r.get("fit_on", (str, int, float), None, what="an environment value")
        out = Prediction(
            kind,
            expression=expr,
            null=null,
            method=r.option("method", FitMethod, FitMethod.CURVE_FIT),
            fit_on=None if fit_on is None else str(fit_on),
            p0=tuple(sorted((k, float(v)) for k, v in p0.items())),
            constraints=_constraints(r, expr, data | {quantity, outcome}),
        )
    elif kind is Kind.EVENT:
        tolerance = r.get("tolerance", (int, float), 0, what="a number of steps >= 0")
        if tolerance < 0:
            r.fail("tolerance", f"must be >= 0, got {tolerance!r}")
        out = Prediction(kind, first=_event(r, "first"), second=_event(r, "second"), tolerance=float(tolerance))
    else:
        levels = r.get("levels", list, what="a list of two values")
        if len(levels) != 2:
            r.fail("levels", f"expected exactly two values, got {levels!r}")
        out = Prediction(
            kind,
            variable=r.get("variable", str, quantity, what="a column name"),
            by=r.get("by", str, what="a column name"),
            levels=tuple(levels),
            paired=r.get("paired", bool, False, what="true or false"),
        )
    r.finish()
    return out


def _hypothesis(r: _Reader, defaults: dict[str, Any]) -> Hypothesis:
    name = r.get("name", str, what="a string")
    quantity = r.get("quantity", str, what="a recorded quantity name")
    outcome = r.get("outcome", str, what="an outcome or recorded quantity name")
    s = r.sub("scope", required=False)
    scope = Scope(
        s.names("specs"),
        s.names("phenomena"),
        s.names("axes"),
        s.get("environment", str, "spec"),
        s.option("over", Over, Over.RUNS),
    )
    s.finish()
    prediction = _prediction(r.sub("prediction"), quantity, outcome, frozenset({*scope.axes, scope.environment}))
    steps = scope.over is Over.STEPS
    if steps and prediction.kind is not Kind.RANK:
        r.fail("scope.over", f"'steps' applies to a 'rank' prediction, not a {prediction.kind.value!r} one")
    default_tests = (Test.KENDALL.value,) if steps else tuple(t.value for t in DEFAULT_TESTS[prediction.kind])
    tests = r.names("tests", default_tests)
    allowed = [Test.KENDALL.value] if steps else [t.value for t in TESTS_FOR[prediction.kind]]
    for t in tests:
        if t not in allowed:
            what = "a rank prediction over steps" if steps else f"a {prediction.kind.value!r} prediction"
            r.fail("tests", f"{t!r} does not apply to {what} (allowed: {allowed})")
    if prediction.constraints and Test.FIT.value not in tests:
        r.fail("prediction.constraints", f"constraints are judged by the 'fit' test, which tests {list(tests)} omit")
    needs_axes = {Test.PSI.value, Test.CMI.value, Test.CMI_PGDL.value, Test.ROBUST.value}
    if needs_axes & set(tests) and not scope.axes:
        r.fail("scope.axes", f"tests {sorted(needs_axes & set(tests))} need hyperparameter axes")
    alpha = r.get("alpha", (int, float), defaults["alpha"], what="a number in (0, 0.5)")
    if not 0 < alpha < 0.5:
        r.fail("alpha", f"must be in (0, 0.5), got {alpha!r}")
    margin = r.get("equivalence_margin", (int, float), None, what="a positive number")
    if margin is not None and margin <= 0:
        r.fail("equivalence_margin", f"must be > 0, got {margin!r}")
    if prediction.kind is Kind.RANK and margin is not None and margin >= 1:
        r.fail("equivalence_margin", f"a rank prediction's margin is a correlation in (0, 1), got {margin!r}")
    if prediction.kind is Kind.EQUIVALENCE and margin is None:
        r.fail("equivalence_margin", "an equivalence prediction needs a margin")
    at = r.get("at", (str, int, dict), "final", what="'final', 'initial', a step or an event table")
    if steps and "at" in r.table:
        r.fail("at", "a claim over steps uses every recorded step; remove 'at' or set scope.over = 'runs'")
    if isinstance(at, dict):
        at = _event(r, "at")
    elif at not in ("final", "initial") and not (isinstance(at, int) and at >= 0):
        r.fail("at", f"must be 'final', 'initial', a step >= 0 or an event table, got {at!r}")
    n_test = r.get("n_test", int, None, what="a positive int")
    if n_test is not None and n_test < 1:
        r.fail("n_test", f"must be >= 1, got {n_test!r}")
    effect = _effect(r.sub("power"), prediction.kind) if "power" in r.table else None
    controls = r.names("controls", defaults["controls"])
    if "controls" in r.table and quantity in controls:
        r.fail("controls", f"{quantity!r} is the hypothesis's quantity: a quantity is never its own control")
    out = Hypothesis(
        name=name,
        quantity=quantity,
        outcome=outcome,
        prediction=prediction,
        scope=scope,
        tests=tuple(Test(t) for t in tests),
        at=at,
        alpha=float(alpha),
        equivalence_margin=None if margin is None else float(margin),
        confounders=r.names("confounders"),
        controls=tuple(c for c in controls if c != quantity),  # a default control may be the quantity itself
        n_test=n_test,
        description=r.get("description", str, ""),
        effect=effect,
    )
    r.finish()
    return out


def _effect(p: _Reader, kind: Kind) -> float:
    """``[hypothesis.power] effect``: a number > 0 in the prediction kind's unit (below 1 for a rank claim, a
    Kendall τ)."""
    p.used.add("effect")
    p.finish()  # an unknown key (a misspelt "effect") is named before the missing one
    effect = p.get("effect", (int, float), what="a number > 0 in the unit of the prediction kind")
    if not (effect > 0 and (kind is not Kind.RANK or effect < 1)):
        bound = "in (0, 1): a configuration-level Kendall τ" if kind is Kind.RANK else "> 0"
        p.fail("effect", f"a {kind.value!r} prediction's effect must be {bound}, got {effect!r}")
    return float(effect)


def parse_hypotheses(text: str, *, source: str = "<string>") -> list[Hypothesis]:
    """Parse a hypothesis TOML document. File-level ``alpha`` and ``controls`` set defaults for every
    ``[[hypothesis]]``. Raises :class:`HypothesisFileError` (``source: key: reason``)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise HypothesisFileError(f"{source}: <toml>: {err}") from None
    except RecursionError:
        raise HypothesisFileError(f"{source}: <toml>: arrays or tables nested too deeply to read") from None
    top = _Reader(source, data, "")
    alpha = top.get("alpha", (int, float), 0.05, what="a number in (0, 0.5)")
    defaults = {"alpha": alpha, "controls": top.names("controls", DEFAULT_CONTROLS)}
    tables = top.get("hypothesis", list, what="an array of [[hypothesis]] tables")
    if not tables:
        top.fail("hypothesis", "the file declares no hypothesis")
    top.finish()
    out = [_hypothesis(_Reader(source, t, f"hypothesis[{i}]"), defaults) for i, t in enumerate(tables)]
    names = [h.name for h in out]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise HypothesisFileError(f"{source}: hypothesis.name: duplicate names {duplicates}")
    return out


def load_hypotheses(path: str | Path) -> list[Hypothesis]:
    """Read and validate a hypothesis file of at most :data:`MAX_FILE_BYTES` bytes of UTF-8 text (see
    :func:`parse_hypotheses`)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No hypothesis file at {str(path)!r}.")
    try:
        size = path.stat().st_size
        text = path.read_bytes().decode("utf-8") if size <= MAX_FILE_BYTES else None
    except UnicodeDecodeError as err:
        raise HypothesisFileError(f"{path}: <file>: not UTF-8 text ({err.reason} at byte {err.start})") from None
    except OSError as err:
        raise HypothesisFileError(f"{path}: <file>: cannot read it ({err.strerror or err})") from None
    if text is None:
        raise HypothesisFileError(
            f"{path}: <file>: {size} bytes, more than the {MAX_FILE_BYTES} a hypothesis file may hold"
        )
    return parse_hypotheses(text, source=str(path))
