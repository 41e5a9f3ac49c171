"""The power of a planned hypothesis test, by the calibration simulation (:mod:`bridge.calibration`).

:func:`hypothesis_power` maps a hypothesis and the design of its runs (configurations × seeds per configuration,
:class:`bridge.plan.HypothesisDesign`) onto the calibration's simulated sweep: a rank claim becomes a true driver
tested with the hypothesis's own tests, simulated controls and confounder (:func:`bridge.calibration.rank_kind`),
a law the true law a + b log q, an event ordering the true order, an equivalence the true equivalence; its
declared effect (or :data:`bridge.calibration.DEFAULT_EFFECTS`) is converted to the simulation's
(:func:`bridge.calibration.design_effect`). Power is the rate of "supported" over the replications, with its
Monte-Carlo standard error sqrt(p (1 − p) / reps).

Where the simulation differs from the hypothesis the figure is a bound, and :attr:`PlannedPower.bound` says which
way: "≤" when the hypothesis must pass more than was simulated (per-environment rows, a control or a constraint
that is not simulated, a law with more parameters than the simulated two, ``out_of_setting``), "≥" when it has
more than was simulated (a rank effect above the model's ceiling), "≈" when the direction is unknown (several
axes for Ψ, CMI or the sign-error, several confounders, a paired equivalence). Claims along training
(``scope.over = "steps"``) and ``out_of_setting`` alone have no simulated counterpart: their power is not
available, and the plan says why.

Cache: the committed table ``bridge/studies/power.csv`` (written by ``benchmarks/power_table.py``: every built-in
study's designs, full and quick, at 100 replications, the benchmark's) answers a design it holds at once; any
other design is simulated on the spot with ``reps`` replications (default :data:`PLAN_REPS`; 0.02–0.3 s each on
one core, so seconds to half a minute per design), once per process. A grid of designs interpolated
conservatively was the alternative; it was not chosen because a design varies in more dimensions than a grid
can cover at this resolution (tests, simulated controls, confounder, margin, environments, effect), while a
direct simulation of one design is cheap.

The negative control ``param_count`` is simulated as a function of the swept axis (it ranks the outcome almost as
well as the driver); where the axes do not change the model's size it is constant, the engine leaves it out and
the power is higher: the plan then also gives the power without it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

import pandas as pd

from bridge.calibration import (
    DEFAULT_EFFECTS,
    EFFECT_CAP,
    EFFECT_UNITS,
    KINDS,
    N_RESAMPLES,
    TAU_CEILING,
    HypothesisKind,
    design_effect,
    power,
    rank_kind,
)
from bridge.hypothesis import DEFAULT_CONTROLS, Hypothesis, Kind, Over, Test

#: the committed power table (``benchmarks/power_table.py`` writes it)
TABLE = Path(__file__).resolve().parent / "studies" / "power.csv"
TABLE_COLUMNS = ["kind", "configs", "seeds", "effect", "alpha", "reps", "supported", "falsified", "inconclusive"]
#: replications of a design the table does not hold: the table's own (s.e. at most 0.05)
PLAN_REPS = 100
#: a hypothesis whose power is below this is flagged "under-powered"
POWER_TARGET = 0.8
#: tests whose rows depend on how the configurations are spread over several axes (one axis is simulated)
_AXIS_TESTS = {Test.PSI, Test.CMI, Test.CMI_PGDL, Test.ROBUST}


@dataclass(frozen=True)
class PlannedPower:
    """The calibration's power for one hypothesis's design: ``power`` (rate of "supported" when the claimed
    effect is true; NaN when not ``available``) with Monte-Carlo ``se`` over ``reps`` replications of the
    calibration ``kind`` at ``configs`` × ``seeds`` and the simulation's ``effect``; ``bound`` is "=", "≤", "≥" or
    "≈" (module docstring), ``source`` "table" or "simulated", and ``notes`` say where the simulation differs."""

    available: bool
    power: float = math.nan
    se: float = math.nan
    reps: int = 0
    kind: str = ""
    configs: int = 0
    seeds: int = 0
    effect: float = math.nan
    bound: str = "="
    source: str = ""
    notes: tuple[str, ...] = ()

    @property
    def under_powered(self) -> bool:
        """Power below :data:`POWER_TARGET` (an unavailable power is not flagged; its notes say why)."""
        return self.available and self.power < POWER_TARGET

    def describe(self, *, source: bool = False) -> str:
        """``power ≤ 0.72 ± 0.05`` (or ``power not available``); with ``source``, how it was obtained."""
        if not self.available:
            return "power not available"
        shown = f"{self.power:.2f}" if self.bound == "=" else f"{self.bound} {self.power:.2f}"
        text = f"power {shown} ± {self.se:.2f}"
        if source:
            how = {"table": "the committed power table", "simulated": "simulated now"}.get(self.source, self.source)
            text += f" ({self.reps} replications, {how})" if self.reps else " (the engine's rule)"
        return text


@lru_cache(maxsize=1)
def _table() -> pd.DataFrame:
    if not TABLE.is_file():
        return pd.DataFrame(columns=TABLE_COLUMNS)
    table = pd.read_csv(TABLE)
    missing = sorted(set(TABLE_COLUMNS) - set(table.columns))
    if missing:
        raise ValueError(f"{TABLE}: the power table lacks columns {missing}; rerun benchmarks/power_table.py.")
    return table


def lookup(kind: str, configs: int, seeds: int, effect: float, alpha: float) -> pd.Series | None:
    """The committed table's row for exactly this cell (None if it holds none)."""
    t = _table()
    hit = t[(t["kind"] == kind) & (t["configs"] == configs) & (t["seeds"] == seeds)
            & ((t["effect"] - effect).abs() < 1e-9) & ((t["alpha"] - alpha).abs() < 1e-12)]  # fmt: skip
    return None if hit.empty else hit.iloc[-1]


