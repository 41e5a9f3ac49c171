"""Calibration of the verdict engine on synthetic runs with a known truth, in the regimes the studies run.

A :class:`Design` is a number of configurations (values of one hyperparameter axis, ``width``) times a number of
seeds. :func:`simulate` draws one such sweep: every variable has a configuration-level random effect (shared by
the seeds of a configuration) and a seed-level one, and the outcome is a monotone non-linear (logistic) link of

    test_error = σ(effect · q_driver + effect · weight_norm + u_config + ε_run),

where the confounder ``weight_norm`` (trending with width) drives both the outcome and the quantities
``q_driver`` (= weight_norm + its own variation: a true driver with a direct effect of the same size as the
confounder's) and ``q_confounded`` (= weight_norm + independent variation: it tracks the outcome only through
the confounder); ``q_null`` is independent of everything. The default negative controls are present:
``prime_count`` and ``random_measure`` (noise) and ``param_count`` (a deterministic function of width).

For the functional laws the sweep also records a law variable ``q_law`` = w_c · exp(v_c + η), w_c spanning one
decade (10⁻² to 10⁻¹) over the configurations, with a configuration-level random effect v_c ~ N(0, 0.3²) and
seed jitter η ~ N(0, 0.05²), and two outcomes: ``loss`` = 0.3 + 0.05 · effect · log(q_law) + ε, for which the
law a + b log(q_law) holds in every configuration (the configuration effects sit in the law's variable: a
configuration whose *mean outcome* departs from the law is, by definition, a lack of fit, which the engine is
built to detect), and ``loss_null`` = 0.3 + u_c + ε with u_c ~ N(0, 0.02²), which does not depend on q_law
(configuration effects in the outcome, the threat to a test that counts seeds as units); ε ~ N(0, 0.02²).

For event orderings the sweep records a per-run ``lag`` = step(B) − step(A) = −τ + effect · σ + u_c + ε_run
with tolerance τ = :data:`EVENT_TOLERANCE` and u_c, ε ~ N(0, 1/2) (σ = 1: half of the lag's variance between
configurations), and ``lag_null`` with the same noise centred on −τ (the boundary of the claim). For
equivalences every other configuration is in ``arm`` 1 (the others in arm 0), ``y_equal`` = u_c + ε has no
difference between the arms and ``y_apart`` differs by exactly the margin, which the hypothesis sets to
``effect`` (σ = 1), the boundary of the claim.

Effect units (what ``[hypothesis.power] effect`` declares, :func:`design_effect` converts them): a rank claim's
effect is the *configuration-level Kendall τ* between the quantity and the outcome (the τ of their configuration
means over a sweep of many configurations, :func:`configuration_tau`); effect 1 (the benchmark's) is τ = 0.75
and the model cannot exceed :data:`TAU_CEILING` (the outcome also depends on the confounder). A law's effect is
its *signal-to-noise ratio*: the standard deviation over configurations of the law's mean outcome divided by
the seed-level noise σ_ε (:data:`LAW_SNR_PER_EFFECT` per unit of the simulation's slope: 1.82). An event
ordering's is the standardised distance of the mean lag from −tolerance, (E lag + τ)/sd(lag); an equivalence's
is the margin in standard deviations of a run's value (the true difference being 0).

Each replication writes one hypothesis file with one hypothesis per :class:`HypothesisKind` and runs the real
engine on it (:func:`bridge.parse_hypotheses` then :func:`bridge.falsify_tables`, the path of ``unitheory
falsify`` after the run tables are built). :data:`RANK_KINDS`: a true driver under the default rank tests and
under all five, a wrong sign, a null quantity and a confounded-only quantity (default negative controls);
:data:`LAW_KINDS`: the true law, a wrong law (linear in q_law) and a law of a null outcome (``controls = []``:
the law's own adequacy is calibrated); :data:`EVENT_KINDS` and :data:`EQUIVALENCE_KINDS`: a true claim and one
on the boundary of the claim (whose rate of "supported" is held to α + 2 s.e.). ``benchmarks/calibration.py``
prints the rates and draws the power figure; :func:`power` gives the rates of the three verdicts of any kind
(or of :func:`rank_kind`, a rank claim with the tests, controls and confounder of a planned hypothesis) for a
planned design, and ``unitheory study NAME --plan`` the power of every hypothesis of a study
(:mod:`bridge.plan`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np
import pandas as pd
from scipy import optimize

from bridge.falsification import falsify_tables
from bridge.hypothesis import DEFAULT_CONTROLS, DEFAULT_TESTS, TESTS_FOR, Kind, Test, parse_hypotheses
from bridge.verdicts import Verdict
from theory._validation import check_in_range, check_option, check_positive_int

#: the studies' regimes: configurations × seeds per configuration
CONFIGURATIONS = (3, 6, 12)
SEEDS = (2, 3, 5, 10)
#: the default tests of a rank prediction
RANK_TESTS = tuple(t.value for t in DEFAULT_TESTS[Kind.RANK])
#: every rank test over runs (the default ones and the opt-in ones), CMI in Jiang's form
ALL_RANK_TESTS = tuple(t.value for t in TESTS_FOR[Kind.RANK] if t is not Test.CMI_PGDL)
#: resamples per permutation null and bootstrap: p-values down to 1/200, enough for Holm over 5 tests at 5%
N_RESAMPLES = 199
#: the law's slope per unit of effect, the seed noise σ_ε and the configuration effect in log(q_law)
LAW_SLOPE, LAW_NOISE, LAW_CONFIG_SD = 0.05, 0.02, 0.3
#: the law's signal-to-noise per unit of effect: LAW_SLOPE · sd(log q_law over configurations) / σ_ε, with log
#: w_c uniform over one decade in the limit of many configurations (sd ln 10 / √12) plus the configuration effect
LAW_SNR_PER_EFFECT = LAW_SLOPE * math.sqrt(math.log(10) ** 2 / 12 + LAW_CONFIG_SD**2) / LAW_NOISE
#: the event orderings' tolerance (in steps; the lags are in units of their standard deviation, 1)
EVENT_TOLERANCE = 10.0
#: the largest configuration-level Kendall τ of the rank model (:func:`configuration_tau` as the effect grows)
TAU_CEILING = 0.83  # 0.834 in the limit
#: the simulation effect used for a rank effect at (or above) the ceiling
EFFECT_CAP = 20.0
#: the default effect of each prediction kind in the units above ("a moderate effect"): configuration-level τ 0.5
#: (three concordant configuration pairs in four), a law whose signal over configurations is as large as one
#: run's noise, a mean lag half a standard deviation inside the tolerance, an equivalence margin of half a
#: standard deviation (Cohen's "medium" d)
DEFAULT_EFFECTS: dict[Kind, float] = {Kind.RANK: 0.5, Kind.FUNCTIONAL: 1.0, Kind.EVENT: 0.5, Kind.EQUIVALENCE: 0.5}
#: what the effect of each prediction kind measures
EFFECT_UNITS: dict[Kind, str] = {
    Kind.RANK: "configuration-level Kendall τ",
    Kind.FUNCTIONAL: "signal-to-noise (sd of the law over configurations / seed noise)",
    Kind.EVENT: "standardised lag (mean lag + tolerance) / sd(lag)",
    Kind.EQUIVALENCE: "margin / sd of a run's value",
}
_HALF = math.sqrt(0.5)


@dataclass(frozen=True)
class Design:
    """``n_configs`` configurations (widths 8, 16, ...) × ``n_seeds`` seeds; ``effect`` scales the direct
    effect of the driver and the confounder on the outcome's logit."""

    n_configs: int
    n_seeds: int
    effect: float = 1.0

    def __post_init__(self) -> None:
        check_positive_int("n_configs", self.n_configs, owner="Design")
        check_positive_int("n_seeds", self.n_seeds, owner="Design")
        check_in_range("effect", self.effect, 0, None, owner="Design")


