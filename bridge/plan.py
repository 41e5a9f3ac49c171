"""Power before runs: the design of every hypothesis of a study and the power the calibration gives for it.

``unitheory study NAME --plan`` (:func:`bridge.studies.plan_study`) expands the study's specs into the runs they
will execute (:func:`planned_runs`, nothing runs), counts for each hypothesis the configurations and seeds in its
scope exactly as the verdict engine will group them (:func:`hypothesis_design`: a configuration is one setting of
``scope.axes``, plus the environment when the scope spans several; a law is fitted on its ``fit_on``
environment; with no axes every run is its own unit), and asks the calibration simulation for the power of
that design at the effect the hypothesis claims (:func:`bridge.power.hypothesis_power`). A study stores its plan
with its runs (``put_result("plan", ...)``) so its report shows each hypothesis's power without recomputing.

Power is the probability that the engine says "supported" when the claimed effect is true (Cohen 1988's power,
estimated by simulation as in the calibration of issue 10); below :data:`bridge.power.POWER_TARGET` the
hypothesis is flagged under-powered, so that an "inconclusive" verdict reads as "the design could not have
decided" rather than as evidence against the claim.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd

from bridge.calibration import EFFECT_UNITS
from bridge.hypothesis import Hypothesis, Kind, Over
from bridge.power import PLAN_REPS, POWER_TARGET, PlannedPower, describe_effect, effect_of, hypothesis_power
from bridge.stats import configuration_groups
from bridge.tables import select_runs

#: planned-run columns that are not parameters of a run
_RUN_KEYS = ("run_id", "spec", "phenomenon", "recorded_steps")


@dataclass(frozen=True)
class Environment:
    """One environment of a hypothesis spanning several: its ``configurations`` and fewest runs in one."""

    name: str
    configurations: int
    min_per_configuration: int


@dataclass(frozen=True)
class HypothesisDesign:
    """The runs a hypothesis is tested on: ``runs`` in scope, ``configurations`` (units of inference) defined by
    ``columns``, runs per configuration (``min_per_configuration`` … ``max_per_configuration``; more runs than
    ``seeds`` when a parameter that is not an axis varies within a configuration), the distinct ``seeds``, the
    scope's ``axes`` present on the runs, ``environments`` when the scope spans several, the fewest recorded
    ``steps`` of a run (claims along training), the run columns seen and ``notes``."""

    runs: int
    configurations: int
    min_per_configuration: int
    max_per_configuration: int
    seeds: int
    columns: tuple[str, ...] = ()
    axes: tuple[str, ...] = ()
    environments: tuple[Environment, ...] = ()
    steps: int | None = None
    columns_seen: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    def describe(self) -> str:
        """``9 configurations (init_scale × weight_decay) × 5 seeds = 45 runs``."""
        if self.runs == 0:
            return "no runs in scope"
        steps = f", {self.steps} recorded steps each" if self.steps is not None else ""
        if not self.columns:
            return f"{self.runs} runs, each its own unit{steps}"
        per = (str(self.min_per_configuration) if self.min_per_configuration == self.max_per_configuration
               else f"{self.min_per_configuration}-{self.max_per_configuration}")  # fmt: skip
        unit = "seeds" if per == str(self.seeds) else "runs"
        by = f" ({' × '.join(self.columns)})"
        return f"{self.configurations} configurations{by} × {per} {unit} = {self.runs} runs{steps}"


def planned_runs(specs: Sequence[Any]) -> pd.DataFrame:
    """One row per run the specs (:class:`empirics.spec.ExperimentSpec`) will execute, without running anything:
    ``run_id``, ``spec``, ``phenomenon``, every resolved parameter (the seed included) and ``recorded_steps``."""
    rows = [
        {"run_id": c.run_id, "spec": c.spec, "phenomenon": c.phenomenon, **c.params, "recorded_steps": len(c.schedule)}
        for spec in specs
        for c in spec.runs()
    ]
    return pd.DataFrame(rows)


def _sizes(frame: pd.DataFrame, columns: list[str]) -> pd.Series:
    """Runs per configuration (one per run without columns)."""
    if not columns:
        return pd.Series(1, index=range(len(frame)))
    return pd.Series(configuration_groups(frame.astype(str), columns)).value_counts()


def hypothesis_design(h: Hypothesis, runs: pd.DataFrame) -> HypothesisDesign:
    """The design of ``h`` on ``runs`` (:func:`planned_runs`, or a store's ``runs()``): the runs in scope grouped
    into configurations as :mod:`bridge.falsification` groups them (module docstring)."""
    frame = select_runs(runs, h.scope) if len(runs) else runs
    env = h.scope.environment
    pred = h.prediction
    if pred.kind is Kind.FUNCTIONAL and pred.fit_on is not None and env in frame.columns:
        frame = frame[frame[env].astype(str) == pred.fit_on]  # the law is fitted (and its power decided) there
    if frame.empty:
        return HypothesisDesign(0, 0, 0, 0, 0, notes=("no run of the study is in scope",))
    frame = frame.dropna(axis=1, how="all")  # parameters of other specs' runs only
    notes = []
    axes = [a for a in h.scope.axes if a in frame.columns]
    absent = [a for a in h.scope.axes if a not in frame.columns]
    if absent:
        notes.append(f"axes {absent} are not parameters of these runs and are ignored")
    many = env in frame.columns and frame[env].nunique() > 1
    if pred.kind is Kind.FUNCTIONAL:  # configuration labels of the law (bridge.falsification)
        columns = ([env] if axes and env in frame.columns and env not in axes else []) + axes
    else:
        columns = axes + ([env] if many and env not in axes else [])
    if not columns:
        notes.append("no axes: every run is its own unit (seeds are not nested in configurations)")
    sizes = _sizes(frame, columns)
    if columns:
        labels = frame.astype(str).assign(_g=configuration_groups(frame.astype(str), columns))
        for c in [c for c in frame.columns if c not in (*_RUN_KEYS, "seed", *columns)]:
            if labels.groupby("_g")[c].nunique().max() > 1:
                notes.append(f"{c} varies within configurations without being an axis: its values count as "
                             "replicates")  # fmt: skip
    environments = ()
    if many and pred.kind is not Kind.FUNCTIONAL:
        environments = tuple(
            Environment(str(name), len(s := _sizes(part, axes)), int(s.min()))
            for name, part in frame.groupby(env, sort=True)
        )
    steps = None
    if h.scope.over is Over.STEPS and "recorded_steps" in frame.columns:
        steps = int(frame["recorded_steps"].min())
    return HypothesisDesign(
        runs=len(frame),
        configurations=len(sizes),
        min_per_configuration=int(sizes.min()),
        max_per_configuration=int(sizes.max()),
        seeds=int(frame["seed"].nunique()) if "seed" in frame.columns else 1,
        columns=tuple(columns),
        axes=tuple(axes),
        environments=environments,
        steps=steps,
        columns_seen=tuple(frame.columns),
        notes=tuple(notes),
    )


@dataclass(frozen=True)
class HypothesisPlan:
    """One hypothesis's plan: its prediction ``kind`` and ``tests``, the ``design``, the claimed ``effect`` (in
    its kind's unit; ``declared`` or the default) and the calibration's ``power``."""

    hypothesis: str
    kind: str
    tests: tuple[str, ...]
    design: HypothesisDesign
    effect: float
    declared: bool
    effect_text: str
    power: PlannedPower

    @property
    def under_powered(self) -> bool:
        return self.power.under_powered

    def line(self) -> str:
        """``power 0.72 ± 0.05 (100 replications, ...) for configuration-level Kendall τ 0.5: under-powered
        (below 80%); notes``."""
        text = f"{self.power.describe(source=True)} for {self.effect_text}"
        if self.under_powered:
            text += f": under-powered (below {POWER_TARGET:.0%})"
        return text + "".join(f"; {n}" for n in self.power.notes)


@dataclass(frozen=True)
class StudyPlan:
    """The plan of a study (or of any hypotheses on planned runs): one :class:`HypothesisPlan` each."""

    study: str
    quick: bool
    runs: int
    specs: tuple[str, ...]
    hypotheses: tuple[HypothesisPlan, ...]
    reps: int = PLAN_REPS
    meta: Mapping[str, Any] = field(default_factory=dict, compare=False)

    def get(self, name: str) -> HypothesisPlan:
        for p in self.hypotheses:
            if p.hypothesis == name:
                return p
        raise KeyError(f"No hypothesis {name!r} in this plan: {[p.hypothesis for p in self.hypotheses]}.")

    def to_frame(self) -> pd.DataFrame:
        """One row per hypothesis: kind, tests, design, effect, power and the flag."""
        return pd.DataFrame([{
            "hypothesis": p.hypothesis, "kind": p.kind, "tests": ", ".join(p.tests),
            "configs x runs": f"{p.design.configurations} x {p.design.min_per_configuration}", "seeds": p.design.seeds,
            "effect": f"{p.effect:g}" + ("" if p.declared else "*"),
            "power": p.power.describe().removeprefix("power ") if p.power.available else "n/a",
            "flag": "UNDER-POWERED" if p.under_powered else "",
        } for p in self.hypotheses])  # fmt: skip

    def summary(self) -> str:
        """The plan as text: a header, the table and, per hypothesis, its design, effect and power in words."""
        variant = " (quick)" if self.quick else ""
        flagged = sum(p.under_powered for p in self.hypotheses)
        lines = [
            f"Plan of study {self.study}{variant}: {self.runs} runs of {len(self.specs)} specs "
            f"({', '.join(self.specs)}); nothing was run.",
            "Power: the rate of 'supported' when the claimed effect is true, by the calibration simulation "
            f"(bridge/calibration.py; ± its Monte-Carlo s.e.); under-powered below {POWER_TARGET:.0%}. Effects in "
            "the units of each prediction kind (* = not declared: the default, a moderate effect): "
            + "; ".join(f"{k.value}: {u}" for k, u in EFFECT_UNITS.items())
            + ".",
            "",
            self.to_frame().to_string(index=False),
            "",
        ]
        for p in self.hypotheses:
            lines.append(f"{p.hypothesis}: {p.kind} ({', '.join(p.tests)}); {p.design.describe()}")
            lines += [f"    {n}" for n in p.design.notes]
            lines.append(f"    {p.line()}")
        lines.append(f"{flagged} of {len(self.hypotheses)} hypotheses under-powered.")
        return "\n".join(lines)

    def to_payload(self) -> dict[str, Any]:
        """JSON-ready content for ``put_result("plan", ...)``; :meth:`from_payload` rebuilds the plan."""
        payload = asdict(self)
        payload["meta"] = dict(self.meta)
        return _finite(payload)

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> StudyPlan:
        plans = []
        for p in payload["hypotheses"]:
            d = dict(p["design"])
            d["environments"] = tuple(Environment(**e) for e in d.get("environments", ()))
            design = HypothesisDesign(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})
            pw = {k: (math.nan if v is None else tuple(v) if isinstance(v, list) else v) for k, v in p["power"].items()}
            plans.append(HypothesisPlan(p["hypothesis"], p["kind"], tuple(p["tests"]), design, p["effect"],
                                        p["declared"], p["effect_text"], PlannedPower(**pw)))  # fmt: skip
        return cls(payload["study"], payload["quick"], payload["runs"], tuple(payload["specs"]), tuple(plans),
                   payload.get("reps", PLAN_REPS), payload.get("meta", {}))  # fmt: skip


def _finite(value: Any) -> Any:
    """NaN -> None, recursively (the store writes strict JSON)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def plan_hypotheses(
    hypotheses: Sequence[Hypothesis],
    runs: pd.DataFrame,
    *,
    study: str = "",
    quick: bool = False,
    reps: int = PLAN_REPS,
) -> StudyPlan:
    """The plan of ``hypotheses`` on the planned ``runs`` (:func:`planned_runs`): design and power of each."""
    plans = []
    for h in hypotheses:
        design = hypothesis_design(h, runs)
        effect, declared = effect_of(h)
        plans.append(HypothesisPlan(
            h.name, h.prediction.kind.value + (" over steps" if h.scope.over is Over.STEPS else ""),
            tuple(t.value for t in h.tests), design, effect, declared, describe_effect(h),
            hypothesis_power(h, design, reps),
        ))  # fmt: skip
    specs = tuple(sorted(runs["spec"].unique())) if len(runs) else ()
    return StudyPlan(study, quick, len(runs), specs, tuple(plans), reps)
