"""Kendall τ with configuration bootstrap and granulated Ψ, against scipy and hand computations."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from bridge.stats import configuration_groups, granulated_kendall, kendall_tau, kendall_tau_difference
from bridge.stats.rank import weighted_tau


@given(
    st.lists(st.tuples(st.integers(0, 4), st.integers(0, 4), st.integers(0, 3)), min_size=3, max_size=12),
)
def test_weighted_tau_matches_scipy_on_expanded_data(rows):
    x, y, c = (np.array(v, dtype=float) for v in zip(*rows, strict=True))
    xe, ye = np.repeat(x, c.astype(int)), np.repeat(y, c.astype(int))
    expected = stats.kendalltau(xe, ye).statistic if len(xe) > 1 else np.nan
    got = weighted_tau(x, y, c)[0]
    assert np.isnan(expected) and np.isnan(got) or got == pytest.approx(expected, abs=1e-12)


def test_kendall_pvalues_are_exact_permutation_pvalues_without_configurations():
    """With every run its own configuration and n_resamples >= n!, the permutation group is enumerated: the
    p-values equal scipy's exact Kendall null distribution (no ties), for every alternative."""
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=7), rng.normal(size=7)
    for alternative in ("two-sided", "greater", "less"):
        res = kendall_tau(x, y, alternative=alternative, n_resamples=5040, random_state=0)
        ref = stats.kendalltau(x, y, alternative=alternative, method="exact")
        assert (res.statistic, res.pvalue) == pytest.approx((ref.statistic, ref.pvalue), rel=1e-12)
        assert res.details["permutations"] == "5040 (exact)"
        statistic, pvalue = res  # unpackable like statsmodels results
        assert pvalue == res.pvalue


def test_kendall_pvalue_respects_configurations():
    """Seeds nested in configurations: 6 configurations x 5 seeds, independent configuration-level effects in
    x and y and no association. The run-level test (scipy, seeds as units) rejects far more often than 5%; the
    configuration permutation stays within alpha + 2 s.e. (200 fixed data sets)."""
    groups = np.repeat(np.arange(6), 5)
    nested = naive = 0
    for seed in range(200):
        rng = np.random.default_rng(seed)
        x = rng.normal(size=6)[groups] + 0.3 * rng.normal(size=30)
        y = rng.normal(size=6)[groups] + 0.3 * rng.normal(size=30)
        nested += kendall_tau(x, y, groups=groups, n_resamples=99, random_state=seed).p_greater < 0.05
        naive += stats.kendalltau(x, y, alternative="greater").pvalue < 0.05
    assert nested / 200 <= 0.05 + 2 * np.sqrt(0.05 * 0.95 / 200)
    assert naive / 200 > 0.15


@pytest.mark.parametrize(("method", "tol"), [("percentile", 1e-12), ("BCa", 0.01)])
def test_interval_resamples_whole_configurations(method, tol):
    """Brute force: scipy.stats.bootstrap over configuration indices with scipy's kendalltau on the concatenated
    runs, same generator. Percentile intervals agree exactly; BCa's bias correction counts resamples with
    tau < tau_hat, and resamples equal to tau_hat in exact arithmetic fall on either side of it in floating
    point (the two formulas round differently), hence the looser tolerance there."""
    rng = np.random.default_rng(2)
    frame = pd.DataFrame({"width": np.repeat([1, 2, 3, 4, 5, 6], 3), "seed": np.tile([0, 1, 2], 6)})
    frame["q"] = frame["width"] + rng.normal(0, 1.0, len(frame))
    frame["err"] = frame["q"] + rng.normal(0, 1.0, len(frame))
    groups = configuration_groups(frame, ["width"])
    res = kendall_tau(frame["q"], frame["err"], groups=groups, n_resamples=200, random_state=7, method=method)
    rows = [np.flatnonzero(groups == g) for g in range(6)]
    x, y = frame["q"].to_numpy(), frame["err"].to_numpy()

    def brute(idx):
        r = np.concatenate([rows[int(i)] for i in idx])
        return stats.kendalltau(x[r], y[r]).statistic

    ref = stats.bootstrap(
        (np.arange(6),), brute, vectorized=False, n_resamples=200, method=method, rng=np.random.default_rng(7)
    ).confidence_interval
    assert res.conf_int() == pytest.approx((ref.low, ref.high), abs=tol)
    assert res.details["configurations"] == 6 and res.details["interval"] == method