@dataclass(frozen=True)
class HypothesisKind:
    """A planted truth and the hypothesis that tests it. ``wrong`` is the verdict that would be an error
    (falsified for a true claim, supported for a false one) and ``right`` the decisive verdict that is correct
    (None where no verdict is both: a null quantity should stay inconclusive); ``target``: whether the error
    rate is held to α + 2 s.e. (else the rate of ``wrong`` is reported as a want of power, e.g. a wrong law
    too close to the true one to be told apart); ``body`` is the ``[[hypothesis]]`` TOML after the name, with
    ``{tests}`` standing for the declared tests (``tests``)."""

    name: str
    body: str
    wrong: Verdict
    tests: tuple[str, ...] = RANK_TESTS
    right: Verdict | None = None
    target: bool = True
    lag: str = "lag"  #: the simulated column that is the event table's lag (event orderings)


def _rank(
    quantity: str,
    direction: str,
    *,
    confounder: bool = True,
    controls: Sequence[str] | None = None,
    margin: float | None = None,
) -> str:
    """A rank hypothesis on ``quantity``: the confounder ``weight_norm`` declared or not, the given controls
    (None: the default ones), an equivalence margin if any."""
    return (
        f'quantity = "{quantity}"\noutcome = "test_error"\n'
        + ('confounders = ["weight_norm"]\n' if confounder else "")
        + ("" if controls is None else "controls = [" + ", ".join(f'"{c}"' for c in controls) + "]\n")
        + ("" if margin is None else f"equivalence_margin = {margin!r}\n")
        + f'tests = {{tests}}\nscope = {{{{ axes = ["width"] }}}}\n'
        f'prediction = {{{{ kind = "rank", direction = "{direction}" }}}}\n'
    )


