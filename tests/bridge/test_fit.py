"""Functional fits: sympy parsing, scipy fits against lstsq and statsmodels, tests on configurations (lack of fit,
gain over the null, parameter intervals, constraints), out of setting."""

import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import optimize, stats
from statsmodels.stats.anova import anova_lm

from bridge.stats import (
    Constraint,
    NotIdentifiedError,
    Side,
    fieller_interval,
    fit_expression,
    fit_parameters,
    lack_of_fit,
    paired_ratio_test,
    parse_expression,
    predict,
    predict_out_of_setting,
)


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
    ci = res.conf_int()  # every run its own configuration: the Wald interval is OLS's
    assert ci.to_numpy() == pytest.approx(full.conf_int(0.05), rel=1e-6)
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
    res = predict_out_of_setting(expr, train, test)
    assert res.statistic < 0.2 and res.pvalue < 1e-3
    assert res.low <= res.statistic <= res.high < 1
    # a constant null predicting another setting: the wrong form does no better than the null
    wrong = predict_out_of_setting("err = a + b*exp(p_test)", train, test, null="err = a + b*p_test")
    assert wrong.statistic > 1


def test_out_of_setting_takes_configurations_as_units():
    """Per configuration: the seeds' mean squared errors; the test is a paired t test of their log ratios."""
    rng = np.random.default_rng(3)
    x = np.repeat(np.arange(1.0, 9.0), 4)
    frame = pd.DataFrame(
        {"x": x, "y": 1 + 0.5 * x + rng.normal(0, 0.3, 8)[(x - 1).astype(int)] + rng.normal(0, 0.1, 32)}
    )
    train, test = frame[frame["x"] <= 4], frame[frame["x"] > 4]
    res = predict_out_of_setting("y = a + b*x", train, test, groups=test["x"], confidence_level=0.9)
    theta = np.polyfit(train["x"], train["y"], 1)
    e_model = (test["y"] - np.polyval(theta, test["x"])) ** 2
    e_null = (test["y"] - train["y"].mean()) ** 2
    log_ratio = np.log(e_model.groupby(test["x"]).mean() / e_null.groupby(test["x"]).mean())
    ref = stats.ttest_1samp(log_ratio, 0.0)
    assert res.n == 16 and res.details["configurations"] == 4
    assert res.statistic == pytest.approx(np.exp(log_ratio.mean()))
    assert res.pvalue == pytest.approx(ref.pvalue)
    low, high = np.exp(ref.confidence_interval(0.9))
    assert (res.low, res.high) == pytest.approx((low, high))
    assert list(res.losses.columns) == ["model", "null"] and len(res.losses) == 4


def test_predict_evaluates_rhs(quadratic):
    expr = parse_expression("err = a + b*p_test")
    out = predict(expr, {"a": 1.0, "b": 2.0}, quadratic)
    assert out == pytest.approx(1.0 + 2.0 * quadratic["p_test"].to_numpy())


def test_validation(quadratic):
    with pytest.raises(ValueError, match="'method' parameter of fit_expression must be one of"):
        fit_expression("err = a + b*p_test", quadratic, method="lm")
    with pytest.raises(ValueError, match="target 'gap'"):
        fit_expression("gap = a + b*p_test", quadratic)


def _replicated(seed: int = 0, *, n_configs: int = 8, n_seeds: int = 3, tau: float = 0.3, curved: float = 0.0):
    """Balanced sweep: x constant within a configuration, configuration random effects (sd tau), seed noise 0.1."""
    rng = np.random.default_rng(seed)
    config = np.repeat(np.arange(n_configs), n_seeds)
    x = np.linspace(0.5, 3.0, n_configs)[config]
    y = 1 + 0.8 * x + curved * x**2 + rng.normal(0, tau, n_configs)[config] + rng.normal(0, 0.1, len(x))
    return pd.DataFrame({"config": config, "x": x, "y": y})


def test_lack_of_fit_is_anova_lm_against_the_saturated_configuration_model():
    frame = _replicated(1, curved=0.3, tau=0.0)
    res = fit_expression("y = a + b*x", frame, groups=frame["config"])
    ref = anova_lm(smf.ols("y ~ x", frame).fit(), smf.ols("y ~ C(config)", frame).fit())
    assert res.lack_of_fit.statistic == pytest.approx(ref["F"].iloc[1], rel=1e-8)
    assert res.lack_of_fit.pvalue == pytest.approx(ref["Pr(>F)"].iloc[1], rel=1e-6, abs=1e-300)
    assert (res.lack_of_fit.details["df lack of fit"], res.lack_of_fit.details["df pure error"]) == (6, 16)
    assert res.lack_of_fit.pvalue < 1e-4  # the curvature is a lack of fit


