"""Which unit of inference for event orders and equivalences? (issue 10 items 2 and 8)

On the calibration's sweeps (:func:`bridge.calibration.simulate`: 3, 6, 12 configurations × 2, 3, 5, 10 seeds,
half of each value's variance between configurations), the rate at which each candidate test supports a claim
sitting exactly on its boundary (its size: at most α = 0.05 is valid) and a true one (its power):

- event order, H1: mean lag > −tolerance, on ``lag_null`` (boundary) and ``lag`` (one sd inside):
  runs, sign test (the previous rule); configuration means, t test (the engine's rule now,
  :func:`bridge.stats.event_lag_test`); configuration means, sign test; cluster-robust OLS (statsmodels,
  clusters = configurations, t with G − 1 df); ``MixedLM`` (random configuration intercept, Wald z);
- equivalence within a margin of 1 sd, on ``y_apart`` (difference = margin) and ``y_equal`` (no difference),
  each arm a set of configurations: TOST on runs (the previous rule); TOST on configuration means (now,
  :func:`bridge.stats.tost`); TOST with the cluster-robust OLS or the ``MixedLM`` difference.

    python benchmarks/nested_units.py              # 200 replications per regime
    python benchmarks/nested_units.py --reps 50

Prints one table per claim (size / power per regime and test) and the wall time.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import stats
from statsmodels.regression.mixed_linear_model import MixedLM
from statsmodels.stats.descriptivestats import sign_test

from bridge.calibration import CONFIGURATIONS, EVENT_TOLERANCE, SEEDS, Design, simulate
from bridge.stats import event_lag_test, tost

ALPHA, MARGIN = 0.05, 1.0


def _order_pvalues(lag: np.ndarray, width: np.ndarray) -> dict[str, float]:
    """One-sided p-values of H1: mean lag > −tolerance, per candidate test."""
    y = lag + EVENT_TOLERANCE
    means = pd.Series(y).groupby(width).mean().to_numpy()
    m, p_two = sign_test(y)
    ones = np.ones((len(y), 1))
    ols = sm.OLS(y, ones).fit(cov_type="cluster", cov_kwds={"groups": width}, use_t=True)
    t_ols = ols.params[0] / ols.bse[0]
    mixed = MixedLM(y, ones, groups=width).fit(reml=True)
    return {
        "runs, sign test (old)": p_two / 2 if m > 0 else 1 - p_two / 2,
        "configurations, t test (now)": event_lag_test(lag, groups=width, tolerance=EVENT_TOLERANCE).p_greater,
        "configurations, sign test": stats.binomtest(int((means > 0).sum()), len(means), alternative="greater").pvalue,
        "cluster-robust OLS": stats.t.sf(t_ols, len(means) - 1),
        "MixedLM": stats.norm.sf(mixed.fe_params[0] / mixed.bse_fe[0]),
    }


def _tost_p(estimate: float, se: float, dist) -> float:
    """TOST p-value of |difference| < MARGIN from an estimate, its standard error and its reference law."""
    return max(dist.sf((estimate + MARGIN) / se), dist.cdf((estimate - MARGIN) / se))


def _equivalence_pvalues(y: np.ndarray, arm: np.ndarray, width: np.ndarray) -> dict[str, float]:
    """TOST p-values of |mean(arm 0) − mean(arm 1)| < MARGIN, per candidate test."""
    first = arm == 0
    design = np.column_stack([np.ones(len(y)), first.astype(float)])
    ols = sm.OLS(y, design).fit(cov_type="cluster", cov_kwds={"groups": width}, use_t=True)
    mixed = MixedLM(y, design, groups=width).fit(reml=True)
    g = len(np.unique(width))
    return {
        "runs, TOST (old)": tost(y[first], y[~first], MARGIN).pvalue,
        "configurations, TOST (now)": tost(y[first], y[~first], MARGIN, groups1=width[first],
                                           groups2=width[~first]).pvalue,  # fmt: skip
        "cluster-robust OLS": _tost_p(ols.params[1], ols.bse[1], stats.t(g - 1)),
        "MixedLM": _tost_p(mixed.fe_params[1], mixed.bse_fe[1], stats.norm),
    }


def run(reps: int) -> pd.DataFrame:
    """Rejection rates at α of every test, per regime, claim and truth (boundary / true)."""
    rows = []
    for g in CONFIGURATIONS:
        for m in SEEDS:
            for r in range(reps):
                sweep = simulate(Design(g, m), np.random.default_rng([g, m, r, 7]))
                width, arm = sweep["width"].to_numpy(), sweep["arm"].to_numpy()
                cases = {
                    ("event order", "boundary"): _order_pvalues(sweep["lag_null"].to_numpy(), width),
                    ("event order", "true"): _order_pvalues(sweep["lag"].to_numpy(), width),
                    ("equivalence", "boundary"): _equivalence_pvalues(sweep["y_apart"].to_numpy(), arm, width),
                    ("equivalence", "true"): _equivalence_pvalues(sweep["y_equal"].to_numpy(), arm, width),
                }
                for (claim, truth), pvalues in cases.items():
                    rows += [{"claim": claim, "truth": truth, "regime": f"{g}x{m}", "test": test,
                              "supported": bool(p < ALPHA)} for test, p in pvalues.items()]  # fmt: skip
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=200, help="replications per regime (default 200)")
    args = parser.parse_args()
    start = time.perf_counter()
    with warnings.catch_warnings():  # MixedLM's convergence and boundary warnings with 3 configurations
        warnings.simplefilter("ignore")
        raw = run(args.reps)
    elapsed = time.perf_counter() - start
    target = ALPHA + 2 * np.sqrt(ALPHA * (1 - ALPHA) / args.reps)
    for claim, part in raw.groupby("claim", sort=False):
        rates = part.pivot_table(index="regime", columns=["truth", "test"], values="supported", sort=False)
        print(f"\n{claim}: rate of 'supported' at α = {ALPHA:g}, {args.reps} replications per regime "
              f"(boundary: size, valid if <= α; {target:.3f} = α + 2 s.e.; true: power)")  # fmt: skip
        print(rates.round(3).to_string())
        worst = rates["boundary"].max()
        print("largest size per test: " + ", ".join(f"{t} {v:.3f}" for t, v in worst.items()))
    print(f"\nWall time {elapsed / 60:.1f} min.")


if __name__ == "__main__":
    main()