def _law(outcome: str, expression: str) -> str:
    return (
        f'quantity = "q_law"\noutcome = "{outcome}"\ncontrols = []\ntests = {{tests}}\n'
        f'scope = {{{{ axes = ["width"] }}}}\n[hypothesis.prediction]\nkind = "functional"\n'
        f'expression = "{outcome} = {expression}"\nnull = "{outcome} = a"\n'
    )


#: the smallest rank bundle that can tell a driver from a confounded quantity
CORE = ("kendall", "partial_rank")
_S, _F = Verdict.SUPPORTED, Verdict.FALSIFIED
#: each false claim with the bundle under which its error is most likely (the core bundle: fewer tests to pass);
#: the true driver under the default tests and under every rank test (more chances to be falsified)
RANK_KINDS = (
    HypothesisKind("true driver, default tests", _rank("q_driver", "increasing"), _F, right=_S),
    HypothesisKind("true driver, all rank tests", _rank("q_driver", "increasing"), _F, ALL_RANK_TESTS, right=_S),
    HypothesisKind("wrong sign", _rank("q_driver", "decreasing"), _S, right=_F),
    HypothesisKind("null quantity", _rank("q_null", "increasing"), _S, CORE),
    HypothesisKind("confounded only", _rank("q_confounded", "increasing"), _S, CORE),
)
#: the functional laws (module docstring): the true law, a wrong law linear in q_law, a law of a null outcome
LAW_KINDS = (
    HypothesisKind("true law", _law("loss", "a + b*log(q_law)"), _F, ("fit",), right=_S),
    HypothesisKind("wrong law", _law("loss", "a + b*q_law"), _S, ("fit",), right=_F, target=False),
    HypothesisKind("null law", _law("loss_null", "a + b*log(q_law)"), _S, ("fit",)),
)


def _event() -> str:
    return (
        'quantity = "q_driver"\noutcome = "test_error"\ncontrols = []\ntests = {tests}\n'
        'scope = {{ axes = ["width"] }}\n[hypothesis.prediction]\nkind = "event_order"\n'
        'first = {{ expression = "q_driver", above = 0.0 }}\nsecond = {{ expression = "test_error", below = 0.5 }}\n'
        f"tolerance = {EVENT_TOLERANCE!r}\n"
    )