#: the cells simulated in this process, as rows of the power table (``benchmarks/power_table.py`` writes them)
SIMULATED: dict[tuple, dict] = {}


def cell_power(
    kind: HypothesisKind, configs: int, seeds: int, effect: float, alpha: float, reps: int = PLAN_REPS
) -> PlannedPower:
    """Power of one simulated cell: from the committed table if it holds it, else simulated with ``reps``
    replications (once per process: :data:`SIMULATED`)."""
    row = lookup(kind.name, configs, seeds, effect, alpha)
    key = (kind.name, configs, seeds, effect, alpha, reps)
    if row is not None:
        rate, n, source = float(row["supported"]), int(row["reps"]), "table"
    else:
        if key not in SIMULATED:
            result = power(configs, seeds, effect, kind=kind, reps=reps, alpha=alpha, n_resamples=N_RESAMPLES)
            SIMULATED[key] = dict(zip(TABLE_COLUMNS, (kind.name, configs, seeds, effect, alpha, reps, result.supported,
                                                      result.falsified, result.inconclusive), strict=True))  # fmt: skip
        rate, n, source = SIMULATED[key]["supported"], reps, "simulated"
    se = math.sqrt(rate * (1 - rate) / n)
    return PlannedPower(True, rate, se, n, kind.name, configs, seeds, effect, "=", source)


def _law_parameters(h: Hypothesis, columns: set[str]) -> int:
    """The free parameters of the law: its symbols that are not run columns (as the engine decides)."""
    data = columns | {h.quantity, h.outcome, *h.scope.axes, h.scope.environment}
    return len([s for s in h.prediction.expression.symbols if s not in data])


def effect_of(h: Hypothesis) -> tuple[float, bool]:
    """The hypothesis's claimed effect in its kind's unit and whether it was declared (else the default)."""
    return (h.effect, True) if h.effect is not None else (DEFAULT_EFFECTS[h.prediction.kind], False)


def describe_effect(h: Hypothesis) -> str:
    """``configuration-level Kendall τ 0.5 (default: a moderate effect)``."""
    effect, declared = effect_of(h)
    return f"{EFFECT_UNITS[h.prediction.kind]} {effect:g}" + ("" if declared else " (default: a moderate effect)")


def unavailable(why: str) -> PlannedPower:
    return PlannedPower(False, notes=(why,))


