"""TOST, the event-ordering sign test and multiple-testing corrections against statsmodels/scipy."""

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.descriptivestats import sign_test
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


def test_event_lag_sign_test_hand_computed():
    # 6 positive lags: one-sided sign-test p = 0.5^6
    res = event_lag_test([5, 7, 9, 3, 4, 8])
    assert res.pvalue == pytest.approx(0.5**6)
    assert res.statistic == 6.0
    # with tolerance 4, the lags shifted by +4 are all positive too; a lag of -5 is not
    res = event_lag_test([-5, 1, 2, 3, -2, 4, 6], tolerance=4)
    m, p_two = sign_test(np.array([-5, 1, 2, 3, -2, 4, 6]), mu0=-4)
    assert m > 0 and res.pvalue == pytest.approx(p_two / 2)
    assert res.details["positive"] == 6
    lo, hi = res.conf_int()
    assert lo <= res.statistic <= hi


def test_event_lag_reverse_order_is_not_significant():
    res = event_lag_test([-10, -12, -9, -11, -10])
    assert res.pvalue > 0.9


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


def test_result_summary_and_unpacking():
    res = event_lag_test([5, 7, 9, 3, 4, 8])
    statistic, pvalue = res
    assert (statistic, pvalue) == (res.statistic, res.pvalue)
    text = res.summary()
    assert "Event ordering (sign test)" in text and "95% interval" in text and "tolerance" in text
    assert f"{res.pvalue:.4g}" in text