def test_gain_over_the_null_and_intervals_are_ols_on_configuration_means():
    """Configuration random effects: the law is tested on the m configuration means, not on the n runs."""
    frame = _replicated(2)
    res = fit_expression("y = a + b*x", frame, groups=frame["config"], confidence_level=0.9)
    means = frame.groupby("config").mean()
    full = sm.OLS(means["y"], sm.add_constant(means["x"])).fit()
    f_value, p_value, _ = full.compare_f_test(sm.OLS(means["y"], np.ones(len(means))).fit())
    assert res.pvalue == pytest.approx(p_value, rel=1e-6) and res.details["gain statistic"] == pytest.approx(f_value)
    assert res.conf_int().to_numpy() == pytest.approx(full.conf_int(0.1).to_numpy(), rel=1e-6)
    runs = sm.OLS(frame["y"], sm.add_constant(frame["x"])).fit()  # seeds as units: far too narrow
    assert np.ptp(runs.conf_int(0.1).loc["x"]) < 0.7 * np.ptp(res.conf_int().loc["b"])


def test_nonlinear_interval_is_curve_fits_covariance_on_configuration_means():
    frame = _replicated(3, tau=0.05).assign(y=lambda d: 2 * np.exp(0.4 * d["x"]) + d["y"] - 1 - 0.8 * d["x"])
    res = fit_expression("y = a*exp(b*x)", frame, groups=frame["config"], p0={"a": 1.0, "b": 0.1})
    means = frame.groupby("config").mean()
    theta, cov = optimize.curve_fit(lambda x, a, b: a * np.exp(b * x), means["x"], means["y"], p0=[1.0, 0.1])
    half = stats.t.ppf(0.975, len(means) - 2) * np.sqrt(np.diag(cov))
    assert [res.params["a"], res.params["b"]] == pytest.approx(theta, rel=1e-5)
    assert res.conf_int()["lower"].to_numpy() == pytest.approx(theta - half, rel=1e-4)
    assert res.conf_int()["upper"].to_numpy() == pytest.approx(theta + half, rel=1e-4)


def test_configuration_t_interval_covers_with_configuration_random_effects():
    """Simulation: 6 configurations x 3 seeds, configuration effects 3x the seed noise: the slope's 95% interval
    covers the truth at about its level (seeds as units would cover far less)."""
    covered = [
        (lambda ci: ci.loc["b", "lower"] <= 0.8 <= ci.loc["b", "upper"])(
            fit_expression("y = a + b*x", d, groups=d["config"]).conf_int()
        )
        for d in (_replicated(seed, n_configs=6) for seed in range(200))
    ]
    assert 0.91 <= np.mean(covered) <= 0.99


def test_untestable_lack_of_fit_says_why():
    one_seed = _replicated(4, n_seeds=1)
    res = fit_expression("y = a + b*x", one_seed, groups=one_seed["config"])
    assert (
        np.isnan(res.lack_of_fit.pvalue)
        and "no configuration has replicate seeds" in res.lack_of_fit.details["untestable"]
    )
    few = _replicated(5, n_configs=3)
    res = fit_expression("y = a + b*x + c*x**2", few, groups=few["config"])
    assert (
        "3 configurations leave no degree of freedom for a law with 3 parameters"
        in res.lack_of_fit.details["untestable"]
    )
    assert np.isnan(res.pvalue) and np.isnan(res.param_low["c"])  # no configuration-level df left either
    exact = lack_of_fit([0.5, 0.5, -0.5, -0.5, 0.0, 0.0], [0, 0, 1, 1, 2, 2], n_params=1)
    assert "agree exactly" in exact.details["untestable"]


@pytest.mark.parametrize(
    ("text", "low", "high", "side"),
    [
        ("c > 0", 0.1, 0.3, Side.RIGHT),
        ("c > 0", -0.3, -0.1, Side.WRONG),
        ("c > 0", -0.3, 0.0, Side.WRONG),
        ("c > 0", -0.1, 0.1, Side.STRADDLES),
        ("c >= 0", 0.0, 0.2, Side.RIGHT),
        ("c >= 0", -0.2, 0.0, Side.STRADDLES),
        ("k < 1", -3.0, 0.5, Side.RIGHT),
        ("k < 1", 1.0, 2.0, Side.WRONG),
        ("k <= 1", 1.0, 2.0, Side.STRADDLES),
        ("k <= 1", 1.5, 2.0, Side.WRONG),
        ("c > 0", np.nan, np.nan, Side.UNDEFINED),
    ],
)
def test_constraint_sides(text, low, high, side):
    assert Constraint.parse(text).side(low, high) is side