def test_seed_level_resampling_would_differ():
    """Duplicated seeds inflate n: resampling runs gives a narrower interval than resampling configurations."""
    rng = np.random.default_rng(3)
    base = rng.normal(size=8)
    x = np.repeat(base, 5)
    y = np.repeat(base + rng.normal(0, 1.0, 8), 5)
    groups = np.repeat(np.arange(8), 5)
    by_config = kendall_tau(x, y, groups=groups, n_resamples=300, random_state=0, method="percentile")
    by_run = kendall_tau(x, y, n_resamples=300, random_state=0, method="percentile")
    assert (by_config.high - by_config.low) > 1.5 * (by_run.high - by_run.low)


def test_difference_against_control():
    rng = np.random.default_rng(4)
    q = rng.normal(size=40)
    y = q + rng.normal(0, 0.3, 40)
    noise = rng.normal(size=40)
    better = kendall_tau_difference(q, noise, y, n_resamples=200, random_state=0)
    mirrored = -q + rng.normal(0, 0.05, 40)  # a control tracking the outcome as well, with the other sign
    tie = kendall_tau_difference(q, mirrored, y, n_resamples=200, random_state=0)
    assert better.low > 0
    assert abs(tie.statistic) < 0.05
    assert tie.low <= 0 <= tie.high


def test_granulated_psi_pvalues_permute_within_strata():
    """psi[a] is computed within strata of b; its null must only permute within them. With y depending only on
    b (the stratum) and x on a, psi[a] is a pure-noise figure: the within-stratum null gives it a large
    p-value, while its statistic alone (old rule: pass at any positive value) carries no uncertainty."""
    rng = np.random.default_rng(5)
    frame = pd.DataFrame({"a": np.tile([0, 1, 2], 4), "b": np.repeat([0, 1, 2, 3], 3)})
    frame["q"] = frame["a"] + rng.normal(0, 0.1, 12)
    frame["err"] = 10 * frame["b"] + rng.normal(0, 1.0, 12)
    res = granulated_kendall(frame, "q", "err", ["a"], groups=np.arange(12), n_resamples=999, random_state=0)
    assert np.isfinite(res.statistic) and res.p_greater > 0.05
    assert res.details["p any greater"] == res.p_greater  # one axis: "every" and "some" psi_i coincide


def test_granulated_psi_hand_computed():
    # axes a, b in {0, 1} x {0, 1}, one run each.
    frame = pd.DataFrame({"a": [0, 1, 0, 1], "b": [0, 0, 1, 1], "q": [1.0, 2.0, 3.0, 0.0], "err": [1.0, 2.0, 1.0, 2.0]})
    # psi_a: b=0 -> runs (q 1,2; err 1,2) concordant: tau = 1; b=1 -> (q 3,0; err 1,2) discordant: -1. Mean 0.
    # psi_b: a=0 -> (q 1,3; err 1,1): err tied, tau undefined (skipped); a=1 -> (q 2,0; err 2,2) undefined.
    res = granulated_kendall(frame, "q", "err", ["a", "b"])
    assert res.details["psi[a]"] == 0.0
    assert np.isnan(res.details["psi[b]"])
    assert res.statistic == 0.0
    frame.loc[3, "err"] = 3.0
    # now psi_a(b=1): q (3,0) vs err (1,3): -1 -> psi_a 0; psi_b(a=1): q (2,0) vs err (2,3): -1; a=0 undefined.
    res = granulated_kendall(frame, "q", "err", ["a", "b"])
    assert res.details["psi[b]"] == -1.0
    assert res.statistic == pytest.approx((0.0 - 1.0) / 2)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"alternative": "bigger"}, "'alternative' parameter of kendall_tau must be one of"),
        ({"n_resamples": -1}, "'n_resamples' parameter of kendall_tau must be an int >= 0"),
        ({"confidence_level": 1.0}, "'confidence_level' parameter of kendall_tau"),
        ({"method": "bca"}, "'method' parameter must be one of 'BCa', 'percentile', 'basic'"),
        ({"groups": [0, 1]}, "'groups' parameter must have one label per run"),
    ],
)
def test_kendall_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        kendall_tau([1, 2, 3], [1, 2, 3], **kwargs)