def _equivalence(variable: str) -> str:
    return (
        f'quantity = "{variable}"\noutcome = "{variable}"\ncontrols = []\ntests = {{tests}}\n'
        f'equivalence_margin = {{margin}}\nscope = {{{{ axes = ["width"] }}}}\n[hypothesis.prediction]\n'
        f'kind = "equivalence"\nvariable = "{variable}"\nby = "arm"\nlevels = [0, 1]\n'
    )


#: an event ordering that holds (the mean lag ``effect`` standard deviations inside the tolerance) and one whose
#: mean lag sits on the tolerance (the boundary: "supported" is an error)
EVENT_KINDS = (
    HypothesisKind("true order", _event(), _F, ("event_order",), right=_S),
    HypothesisKind("boundary order", _event(), _S, ("event_order",), lag="lag_null"),
)
#: equivalence within a margin of ``effect`` standard deviations: no true difference, and a difference of exactly
#: the margin (the boundary: "supported" is an error)
EQUIVALENCE_KINDS = (
    HypothesisKind("true equivalence", _equivalence("y_equal"), _F, ("tost",), right=_S),
    HypothesisKind("boundary equivalence", _equivalence("y_apart"), _S, ("tost",)),
)
#: every kind, by name
KINDS = {k.name: k for k in RANK_KINDS + LAW_KINDS + EVENT_KINDS + EQUIVALENCE_KINDS}


def rank_kind(
    tests: Sequence[str] = RANK_TESTS,
    *,
    controls: Sequence[str] = DEFAULT_CONTROLS,
    confounder: bool = True,
    margin: float | None = None,
) -> HypothesisKind:
    """A true driver tested like a planned rank hypothesis: its ``tests``, the simulated negative ``controls`` it
    declares (a subset of :data:`~bridge.hypothesis.DEFAULT_CONTROLS`), the confounder ``weight_norm`` declared
    or not, and its equivalence ``margin``. Its name lists them (the key of :mod:`bridge.plan`'s power table)."""
    unknown = sorted(set(controls) - set(DEFAULT_CONTROLS))
    if unknown:
        raise ValueError(f"The 'controls' parameter of rank_kind must be among {list(DEFAULT_CONTROLS)} (the "
                         f"simulated ones). Got {unknown} instead.")  # fmt: skip
    controls = tuple(c for c in DEFAULT_CONTROLS if c in controls)
    name = (
        f"true driver: {'+'.join(tests)}; controls {'+'.join(controls) or 'none'}; "
        f"{'confounder' if confounder else 'no confounder'}" + ("" if margin is None else f"; margin {margin:g}")
    )
    body = _rank("q_driver", "increasing", confounder=confounder, controls=controls, margin=margin)
    return HypothesisKind(name, body, _F, tuple(tests), right=_S)


def _pair_draws(n_pairs: int = 200_000) -> np.ndarray:
    """Common random numbers of :func:`configuration_tau`: for two configurations each, x ~ U(−1, 1) and the
    configuration effects of weight_norm, of q_driver and of the outcome."""
    rng = np.random.default_rng(20260101)
    return np.stack([rng.uniform(-1, 1, (2, n_pairs)), *rng.normal(0, 0.5, (3, 2, n_pairs))])


_DRAWS = lru_cache(maxsize=1)(_pair_draws)


