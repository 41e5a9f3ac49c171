"""Partial rank correlation and the stratified permutation test."""

import itertools
import warnings

import numpy as np
import pandas as pd
import patsy
import pytest
from scipy import stats

from bridge.stats import confounder_design, partial_rank_correlation, stratified_permutation_test
from bridge.stats.confounders import column_space


@pytest.fixture
def frame():
    rng = np.random.default_rng(0)
    z = rng.normal(size=60)
    return pd.DataFrame({"z": z, "x": z + rng.normal(0, 0.5, 60), "y": np.exp(z) + rng.normal(0, 0.5, 60)})


def test_no_confounder_is_spearman(frame):
    res = partial_rank_correlation(frame, "x", "y", [], n_resamples=99, random_state=0)
    assert res.statistic == pytest.approx(stats.spearmanr(frame["x"], frame["y"]).statistic, rel=1e-10)
    small = frame.head(6)  # 720 permutations: enumerated, so the p-value is the exact permutation p-value
    res = partial_rank_correlation(small, "x", "y", [], n_resamples=720, alternative="greater")
    x, y = small["x"].to_numpy(), small["y"].to_numpy()
    observed = stats.spearmanr(x, y).statistic
    null = np.array([stats.spearmanr(x, y[list(p)]).statistic for p in itertools.permutations(range(6))])
    assert res.pvalue == pytest.approx(np.mean(null >= observed - 1e-12), rel=1e-12)
    assert res.details["permutations"] == "720 (exact)"


def test_rank_method_matches_first_order_partial_formula(frame):
    # Spearman partial correlation with one covariate: (r_xy - r_xz r_yz) / sqrt((1 - r_xz^2)(1 - r_yz^2)).
    r = frame[["x", "y", "z"]].corr(method="spearman")
    expected = (r.loc["x", "y"] - r.loc["x", "z"] * r.loc["y", "z"]) / np.sqrt(
        (1 - r.loc["x", "z"] ** 2) * (1 - r.loc["y", "z"] ** 2)
    )
    res = partial_rank_correlation(frame, "x", "y", ["z"], method="rank", n_resamples=99, random_state=0)
    assert res.statistic == pytest.approx(expected, rel=1e-10)


def test_freedman_lane_pvalue_against_a_loop_over_every_permutation():
    """Exact p-value (7! permutations, each run its own configuration) against a literal loop: permute y's
    rank residuals on Z, residualise them again, correlate with x's rank residuals (Freedman & Lane 1983)."""
    rng = np.random.default_rng(3)
    z = rng.normal(size=7)
    small = pd.DataFrame({"z": z, "x": z + rng.normal(0, 0.5, 7), "y": z + rng.normal(0, 0.5, 7)})
    res = partial_rank_correlation(small, "x", "y", ["z"], method="rank", n_resamples=5040, alternative="greater")
    design = np.column_stack([np.ones(7), stats.rankdata(small["z"])])

    def resid(v):
        return v - design @ np.linalg.lstsq(design, v, rcond=None)[0]

    rx, ry = resid(stats.rankdata(small["x"])), resid(stats.rankdata(small["y"]))
    observed = np.corrcoef(rx, ry)[0, 1]
    null = [np.corrcoef(rx, resid(ry[list(p)]))[0, 1] for p in itertools.permutations(range(7))]
    assert res.statistic == pytest.approx(observed, rel=1e-10)
    assert res.pvalue == pytest.approx(np.mean(np.array(null) >= observed - 1e-12), rel=1e-12)


def test_partial_interval_is_a_configuration_bootstrap_with_a_fallback(frame):
    groups = np.repeat(np.arange(12), 5)
    res = partial_rank_correlation(frame, "x", "y", ["z"], groups=groups, n_resamples=199, random_state=0)
    assert res.low < res.statistic < res.high and res.details["configurations"] == 12
    assert res.details["interval"] in ("BCa",) or res.details["interval"].startswith("percentile")
    few = partial_rank_correlation(frame, "x", "y", ["z"], groups=np.repeat([0, 1], 30), n_resamples=199)
    assert np.isnan(few.low) and few.details["interval"].startswith("none (2 configurations")
    bare = partial_rank_correlation(frame, "x", "y", ["z"], n_resamples=0)
    assert bare.statistic == res.statistic and np.isnan(bare.pvalue) and np.isnan(bare.low)


def test_spline_method_matches_lstsq_residuals(frame):
    basis = np.asarray(patsy.dmatrix("cr(z, df=4, constraints='center') - 1", {"z": frame["z"].to_numpy()}))
    design = np.column_stack([np.ones(len(frame)), basis])

    def resid(v):
        return v - design @ np.linalg.lstsq(design, v, rcond=None)[0]

    expected = stats.spearmanr(resid(frame["x"].to_numpy()), resid(frame["y"].to_numpy())).statistic
    assert confounder_design(frame, ["z"]) == pytest.approx(design)  # the public design the report draws with
    assert confounder_design(frame, []).shape == (len(frame), 1)
    res = partial_rank_correlation(frame, "x", "y", ["z"], n_resamples=99, random_state=0)
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


def test_a_rank_deficient_spline_design_projects_out_only_its_column_space():
    """A confounder with 3 distinct values has a rank-3 intercept-plus-4-spline design (5 columns): the residuals
    are those of least squares on the column space (float64 lstsq reference), where a QR basis of the 5 columns
    would also remove 2 arbitrary directions (issue 12 item 7: handle the singular design, do not warn)."""
    rng = np.random.default_rng(3)
    z = np.repeat([0.0, 1.0, 2.0], 10)
    frame = pd.DataFrame({"z": z, "x": z + rng.normal(0, 1, 30), "y": z + rng.normal(0, 1, 30)})
    design = confounder_design(frame, ["z"])
    assert design.shape == (30, 5) and np.linalg.matrix_rank(design) == 3

    def resid(v):
        return v - design @ np.linalg.lstsq(design, v, rcond=None)[0]

    expected = stats.spearmanr(resid(frame["x"].to_numpy()), resid(frame["y"].to_numpy())).statistic
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = partial_rank_correlation(frame, "x", "y", ["z"], n_resamples=99, random_state=0)
    assert res.statistic == pytest.approx(expected, rel=1e-10)
    dropped = "2 collinear columns dropped: a confounder takes too few distinct values"
    assert res.details["design"] == f"5 columns, rank 3 ({dropped})"
    qr = np.linalg.qr(design)[0]  # the old basis: its projection removes more than the design's span
    assert not np.allclose(frame["x"] - qr @ (qr.T @ frame["x"]), resid(frame["x"].to_numpy()))
    basis, rank = column_space(design)
    assert rank == 3 and basis.T @ basis == pytest.approx(np.eye(3))


def test_an_undefined_partial_correlation_says_why():
    z = np.linspace(0, 1, 12)
    frame = pd.DataFrame({"z": z, "x": 2 * z + 1, "y": np.sin(7 * z)})  # x is a (linear) function of z
    res = partial_rank_correlation(frame, "x", "y", ["z"], method="rank", n_resamples=19, random_state=0)
    assert np.isnan(res.statistic) and res.details["why"].startswith("x is a function of z on these runs")
