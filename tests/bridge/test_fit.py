"""Functional fits: sympy parsing, scipy fits against lstsq and statsmodels, bootstrap intervals, out of setting."""

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from bridge.stats import fit_expression, parse_expression, predict, predict_out_of_setting


@pytest.fixture
def quadratic():
    rng = np.random.default_rng(0)
    p = rng.uniform(0, 2, 60)
    return pd.DataFrame({"p_test": p, "err": 0.2 + 0.5 * p - 0.3 * p**2 + rng.normal(0, 0.02, 60)})


def test_parse_expression_keeps_names_as_symbols():
    expr = parse_expression("t_grok = k*log(alpha)/wd + E*Q")
    assert expr.target == "t_grok"
    assert expr.symbols == ("E", "Q", "alpha", "k", "wd")
    assert expr.split(["alpha", "wd"]) == (("alpha", "wd"), ("E", "Q", "k"))
    for bad in ("a + b", "x = a +* b", "x + y = a", "x = "):
        with pytest.raises(ValueError):
            parse_expression(bad)


def test_linear_in_parameters_fit_matches_lstsq_and_f_test(quadratic):
    res = fit_expression("err = a + b*p_test + c*p_test**2", quadratic, n_resamples=50, random_state=0)
    design = np.column_stack([np.ones(60), quadratic["p_test"], quadratic["p_test"] ** 2])
    coef = np.linalg.lstsq(design, quadratic["err"].to_numpy(), rcond=None)[0]
    assert [res.params[k] for k in "abc"] == pytest.approx(coef, rel=1e-6)
    full = sm.OLS(quadratic["err"].to_numpy(), design).fit()
    null = sm.OLS(quadratic["err"].to_numpy(), design[:, :1]).fit()
    f_value, p_value, _ = full.compare_f_test(null)
    assert res.pvalue == pytest.approx(p_value, rel=1e-6, abs=1e-300)
    assert res.statistic == pytest.approx(full.rsquared, rel=1e-8)  # null = constant: R2_rel is R2
    ci = res.conf_int()
    for name, truth in zip("abc", (0.2, 0.5, -0.3), strict=True):
        assert ci.loc[name, "lower"] < truth < ci.loc[name, "upper"]


def test_nonlinear_fit_recovers_exponent():
    rng = np.random.default_rng(1)
    x = rng.uniform(1, 5, 80)
    frame = pd.DataFrame({"alpha": x, "wd": 1.0, "t": 3.0 * np.log(x) ** 1.5 + rng.normal(0, 0.01, 80)})
    res = fit_expression("t = k*log(alpha)**e/wd", frame, null="t = k*log(alpha)/wd", n_resamples=30, random_state=0)
    assert res.params["k"] == pytest.approx(3.0, rel=0.01)
    assert res.params["e"] == pytest.approx(1.5, rel=0.01)
    assert res.details["delta AIC"] < -10


def test_huber_resists_outliers(quadratic):
    dirty = quadratic.copy()
    dirty.loc[:5, "err"] += 5.0
    ols = fit_expression("err = a + b*p_test + c*p_test**2", dirty, n_resamples=5, random_state=0)
    huber = fit_expression("err = a + b*p_test + c*p_test**2", dirty, method="huber", n_resamples=5, random_state=0)
    assert abs(huber.params["a"] - 0.2) < 0.1 < abs(ols.params["a"] - 0.2)


def test_out_of_setting_prediction(quadratic):
    expr = "err = a + b*p_test + c*p_test**2"
    train, test = quadratic[quadratic["p_test"] < 1.2], quadratic[quadratic["p_test"] >= 1.2]
    res = predict_out_of_setting(expr, train, test, n_resamples=200, random_state=0)
    assert res.statistic < 0.1 and res.pvalue < 1e-3
    assert res.low <= res.statistic <= res.high
    # a constant null predicting another setting: the wrong form does no better than the null
    wrong = predict_out_of_setting("err = a + b*exp(p_test)", train, test, null="err = a + b*p_test", random_state=0)
    assert wrong.statistic > 1


def test_predict_evaluates_rhs(quadratic):
    expr = parse_expression("err = a + b*p_test")
    out = predict(expr, {"a": 1.0, "b": 2.0}, quadratic)
    assert out == pytest.approx(1.0 + 2.0 * quadratic["p_test"].to_numpy())


def test_validation(quadratic):
    with pytest.raises(ValueError, match="'method' parameter of fit_expression must be one of"):
        fit_expression("err = a + b*p_test", quadratic, method="lm")
    with pytest.raises(ValueError, match="target 'gap'"):
        fit_expression("gap = a + b*p_test", quadratic)
