"""Partial rank correlation and the stratified permutation test."""

import numpy as np
import pandas as pd
import patsy
import pytest
from scipy import stats

from bridge.stats import partial_rank_correlation, stratified_permutation_test


@pytest.fixture
def frame():
    rng = np.random.default_rng(0)
    z = rng.normal(size=60)
    return pd.DataFrame({"z": z, "x": z + rng.normal(0, 0.5, 60), "y": np.exp(z) + rng.normal(0, 0.5, 60)})


def test_no_confounder_is_spearman(frame):
    res = partial_rank_correlation(frame, "x", "y", [])
    ref = stats.spearmanr(frame["x"], frame["y"])
    assert (res.statistic, res.pvalue) == pytest.approx((ref.statistic, ref.pvalue), rel=1e-10)


def test_rank_method_matches_first_order_partial_formula(frame):
    # Spearman partial correlation with one covariate: (r_xy - r_xz r_yz) / sqrt((1 - r_xz^2)(1 - r_yz^2)).
    r = frame[["x", "y", "z"]].corr(method="spearman")
    expected = (r.loc["x", "y"] - r.loc["x", "z"] * r.loc["y", "z"]) / np.sqrt(
        (1 - r.loc["x", "z"] ** 2) * (1 - r.loc["y", "z"] ** 2)
    )
    res = partial_rank_correlation(frame, "x", "y", ["z"], method="rank")
    assert res.statistic == pytest.approx(expected, rel=1e-10)
    df = len(frame) - 3
    t = expected * np.sqrt(df / (1 - expected**2))
    assert res.pvalue == pytest.approx(2 * stats.t.sf(abs(t), df), rel=1e-8)


def test_spline_method_matches_lstsq_residuals(frame):
    basis = np.asarray(patsy.dmatrix("cr(z, df=4, constraints='center') - 1", {"z": frame["z"].to_numpy()}))
    design = np.column_stack([np.ones(len(frame)), basis])

    def resid(v):
        return v - design @ np.linalg.lstsq(design, v, rcond=None)[0]

    expected = stats.spearmanr(resid(frame["x"].to_numpy()), resid(frame["y"].to_numpy())).statistic
    res = partial_rank_correlation(frame, "x", "y", ["z"])
    assert res.statistic == pytest.approx(expected, rel=1e-8)
    assert res.details["marginal r"] == pytest.approx(stats.spearmanr(frame["x"], frame["y"]).statistic)
    assert res.low < res.statistic < res.high


def test_stratified_permutation_keeps_within_stratum_structure():
    rng = np.random.default_rng(1)
    # x is constant within each stratum: permuting y inside strata cannot change tau, so p = 1.
    frame = pd.DataFrame({"s": np.repeat([0, 1, 2, 3], 5), "y": rng.normal(size=20)})
    frame["x"] = frame["s"] * 1.0
    res = stratified_permutation_test(frame, "x", "y", ["s"], n_resamples=99, random_state=0)
    assert res.pvalue == 1.0
    # without strata, a strong association is detected: p = 1 / (1 + B)
    frame["y"] = frame["x"] + rng.normal(0, 0.01, 20)
    res = stratified_permutation_test(frame, "x", "y", [], n_resamples=99, random_state=0)
    assert res.pvalue == pytest.approx(1 / 100)


def test_validation(frame):
    with pytest.raises(ValueError, match="'method' parameter of partial_rank_correlation must be one of"):
        partial_rank_correlation(frame, "x", "y", ["z"], method="pearson")
    with pytest.raises(ValueError, match=r"columns \['w'\] are not in the table"):
        partial_rank_correlation(frame, "x", "y", ["w"])
    with pytest.raises(ValueError, match="needs more runs"):
        partial_rank_correlation(frame.head(5), "x", "y", ["z"])
