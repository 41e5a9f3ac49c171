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

Each replication writes one hypothesis file with one hypothesis per :class:`HypothesisKind` and runs the real
engine on it (:func:`bridge.parse_hypotheses` then :func:`bridge.falsify_tables`, the path of ``unitheory
falsify`` after the run tables are built), with the default negative controls. Kinds are pluggable:
:data:`RANK_KINDS` (a true driver under every default rank test and under the core pair kendall +
partial_rank, a wrong sign, a null quantity, a confounded-only quantity) and :data:`LAW_KINDS`, the
functional-law hook ("true law", "wrong law" on an extra outcome ``loss`` = a + b log(width) + effects), whose
targets apply once the fit rules of issue 10 item 5 are in. ``benchmarks/calibration.py`` prints the rates and
draws the power figure; :func:`power` gives the chance that a true driver is supported for a planned design.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from bridge.falsification import falsify_tables
from bridge.hypothesis import DEFAULT_TESTS, Kind, parse_hypotheses
from bridge.verdicts import Verdict
from theory._validation import check_in_range, check_positive_int

#: the studies' regimes: configurations × seeds per configuration
CONFIGURATIONS = (3, 6, 12)
SEEDS = (2, 3, 5, 10)
#: the default tests of a rank prediction
RANK_TESTS = tuple(t.value for t in DEFAULT_TESTS[Kind.RANK])
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
    (falsified for a true claim, supported for a false one); ``body`` is the ``[[hypothesis]]`` TOML after the
    name, with ``{tests}`` standing for the declared tests (``tests``)."""

    name: str
    body: str
    wrong: Verdict
    tests: tuple[str, ...] = RANK_TESTS


def _rank(quantity: str, direction: str) -> str:
    return (
        f'quantity = "{quantity}"\noutcome = "test_error"\nconfounders = ["weight_norm"]\ntests = {{tests}}\n'
        f'scope = {{{{ axes = ["width"] }}}}\nprediction = {{{{ kind = "rank", direction = "{direction}" }}}}\n'
    )


def _law(expression: str) -> str:
    return (
        'quantity = "width"\noutcome = "loss"\ncontrols = []\ntests = {tests}\nscope = {{ axes = ["width"] }}\n'
        f'[hypothesis.prediction]\nkind = "functional"\nexpression = "{expression}"\nnull = "loss = a"\n'
    )


#: the smallest rank bundle that can tell a driver from a confounded quantity
CORE = ("kendall", "partial_rank")
#: each kind with the bundle under which its error is most likely: every default test for a true claim (more
#: chances to be falsified), the core bundle for a false one (fewer tests to pass)
RANK_KINDS = (
    HypothesisKind("true driver, all rank tests", _rank("q_driver", "increasing"), Verdict.FALSIFIED),
    HypothesisKind("true driver, kendall + partial", _rank("q_driver", "increasing"), Verdict.FALSIFIED, CORE),
    HypothesisKind("wrong sign", _rank("q_driver", "decreasing"), Verdict.SUPPORTED),
    HypothesisKind("null quantity", _rank("q_null", "increasing"), Verdict.SUPPORTED, CORE),
    HypothesisKind("confounded only", _rank("q_confounded", "increasing"), Verdict.SUPPORTED, CORE),
)
#: the functional-law hook: the outcome ``loss`` follows a + b log(width); a law linear in width is wrong
LAW_KINDS = (
    HypothesisKind("true law", _law("loss = a + b*log(width)"), Verdict.FALSIFIED, ("fit",)),
    HypothesisKind("wrong law", _law("loss = a + b*width"), Verdict.SUPPORTED, ("fit",)),
)


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
    loss = 1.0 + 0.3 * design.effect * np.log(width)[:, None] + nested(0.1, 0.1)
    columns = {
        "width": np.repeat(width, m),
        "seed": np.tile(np.arange(m), g),
        "test_error": 1.0 / (1.0 + np.exp(-logit)),
        "loss": loss,
        "q_driver": q_driver,
        "q_confounded": weight_norm + nested(),
        "q_null": nested(),
        "weight_norm": weight_norm,
        "prime_count": nested(),
        "random_measure": rng.normal(size=(g, m)),
        "param_count": np.repeat(width * (width + 1.0), m),
    }
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
            "kind": kind.name, "verdict": verdict.value, "wrong": verdict is kind.wrong,
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
    errors sqrt(p(1 − p)/n), the error rate (the kind's wrong verdict) and whether it is <= α + 2 s.e."""
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
        rows.append(row | {"error": error, "target": bound, "holds": error <= bound})
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class Power:
    """Rates of the three verdicts on a true driver for one design, with Monte-Carlo standard errors."""

    design: Design
    supported: float
    falsified: float
    inconclusive: float
    reps: int

    def se(self, rate: float) -> float:
        return math.sqrt(rate * (1 - rate) / self.reps)


def power(
    n_configs: int,
    n_seeds: int,
    effect: float = 1.0,
    *,
    tests: Sequence[str] = RANK_TESTS,
    reps: int = 100,
    alpha: float = 0.05,
    n_resamples: int = N_RESAMPLES,
) -> Power:
    """The chance that a true driver of size ``effect`` is supported (and the rates of the other verdicts)
    with ``n_configs`` configurations × ``n_seeds`` seeds and the declared ``tests``, by simulation (module
    docstring; about 0.2–1 s per replication).

    Example:
        >>> power(3, 2, reps=2, tests=["kendall"]).reps
        2
    """
    design = Design(n_configs, n_seeds, effect)
    driver = HypothesisKind("true driver", _rank("q_driver", "increasing"), Verdict.FALSIFIED, tuple(tests))
    raw = calibrate([design], [driver], reps, alpha=alpha, n_resamples=n_resamples)
    rates = {v.value: float((raw["verdict"] == v.value).mean()) for v in Verdict}
    return Power(design, rates["supported"], rates["falsified"], rates["inconclusive"], reps)