def configuration_tau(effect: float) -> float:
    """The configuration-level Kendall τ of the rank model at a simulation ``effect``: τ between the configuration
    means of q_driver (x + a + b) and of the outcome, which rise with its configuration logit effect · (2x + 2a +
    b) + u (the seed noise averages out), over configurations with x ~ U(−1, 1) (the limit of the evenly spaced
    ones); estimated on 200,000 pairs of configurations (s.e. about 0.002), the same draws for every effect.

    Example:
        >>> round(configuration_tau(1.0), 2)
        0.75
    """
    x, a, b, u = _DRAWS()
    q, logit = x + a + b, effect * (2 * x + 2 * a + b) + u
    return float(np.mean(np.sign(q[0] - q[1]) * np.sign(logit[0] - logit[1])))


@lru_cache(maxsize=256)
def _rank_effect(tau: float) -> float:
    return float(optimize.brentq(lambda e: configuration_tau(e) - tau, 0.0, EFFECT_CAP, xtol=1e-4))


def design_effect(kind: Kind, effect: float) -> float:
    """The simulation's ``Design.effect`` for a declared ``effect`` of a prediction ``kind`` (units: module
    docstring, :data:`EFFECT_UNITS`); a rank effect at or above :data:`TAU_CEILING` raises ``ValueError``.

    Example:
        >>> round(design_effect(Kind.RANK, 0.75), 1), round(design_effect(Kind.FUNCTIONAL, 1.0), 3)
        (1.0, 0.548)
    """
    check_in_range("effect", effect, 0, None, inclusive=(False, True), owner="design_effect")
    if kind is Kind.RANK:
        if effect >= TAU_CEILING:
            raise ValueError(f"The 'effect' parameter of design_effect must be below the rank model's ceiling "
                             f"τ = {TAU_CEILING} for a rank claim. Got {effect!r} instead.")  # fmt: skip
        return _rank_effect(round(float(effect), 6))
    return effect / LAW_SNR_PER_EFFECT if kind is Kind.FUNCTIONAL else float(effect)


def simulate(design: Design, random_state: int | np.random.Generator | None = None) -> pd.DataFrame:
    """One synthetic sweep (module docstring), shaped like :func:`bridge.tables.run_table` output."""
    rng = np.random.default_rng(random_state)
    g, m = design.n_configs, design.n_seeds
    width = 8.0 * 2.0 ** np.arange(g)  # floats: integer widths (and param_count) overflow from 29 configurations
    x = np.linspace(-1.0, 1.0, g) if g > 1 else np.zeros(1)

    def nested(config_sd: float = 0.5, seed_sd: float = 0.5) -> np.ndarray:
        """Configuration-level plus seed-level normal effects, one row per configuration."""
        return rng.normal(0, config_sd, (g, 1)) + rng.normal(0, seed_sd, (g, m))

    weight_norm = x[:, None] + nested()
    q_driver = weight_norm + nested()
    logit = design.effect * (q_driver + weight_norm) + nested()
    columns = {
        "width": np.repeat(width, m),
        "seed": np.tile(np.arange(m), g),
        "test_error": 1.0 / (1.0 + np.exp(-logit)),
        "q_driver": q_driver,
        "q_confounded": weight_norm + nested(),
        "q_null": nested(),
        "weight_norm": weight_norm,
        "prime_count": nested(),
        "random_measure": rng.normal(size=(g, m)),
        "param_count": np.repeat(width * (width + 1.0), m),
    }
    # the functional laws (drawn after the rank columns, so those do not depend on them)
    columns["q_law"] = np.geomspace(1e-2, 1e-1, g)[:, None] * np.exp(nested(LAW_CONFIG_SD, 0.05))
    columns["loss"] = 0.3 + LAW_SLOPE * design.effect * np.log(columns["q_law"]) + rng.normal(0, LAW_NOISE, (g, m))
    columns["loss_null"] = 0.3 + nested(0.02, 0.02)
    # event orderings and equivalences (drawn last, so every column above is unchanged)
    columns["lag"] = -EVENT_TOLERANCE + design.effect + nested(_HALF, _HALF)
    columns["lag_null"] = -EVENT_TOLERANCE + nested(_HALF, _HALF)
    arm = np.arange(g) % 2
    columns["arm"] = np.repeat(arm, m)
    columns["y_equal"] = nested(_HALF, _HALF)
    columns["y_apart"] = nested(_HALF, _HALF) + design.effect * arm[:, None]
    frame = pd.DataFrame({k: np.asarray(v).reshape(-1) if np.ndim(v) > 1 else v for k, v in columns.items()})
    frame.insert(0, "run_id", [f"sim-{w}-{s}" for w, s in zip(frame["width"], frame["seed"], strict=True)])
    return frame.assign(spec="sim", phenomenon="sim", started_at="2026-01-01T00:00:00+00:00")


