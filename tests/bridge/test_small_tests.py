"""TOST and the event-ordering t test over configurations, and multiple-testing corrections, against
statsmodels/scipy."""

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.weightstats import ttost_ind, ttost_paired

from bridge.stats import adjust_pvalues, event_lag_test, tost


def test_tost_matches_statsmodels():
    rng = np.random.default_rng(0)
    a, b = rng.normal(0, 1, 20), rng.normal(0.1, 1, 20)
    res = tost(a, b, 0.5)
    assert res.pvalue == pytest.approx(ttost_ind(a, b, -0.5, 0.5)[0], rel=1e-12)
    # the 90% interval of the difference, pooled variance, by hand
    n1 = n2 = 20
    sp = np.sqrt(((n1 - 1) * a.var(ddof=1) + (n2 - 1) * b.var(ddof=1)) / (n1 + n2 - 2))
    half = stats.t.ppf(0.95, n1 + n2 - 2) * sp * np.sqrt(1 / n1 + 1 / n2)
    assert res.conf_int() == pytest.approx((a.mean() - b.mean() - half, a.mean() - b.mean() + half), rel=1e-10)
    paired = tost(a, b, 0.5, paired=True)
    assert paired.pvalue == pytest.approx(ttost_paired(a, b, -0.5, 0.5)[0], rel=1e-12)
    # TOST rejects exactly when the (1 - 2 alpha) interval lies inside the margin
    assert (res.pvalue < 0.05) == (-0.5 < res.low and res.high < 0.5)


def test_event_lag_t_test_over_configuration_means_hand_computed():
    lags = np.array([5.0, 7, 9, 13, 4, 8, -1, 3])
    groups = [0, 0, 1, 1, 2, 2, 3, 3]
    res = event_lag_test(lags, groups=groups, tolerance=2, confidence_level=0.9)
    means = np.array([6.0, 11.0, 6.0, 1.0])  # the configurations' mean lags
    assert res.statistic == pytest.approx(means.mean()) and res.n == 4
    assert res.pvalue == res.p_greater == pytest.approx(stats.ttest_1samp(means, -2, alternative="greater").pvalue)
    assert res.p_less == pytest.approx(stats.ttest_1samp(means, -2, alternative="less").pvalue)
    half = stats.t.ppf(0.95, 3) * means.std(ddof=1) / 2
    assert res.conf_int() == pytest.approx((means.mean() - half, means.mean() + half))
    assert res.details["unit"].startswith("configuration") and res.details["runs"] == 8
    # without labels, or with one configuration, the runs are the units
    for runs in (event_lag_test(lags, tolerance=2), event_lag_test(lags, groups=[0] * 8, tolerance=2)):
        assert runs.n == 8 and runs.details["unit"] == "run"
        assert runs.pvalue == pytest.approx(stats.ttest_1samp(lags, -2, alternative="greater").pvalue)


def test_event_lag_without_spread_uses_the_exact_sign_test_over_configurations():
    res = event_lag_test([5.0, 5, 5, 5, 5, 5], groups=[0, 0, 1, 1, 2, 2])
    assert res.p_greater == pytest.approx(0.5**3) and res.p_less == 1.0
    assert res.conf_int() == (5.0, 5.0) and "sign test" in res.details["test"]
    single = event_lag_test([5.0, 6.0], groups=[0, 0])  # one configuration: its two seeds are the units
    assert single.n == 2 and np.isfinite(single.pvalue)
    assert np.isnan(event_lag_test([5.0]).pvalue)


def test_event_lag_reverse_order_is_not_significant():
    res = event_lag_test([-10, -12, -9, -11, -10])
    assert res.pvalue > 0.9 and res.p_less < 0.01


def test_tost_over_configuration_means_matches_statsmodels_on_the_means():
    rng = np.random.default_rng(1)
    a, b = rng.normal(0, 1, 12), rng.normal(0.2, 1, 9)
    ga, gb = np.repeat([0, 1, 2, 3], 3), np.repeat([4, 5, 6], 3)
    ma, mb = a.reshape(4, 3).mean(1), b.reshape(3, 3).mean(1)
    res = tost(a, b, 1.0, groups1=ga, groups2=gb)
    assert res.pvalue == pytest.approx(ttost_ind(ma, mb, -1.0, 1.0)[0], rel=1e-12)
    assert res.n == 7 and res.details["df"] == 5 and res.details["unit"] == "configuration mean"
    assert res.statistic == pytest.approx(ma.mean() - mb.mean())
    # paired: the configuration means of the paired differences
    c = a + rng.normal(0.1, 0.3, 12)
    paired = tost(a, c, 1.0, groups1=ga, paired=True)
    assert paired.pvalue == pytest.approx(ttost_paired(ma, c.reshape(4, 3).mean(1), -1.0, 1.0)[0], rel=1e-12)
    assert paired.n == 4 and paired.details["df"] == 3
    # each level one configuration: the runs are the units
    runs = tost(a[:3], b[:3], 1.0, groups1=[0, 0, 0], groups2=[1, 1, 1])
    assert runs.n == 6 and runs.details["unit"] == "run"
    assert runs.pvalue == pytest.approx(ttost_ind(a[:3], b[:3], -1.0, 1.0)[0], rel=1e-12)


@pytest.mark.parametrize("method", ["holm", "fdr_bh"])
def test_adjust_pvalues_matches_multipletests(method):
    p = np.array([0.001, 0.02, np.nan, 0.04, 0.3])
    out = adjust_pvalues(p, method)
    finite = ~np.isnan(p)
    assert np.isnan(out[2])
    assert out[finite] == pytest.approx(multipletests(p[finite], method=method)[1], rel=1e-12)


def test_validation():
    with pytest.raises(ValueError, match="'margin' parameter of tost"):
        tost([1, 2], [1, 2], 0.0)
    with pytest.raises(ValueError, match="'method' parameter of adjust_pvalues must be one of 'holm', 'fdr_bh'"):
        adjust_pvalues([0.1], "bonferroni")
    with pytest.raises(ValueError, match="'tolerance' parameter of event_lag_test"):
        event_lag_test([1.0], tolerance=-1)
    with pytest.raises(ValueError, match="'groups' parameter of event_lag_test must have one label per lag"):
        event_lag_test([1.0, 2.0], groups=[0])
    with pytest.raises(ValueError, match="'groups2' parameter of tost must have one label per value"):
        tost([1, 2, 3], [1, 2], 0.5, groups1=[0, 1, 2], groups2=[0])
    with pytest.raises(ValueError, match="'groups2' parameter of tost must be None or equal"):
        tost([1, 2], [1, 2], 0.5, groups1=[0, 1], groups2=[1, 0], paired=True)


def test_result_summary_and_unpacking():
    res = event_lag_test([5, 7, 9, 3, 4, 8], groups=[0, 0, 1, 1, 2, 2])
    statistic, pvalue = res
    assert (statistic, pvalue) == (res.statistic, res.pvalue)
    text = res.summary()
    assert "Event ordering (t test over configurations)" in text and "95% interval" in text and "tolerance" in text
    assert f"{res.pvalue:.4g}" in text
