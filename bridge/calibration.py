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

Each replication writes one hypothesis file with one hypothesis per :class:`HypothesisKind` and runs the real
engine on it (:func:`bridge.parse_hypotheses` then :func:`bridge.falsify_tables`, the path of ``unitheory
falsify`` after the run tables are built). :data:`RANK_KINDS`: a true driver under the default rank tests and
under all five, a wrong sign, a null quantity and a confounded-only quantity (default negative controls);
:data:`LAW_KINDS`: the true law, a wrong law (linear in q_law) and a law of a null outcome (``controls = []``:
the law's own adequacy is calibrated). ``benchmarks/calibration.py`` prints the rates and draws the power
figure; :func:`power` gives the rates of the three verdicts of any kind for a planned design.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from bridge.falsification import falsify_tables
from bridge.hypothesis import DEFAULT_TESTS, TESTS_FOR, Kind, Test, parse_hypotheses
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


def _rank(quantity: str, direction: str) -> str:
    return (
        f'quantity = "{quantity}"\noutcome = "test_error"\nconfounders = ["weight_norm"]\ntests = {{tests}}\n'
        f'scope = {{{{ axes = ["width"] }}}}\nprediction = {{{{ kind = "rank", direction = "{direction}" }}}}\n'
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
#: every kind, by name
KINDS = {k.name: k for k in RANK_KINDS + LAW_KINDS}


def simulate(design: Design, random_state: int | np.random.Generator | None = None) -> pd.DataFrame:
    """One synthetic sweep (module docstring), shaped like :func:`bridge.tables.run_table` output."""
    rng = np.random.default_rng(random_state)
    g, m = design.n_configs, design.n_seeds
    width = 8 * 2 ** np.arange(g)
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
    # the functional laws (drawn last, so the columns above do not depend on them)
    columns["q_law"] = np.geomspace(1e-2, 1e-1, g)[:, None] * np.exp(nested(0.3, 0.05))
    columns["loss"] = 0.3 + 0.05 * design.effect * np.log(columns["q_law"]) + rng.normal(0, 0.02, (g, m))
    columns["loss_null"] = 0.3 + nested(0.02, 0.02)
    frame = pd.DataFrame({k: np.asarray(v).reshape(-1) if np.ndim(v) > 1 else v for k, v in columns.items()})
    frame.insert(0, "run_id", [f"sim-{w}-{s}" for w, s in zip(frame["width"], frame["seed"], strict=True)])
    return frame.assign(spec="sim", phenomenon="sim", started_at="2026-01-01T00:00:00+00:00")


def hypothesis_file(kinds: Sequence[HypothesisKind], alpha: float = 0.05) -> str:
    """The TOML file with one ``[[hypothesis]]`` per kind (named after it)."""

    def listed(tests: Sequence[str]) -> str:
        return "[" + ", ".join(f'"{t}"' for t in tests) + "]"

    blocks = [f'[[hypothesis]]\nname = "{k.name}"\n' + k.body.format(tests=listed(k.tests)) for k in kinds]
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
    hypotheses = parse_hypotheses(hypothesis_file(kinds, alpha), source="<calibration>")
    table = simulate(design, np.random.default_rng([design.n_configs, design.n_seeds, seed]))
    report = falsify_tables(hypotheses, {h.name: table for h in hypotheses}, n_resamples=n_resamples,
                            random_state=seed)  # fmt: skip
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
) -> pd.DataFrame:
    """Raw records of ``reps`` replications of every design (replication r of a design always draws the same
    data). ``workers`` > 1 runs replications in a process pool (off by default)."""
    check_positive_int("reps", reps, owner="calibrate")
    check_positive_int("workers", workers, owner="calibrate")
    jobs = [(d, r) for d in designs for r in range(reps)]
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
    rate of its correct decisive verdict (supported for a true claim, falsified for a false one; NaN for a
    null) and ``error`` the rate of its wrong one."""

    design: Design
    kind: str
    supported: float
    falsified: float
    inconclusive: float
    reps: int

    @property
    def power(self) -> float:
        right = KINDS[self.kind].right if self.kind in KINDS else Verdict.SUPPORTED
        return math.nan if right is None else getattr(self, right.value)

    @property
    def error(self) -> float:
        wrong = KINDS[self.kind].wrong if self.kind in KINDS else Verdict.FALSIFIED
        return getattr(self, wrong.value)

    def se(self, rate: float) -> float:
        """The Monte-Carlo standard error sqrt(rate (1 − rate) / reps) of a rate."""
        return math.sqrt(rate * (1 - rate) / self.reps)


def power(
    n_configs: int,
    n_seeds: int,
    effect: float = 1.0,
    *,
    kind: str = "true driver, default tests",
    tests: Sequence[str] | None = None,
    reps: int = 100,
    alpha: float = 0.05,
    n_resamples: int = N_RESAMPLES,
) -> Power:
    """The rates of supported / falsified / inconclusive for one ``kind`` of :data:`KINDS` (default: a true
    driver under the default rank tests) with ``n_configs`` configurations × ``n_seeds`` seeds, a direct effect
    (or a law's slope) of size ``effect``, and the kind's tests or the declared ``tests``, by simulation (module
    docstring; about 0.05 s per replication for a law, 0.2–1 s for a rank claim).

    Example:
        >>> result = power(3, 2, reps=2, tests=["kendall"])
        >>> result.reps, result.kind
        (2, 'true driver, default tests')
        >>> power(6, 3, kind="true law", reps=2).power
        1.0
    """
    check_option("kind", kind, list(KINDS), owner="power")
    design = Design(n_configs, n_seeds, effect)
    chosen = KINDS[kind] if tests is None else replace(KINDS[kind], tests=tuple(tests))
    raw = calibrate([design], [chosen], reps, alpha=alpha, n_resamples=n_resamples)
    rates = {v.value: float((raw["verdict"] == v.value).mean()) for v in Verdict}
    return Power(design, kind, rates["supported"], rates["falsified"], rates["inconclusive"], reps)