def hypothesis_file(kinds: Sequence[HypothesisKind], alpha: float = 0.05, effect: float = 1.0) -> str:
    """The TOML file with one ``[[hypothesis]]`` per kind (named after it); an equivalence's margin is ``effect``."""

    def listed(tests: Sequence[str]) -> str:
        return "[" + ", ".join(f'"{t}"' for t in tests) + "]"

    if effect <= 0 and any("{margin}" in k.body for k in kinds):
        raise ValueError(f"An equivalence kind's margin is the design's effect, which must be > 0. Got {effect!r}.")
    blocks = [
        f'[[hypothesis]]\nname = "{k.name}"\n' + k.body.format(tests=listed(k.tests), margin=repr(float(effect)))
        for k in kinds
    ]
    return f"alpha = {alpha}\n\n" + "\n".join(blocks)


def replicate(
    design: Design,
    kinds: Sequence[HypothesisKind],
    seed: int,
    *,
    alpha: float = 0.05,
    n_resamples: int = N_RESAMPLES,
) -> list[dict]:
    """One replication: simulate, falsify, and one record per kind (verdict and each test's outcome)."""
    hypotheses = parse_hypotheses(hypothesis_file(kinds, alpha, design.effect), source="<calibration>")
    table = simulate(design, np.random.default_rng([design.n_configs, design.n_seeds, seed]))
    tables = {k.name: table if k.lag == "lag" else table.assign(lag=table[k.lag]) for k in kinds}
    report = falsify_tables(hypotheses, tables, n_resamples=n_resamples, random_state=seed)
    rows = report.to_frame()
    own = rows[(rows["role"] == "quantity") & (rows["environment"] == "all")]
    out = []
    for kind in kinds:
        verdict = report.verdict(kind.name).verdict
        outcomes = own[own["hypothesis"] == kind.name].set_index("test")["outcome"].to_dict()
        out.append({
            "configs": design.n_configs, "seeds": design.n_seeds, "effect": design.effect, "replication": seed,
            "kind": kind.name, "verdict": verdict.value, "wrong": verdict is kind.wrong, "targeted": kind.target,
            **{f"test {t}": o for t, o in outcomes.items()},
        })  # fmt: skip
    return out


def calibrate(
    designs: Sequence[Design],
    kinds: Sequence[HypothesisKind] = RANK_KINDS,
    reps: int = 100,
    *,
    alpha: float = 0.05,
    n_resamples: int = N_RESAMPLES,
    workers: int = 1,
    start: int = 0,
) -> pd.DataFrame:
    """Raw records of ``reps`` replications of every design, numbered ``start`` to ``start + reps − 1``
    (replication r of a design always draws the same data). ``workers`` > 1 runs replications in a process pool
    (off by default)."""
    check_positive_int("reps", reps, owner="calibrate")
    check_positive_int("workers", workers, owner="calibrate")
    check_in_range("start", start, 0, None, owner="calibrate")
    jobs = [(d, r) for d in designs for r in range(start, start + reps)]
    kwargs = {"alpha": alpha, "n_resamples": n_resamples}
    if workers == 1:
        records = [row for d, r in jobs for row in replicate(d, kinds, r, **kwargs)]
    else:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(workers) as pool:
            futures = [pool.submit(replicate, d, tuple(kinds), r, **kwargs) for d, r in jobs]
            records = [row for f in futures for row in f.result()]
    return pd.DataFrame(records)


