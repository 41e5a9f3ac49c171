"""Dziugaite et al. 2020 robust sign-error against a hand computation."""

import math

import numpy as np
import pandas as pd
import pytest

from bridge.stats import chernoff_pvalue, hoeffding_weight, robust_sign_error, sign_error_environments


def _weight(dg, n):
    w = max(0.0, 1 - 2 * math.exp(-2 * n * (abs(dg) / 2) ** 2)) ** 2
    return max(w - 0.5, 0.0)


def test_one_environment_hand_computed():
    # Two configurations (w = 1, 2) with two seeds each; n = 1000 test points.
    frame = pd.DataFrame(
        {"w": [1, 1, 2, 2], "C": [1.0, 4.0, 3.0, 0.0], "g": [0.10, 0.20, 0.30, 0.05]},
    )
    # Pairs (w=1 run, w=2 run): dC, dg, sign-error loss
    #   (1, .10)-(3, .30): -2, -0.20, 0    (4, .20)-(3, .30): +1, -0.10, 1
    #   (1, .10)-(0, .05): +1, +0.05, 0    (4, .20)-(0, .05): +4, +0.15, 0
    weights = [_weight(-0.20, 1000), _weight(0.05, 1000), _weight(-0.10, 1000), _weight(0.15, 1000)]
    assert weights[1] == 0.0  # |dg| = 0.05 is within Monte-Carlo noise of a 1000-point test set
    loss = weights[2] / sum(weights)
    ess = sum(weights) ** 2 / sum(w * w for w in weights)
    envs = sign_error_environments(frame, "C", "g", ["w"], n_test=1000)
    assert len(envs) == 1
    assert envs.loc[0, "loss"] == pytest.approx(loss, rel=1e-12)
    assert envs.loc[0, "ess"] == pytest.approx(ess, rel=1e-12)
    res = robust_sign_error(frame, "C", "g", ["w"], n_test=1000, min_ess=0)
    assert res.statistic == pytest.approx(loss, rel=1e-12)
    assert res.details["w: max"] == res.details["w: mean"] == res.details["w: p90"] == pytest.approx(loss)
    # the environment has ess ~2.9 < 12: with the paper's threshold nothing is kept
    assert np.isnan(robust_sign_error(frame, "C", "g", ["w"], n_test=1000).statistic)


def test_per_axis_max_p90_mean_and_worst_environment():
    # axes a (3 values) x b (2 values); C agrees with g except where a = 3 is compared.
    rows = []
    for a in (1, 2, 3):
        for b in (0, 1):
            for s in range(4):
                g = 0.1 * a + 0.3 * b + 0.001 * s
                c = g if a != 3 else -10.0 - g
                rows.append({"a": a, "b": b, "C": c, "g": g})
    frame = pd.DataFrame(rows)
    res = robust_sign_error(frame, "C", "g", ["a", "b"], min_ess=0)
    envs = sign_error_environments(frame, "C", "g", ["a", "b"], n_test=None)
    a_losses = envs.loc[envs["axis"] == "a", "loss"].to_numpy()
    # a-environments (per b): 1 vs 2 -> 0; 1 vs 3 -> 1; 2 vs 3 -> 1.
    assert sorted(a_losses) == [0.0, 0.0, 1.0, 1.0, 1.0, 1.0]
    assert res.details["a: max"] == 1.0
    assert res.details["a: mean"] == pytest.approx(4 / 6)
    assert res.details["a: p90"] == pytest.approx(np.percentile(a_losses, 90))
    # b-environments (per a): C follows g for a = 1, 2 (loss 0), reversed for a = 3 (loss 1)
    assert res.details["b: mean"] == pytest.approx(1 / 3)
    assert res.statistic == 1.0
    assert "a: 1 vs 3" in res.details["worst environment"]


def test_hoeffding_weight_limits():
    assert hoeffding_weight(np.array([0.0, 1.0]), 10_000).tolist() == [0.0, 0.5]
    assert hoeffding_weight(np.array([0.0, 0.3]), None).tolist() == [0.0, 1.0]


def test_validation():
    frame = pd.DataFrame({"w": [1, 2], "C": [1.0, 2.0], "g": [0.1, 0.2]})
    with pytest.raises(ValueError, match="'n_test' parameter of robust_sign_error must be a positive int"):
        robust_sign_error(frame, "C", "g", ["w"], n_test=0)
    with pytest.raises(ValueError, match="must name at least one axis"):
        robust_sign_error(frame, "C", "g", [])


def test_environment_bound_is_hoeffdings_for_a_two_sample_u_statistic():
    """Coin-flip-neutral pair mean h and k = the smaller configuration's seed count, by hand; the bound is
    exp(-k KL(h || 1/2)) (2^-k when every pair agrees)."""
    frame = pd.DataFrame({"w": [1, 1, 1, 2, 2], "C": [1.0, 2.0, 3.0, 5.0, 6.0], "g": [0.1, 0.2, 0.3, 0.5, 0.25]})
    envs = sign_error_environments(frame, "C", "g", ["w"], n_test=None)
    # pairs (w=1 run, w=2 run): C always lower for w=1; g lower except (0.3, 0.25): one sign-error in 6 pairs
    assert envs.loc[0, "h"] == pytest.approx(1 / 6) and envs.loc[0, "k"] == 2
    kl = (1 / 6) * math.log((1 / 6) / 0.5) + (5 / 6) * math.log((5 / 6) / 0.5)
    assert envs.loc[0, "p_below"] == pytest.approx(math.exp(-2 * kl)) and envs.loc[0, "p_above"] == 1.0
    assert chernoff_pvalue(np.array([0.0]), np.array([5]), "below")[0] == pytest.approx(2.0**-5)
    assert chernoff_pvalue(np.array([0.7]), np.array([5]), "below")[0] == 1.0
    # with n_test, a pair whose outcome difference is within test-set noise counts as a coin flip
    noisy = sign_error_environments(frame, "C", "g", ["w"], n_test=100)
    assert 1 / 6 < noisy.loc[0, "h"] < 0.5