@given(st.text(max_size=30))
@settings(max_examples=200, deadline=None, derandomize=True)
def test_constraint_parser_never_evaluates(text):
    """Any text either parses to (identifier, operator, finite float) or raises ValueError."""
    try:
        c = Constraint.parse(text)
    except ValueError as err:
        assert "PARAM OP NUMBER" in str(err)
    else:
        assert c.parameter.isidentifier() and c.op in ("<", ">", "<=", ">=") and np.isfinite(c.bound)


def test_constraints_must_name_free_parameters(quadratic):
    res = fit_expression("err = a + b*p_test + c*p_test**2", quadratic, constraints=["c < 0", "b > 0.4"])
    assert [check.side for check in res.constraints] == [Side.RIGHT, Side.RIGHT]
    with pytest.raises(ValueError, match="names 'p_test', which is not a free parameter"):
        fit_expression("err = a + b*p_test", quadratic, constraints=["p_test > 0"])


@given(
    st.lists(st.tuples(st.floats(0.1, 10), st.floats(0.1, 10)), min_size=3, max_size=12),
    st.sampled_from([0.8, 0.9, 0.95]),
)
@settings(max_examples=100, deadline=None, derandomize=True)
def test_paired_intervals_exclude_one_exactly_when_the_t_test_rejects(pairs, level):
    a, b = (pd.Series(v) for v in zip(*pairs, strict=True))
    for log in (False, True):
        res = paired_ratio_test(a, b, log=log, confidence_level=level)
        if not np.isfinite(res.pvalue) or abs(res.pvalue - (1 - level)) < 1e-6 or np.isinf(res.high):
            continue  # on the boundary rounding decides; an unbounded Fieller set is reported by its hull
        assert (res.pvalue < 1 - level) == (not res.low <= 1 <= res.high)


def test_fieller_interval_reference():
    """Reference: the roots of (ā − ρ b̄)² = t² (s_aa − 2ρ s_ab + ρ² s_bb)/m, solved with numpy.roots."""
    a, b = np.array([1.0, 1.4, 0.9, 1.2]), np.array([2.0, 2.5, 2.2, 2.1])
    q = stats.t.ppf(0.975, 3) ** 2 / 4
    s = np.cov(a, b)
    roots = np.roots(
        [b.mean() ** 2 - q * s[1, 1], -2 * (a.mean() * b.mean() - q * s[0, 1]), a.mean() ** 2 - q * s[0, 0]]
    )
    assert fieller_interval(a, b) == pytest.approx(tuple(sorted(roots)))
    assert fieller_interval(a, b - b.mean()) == (-np.inf, np.inf)  # denominator not away from 0: unbounded
    assert fieller_interval(np.array([1.0, 1.0, 2.0]), np.array([0.5, 0.25, 1.0]), 0.9) == (-np.inf, np.inf)


def test_fit_parameters_are_fit_expressions_least_squares(quadratic):
    law = "err = a + b*p_test + c*p_test**2"
    assert fit_parameters(law, quadratic) == pytest.approx(fit_expression(law, quadratic).params, rel=1e-9)
    with pytest.raises(RuntimeError, match="not finite on every run"):
        fit_parameters("err = log(a - 5)*p_test", quadratic)


def test_parameters_the_runs_do_not_identify_raise_and_bootstrap_resamples_that_lose_them_are_counted():
    """Where curve_fit warned "Covariance of the parameters could not be estimated" (issue 12 item 7), the fit now
    says why the parameters are not identified, and a bootstrap refit skips and counts such resamples: no
    warning is printed, none is suppressed."""
    flat = pd.DataFrame({"x": [1.0] * 6, "y": np.arange(6.0)})
    with pytest.raises(NotIdentifiedError, match=r"its Jacobian at the fit has rank 1 < 2 parameters"):
        fit_parameters("y = a + b*x", flat)
    with pytest.raises(NotIdentifiedError, match="2 runs for 2 parameters leave no residual degree of freedom"):
        fit_parameters("y = a + b*x", pd.DataFrame({"x": [0.0, 1.0], "y": [0.0, 1.0]}))
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": np.repeat([0.0, 1.0, 2.0], 3)}).assign(y=lambda d: 1 + d["x"] + rng.normal(0, 0.1, 9))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = fit_expression("y = a + b*x", frame, groups=frame["x"], interval="bootstrap", n_resamples=199,
                             random_state=0)  # fmt: skip
    skipped = int(res.details["bootstrap"].split(" of ")[0])  # resamples drawing one configuration three times
    assert (
        0 < skipped < 199
        and res.details["bootstrap"] == f"{skipped} of 199 resamples skipped ({skipped} not identified)"
    )
    assert res.param_low["b"] < res.params["b"] < res.param_high["b"]
    theta, _ = optimize.curve_fit(lambda x, a, b: a + b * x, frame["x"], frame["y"])  # the same MINPACK solver
    assert [res.params["a"], res.params["b"]] == pytest.approx(theta, rel=1e-12)