def summarize(raw: pd.DataFrame, alpha: float = 0.05) -> pd.DataFrame:
    """Per design and kind: the rates of supported / falsified / inconclusive with their Monte-Carlo standard
    errors sqrt(p(1 − p)/n), the error rate (the kind's wrong verdict) and whether it is <= α + 2 s.e.
    (``holds``; True for a kind without a target, whose ``targeted`` is False)."""
    keys = ["configs", "seeds", "effect", "kind"]
    rows = []
    for key, part in raw.groupby(keys, sort=False):
        n = len(part)
        row = dict(zip(keys, key, strict=True)) | {"reps": n}
        for v in Verdict:
            rate = float((part["verdict"] == v.value).mean())
            row[v.value], row[f"{v.value} se"] = rate, math.sqrt(rate * (1 - rate) / n)
        error = float(part["wrong"].mean())
        bound = alpha + 2 * math.sqrt(alpha * (1 - alpha) / n)
        targeted = bool(part["targeted"].all()) if "targeted" in part else True
        rows.append(
            row | {"error": error, "target": bound, "targeted": targeted, "holds": error <= bound or not targeted}
        )
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class Power:
    """Rates of the three verdicts on one kind of hypothesis for one design (:func:`power`); ``power`` is the
    rate of its correct decisive verdict ``right`` (supported for a true claim, falsified for a false one; NaN
    for a null) and ``error`` the rate of its wrong one."""

    design: Design
    kind: str
    supported: float
    falsified: float
    inconclusive: float
    reps: int
    right: Verdict | None = Verdict.SUPPORTED
    wrong: Verdict = Verdict.FALSIFIED

    @property
    def power(self) -> float:
        return math.nan if self.right is None else getattr(self, self.right.value)

    @property
    def error(self) -> float:
        return getattr(self, self.wrong.value)

    def se(self, rate: float | None = None) -> float:
        """The Monte-Carlo standard error sqrt(rate (1 − rate) / reps) of a rate (default: of ``power``)."""
        rate = self.power if rate is None else rate
        return math.sqrt(rate * (1 - rate) / self.reps)


def power(
    n_configs: int,
    n_seeds: int,
    effect: float = 1.0,
    *,
    kind: str | HypothesisKind = "true driver, default tests",
    tests: Sequence[str] | None = None,
    reps: int = 100,
    alpha: float = 0.05,
    n_resamples: int = N_RESAMPLES,
    start: int = 0,
) -> Power:
    """The rates of supported / falsified / inconclusive for one ``kind`` (a name in :data:`KINDS`, default a
    true driver under the default rank tests, or a :class:`HypothesisKind` such as :func:`rank_kind`) with
    ``n_configs`` configurations × ``n_seeds`` seeds, a simulation effect ``effect`` (:func:`design_effect`
    converts declared effects), and the kind's tests or the declared ``tests``, by simulation of replications
    ``start`` … ``start + reps − 1`` (module docstring; about 0.05 s per replication for a law, 0.2–1 s for a
    rank claim with every default test and control).

    Example:
        >>> result = power(3, 2, reps=2, tests=["kendall"])
        >>> result.reps, result.kind
        (2, 'true driver, default tests')
        >>> power(6, 3, kind="true law", reps=2).power
        1.0
    """
    if not isinstance(kind, HypothesisKind):
        kind = KINDS[check_option("kind", kind, list(KINDS), owner="power")]
    design = Design(n_configs, n_seeds, effect)
    chosen = kind if tests is None else replace(kind, tests=tuple(tests))
    raw = calibrate([design], [chosen], reps, alpha=alpha, n_resamples=n_resamples, start=start)
    rates = {v.value: float((raw["verdict"] == v.value).mean()) for v in Verdict}
    return Power(design, kind.name, rates["supported"], rates["falsified"], rates["inconclusive"], reps, kind.right,
                 kind.wrong)  # fmt: skip
