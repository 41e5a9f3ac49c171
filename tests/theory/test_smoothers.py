"""Smoothers and effective parameters against dense float64 references, closed forms and estimators' predict."""

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from theory.smoothers import PerOutputEffectiveParameters, effective_parameters


def _loop_effective_parameters(w):
    """Brute force p̂ = (n/|I|) Σ_j Σ_i ŝ_i(x_j)², one entry at a time."""
    n_inputs, n_train = w.shape
    return n_train / n_inputs * sum(w[j, i] ** 2 for j in range(n_inputs) for i in range(n_train))


def test_effective_parameters_matches_loop_and_accepts_torch():
    rng = np.random.default_rng(0)
    w = rng.normal(size=(5, 7))
    assert effective_parameters(w) == pytest.approx(_loop_effective_parameters(w), rel=1e-12)
    assert effective_parameters(torch.from_numpy(w)) == pytest.approx(_loop_effective_parameters(w), rel=1e-12)


def test_effective_parameters_of_averaging_and_interpolating_smoothers():
    n = 6
    assert effective_parameters(np.eye(n)) == pytest.approx(n)  # S = I: every point its own parameter
    assert effective_parameters(np.full((n, n), 1 / n)) == pytest.approx(1.0)  # the mean: one parameter


def test_effective_parameters_per_output():
    rng = np.random.default_rng(1)
    w = rng.normal(size=(4, 6, 3))
    result = effective_parameters(w)
    assert isinstance(result, PerOutputEffectiveParameters)
    expected = [_loop_effective_parameters(w[:, :, o]) for o in range(3)]
    np.testing.assert_allclose(result.per_output, expected, rtol=1e-12)
    assert result.mean == pytest.approx(np.mean(expected), rel=1e-12)


@given(
    arrays(
        np.float64,
        st.tuples(st.integers(1, 5), st.integers(1, 5)),
        elements=st.floats(-1e3, 1e3, allow_subnormal=False),
    )
)
def test_effective_parameters_is_nonnegative_and_scales_quadratically(w):
    p = effective_parameters(w)
    assert p >= 0
    assert effective_parameters(2 * w) == pytest.approx(4 * p, rel=1e-9, abs=1e-9)


@pytest.mark.parametrize(
    "bad, error, match",
    [
        (np.ones(3), ValueError, "2-D or 3-D"),
        (np.ones((0, 3)), ValueError, "at least one"),
        (np.array([[np.nan]]), ValueError, "finite"),
        ("abc", TypeError, "real array"),
    ],
)
def test_effective_parameters_rejects_bad_weights(bad, error, match):
    with pytest.raises(error, match=match):
        effective_parameters(bad)