def hypothesis_power(h: Hypothesis, design, reps: int = PLAN_REPS) -> PlannedPower:
    """The power of ``h`` on ``design`` (a :class:`bridge.plan.HypothesisDesign`): module docstring."""
    kind = h.prediction.kind
    if design.runs == 0:
        return unavailable("no run of the study is in the hypothesis's scope")
    if kind is Kind.RANK and h.scope.over is Over.STEPS:
        return unavailable("the calibration simulates no claim along training (scope.over = 'steps')")
    effect, _ = effect_of(h)
    notes, bounds = [], set()
    configs, seeds = design.configurations, design.min_per_configuration
    if kind is Kind.RANK:
        if h.quantity in design.columns and math.factorial(configs) * h.alpha < 1:
            # the quantity is a sweep axis, the same for every seed of a configuration: permutations that move
            # configurations whole give its Kendall τ at most G! values, so p >= 1/G! (bridge.stats.nested)
            why = (f"{h.quantity} labels the {configs} configurations, so the smallest permutation p is "
                   f"1/{configs}! = {1 / math.factorial(configs):.3g} > α: the claim cannot be supported with so few "
                   "configurations")  # fmt: skip
            return PlannedPower(True, 0.0, 0.0, 0, "", configs, seeds, effect, "=", "rule", (why,))
        if effect >= TAU_CEILING:
            notes.append(f"τ {effect:g} is above what the calibration model reaches ({TAU_CEILING}): power at τ "
                         f"{TAU_CEILING}")  # fmt: skip
            bounds.add("≥")
        sim_effect = EFFECT_CAP if effect >= TAU_CEILING else round(design_effect(kind, effect), 3)
        simulated = tuple(c for c in h.controls if c in DEFAULT_CONTROLS)
        others = [c for c in h.controls if c not in DEFAULT_CONTROLS]
        if others:
            notes.append(f"controls {others} are not simulated (the simulated ones: {list(DEFAULT_CONTROLS)})")
            bounds.add("≤")
        if len(h.confounders) > 1:
            notes.append(f"{len(h.confounders)} confounders, one simulated")
            bounds.add("≈")
        if len(design.axes) > 1 and _AXIS_TESTS & set(h.tests):
            shown = sorted(t.value for t in _AXIS_TESTS & set(h.tests))
            notes.append(f"{shown} over {len(design.axes)} axes, one simulated")
            bounds.add("≈")
        if Test.ROBUST in h.tests and h.n_test is not None:
            notes.append("the sign-error's Hoeffding weights for n_test are not simulated")
            bounds.add("≈")
        tests = tuple(t.value for t in h.tests)
        chosen = rank_kind(tests, controls=simulated, confounder=bool(h.confounders), margin=h.equivalence_margin)
        result = cell_power(chosen, configs, seeds, sim_effect, h.alpha, reps)
        if "param_count" in simulated:
            rest = tuple(c for c in simulated if c != "param_count")
            alone = rank_kind(tests, controls=rest, confounder=bool(h.confounders), margin=h.equivalence_margin)
            without = cell_power(alone, configs, seeds, sim_effect, h.alpha, reps)
            if without.power != result.power:
                notes.append(f"if param_count is constant over these runs (the engine then leaves it out): "
                             f"{without.describe()}")  # fmt: skip
        if Test.KENDALL in h.tests and len(design.environments) > 1:
            # every environment's own Kendall row must pass too: power is at most the weakest one's
            alone = rank_kind(("kendall",), controls=(), confounder=False, margin=h.equivalence_margin)
            parts = {e.name: cell_power(alone, e.configurations, e.min_per_configuration, sim_effect, h.alpha, reps)
                     for e in design.environments}  # fmt: skip
            name, weakest = min(parts.items(), key=lambda item: item[1].power)
            if weakest.power < result.power:
                notes.append(f"the weakest row is Kendall in environment {name} ({weakest.configs} × "
                             f"{weakest.seeds}; {result.power:.2f} pooled)")  # fmt: skip
                result = weakest
            notes.append(f"Kendall must also pass in each of the {len(parts)} environments")
            bounds.add("≤")
    elif kind is Kind.FUNCTIONAL:
        tests = set(h.tests)
        if Test.FIT not in tests:
            return unavailable("out_of_setting predicts other environments; the calibration simulates one")
        if Test.OUT_OF_SETTING in tests:
            notes.append("out_of_setting is not simulated and must pass too")
            bounds.add("≤")
        k = _law_parameters(h, set(design.columns_seen))
        sim_effect = round(design_effect(kind, effect), 3)
        if seeds < 2 or configs <= k:
            why = (f"{configs} configurations for {k} parameters" if configs <= k
                   else f"{seeds} run per configuration")  # fmt: skip
            why = f"its lack of fit is untestable ({why}), so the law cannot be supported"
            return PlannedPower(True, 0.0, 0.0, 0, "", configs, seeds, sim_effect, "=", "rule", (why,))
        if k != 2:
            notes.append(f"the simulated law has 2 parameters, this one {k}")
            bounds.add("≤" if k > 2 else "≈")
        if h.prediction.constraints:
            notes.append(f"its constraints ({', '.join(c.text for c in h.prediction.constraints)}) are not simulated")
            bounds.add("≤")
        if h.controls:
            notes.append(f"the law must also beat the controls {list(h.controls)}, which are not simulated")
            bounds.add("≤")
        result = cell_power(KINDS["true law"], configs, seeds, sim_effect, h.alpha, reps)
    elif kind is Kind.EVENT:
        notes.append("runs in which an event never happens are left out when the test runs")
        result = cell_power(KINDS["true order"], configs, seeds, round(effect, 3), h.alpha, reps)
    else:
        if h.prediction.paired:
            notes.append("simulated unpaired")
            bounds.add("≈")
        result = cell_power(KINDS["true equivalence"], configs, seeds, round(effect, 3), h.alpha, reps)
    bound = "=" if not bounds else bounds.pop() if len(bounds) == 1 else "≈"
    return replace(result, bound=bound, notes=tuple(notes))
