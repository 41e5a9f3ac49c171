"""Spectral learning curves: sympy vs numeric, κ vs scalar brentq, identities, the ridgeless peak, and measured KRR."""

import numpy as np
import pytest
import sympy
import torch
from hypothesis import example, given
from hypothesis import strategies as st
from scipy.optimize import brentq

from theory.learning_curves import (
    LEARNING_CURVE_EXPRESSIONS,
    LEARNING_CURVE_SYMBOLS,
    LearningCurve,
    effective_regularization,
    predict_learning_curve,
)

POWER_LAW = np.arange(1, 201, dtype=float) ** -1.5


def _brentq_kappa(eigenvalues, n, ridge):
    """Scalar reference: brentq on log κ over a wide bracket, one n at a time."""
    f = lambda u: np.sum(eigenvalues / (eigenvalues + np.exp(u))) + ridge / np.exp(u) - n
    return np.exp(brentq(f, -80.0, 80.0, xtol=1e-14, rtol=1e-15))


@pytest.mark.parametrize("ridge", [0.0, 1e-4, 0.3, 50.0])
def test_kappa_matches_scalar_brentq(ridge):
    sizes = np.array([0.5, 1, 7, 33.3, 150, 199.5]) if ridge == 0 else np.array([0.5, 1, 7, 150, 200, 1e3, 1e5])
    kappa = effective_regularization(POWER_LAW, sizes, ridge)
    expected = [_brentq_kappa(POWER_LAW, n, ridge) for n in sizes]
    np.testing.assert_allclose(kappa, expected, rtol=1e-10)


def test_ridgeless_kappa_vanishes_past_the_number_of_nonzero_eigenvalues():
    eigenvalues = np.concatenate([POWER_LAW[:50], np.zeros(20)])
    kappa = effective_regularization(eigenvalues, [49, 50, 51, 1000])
    assert kappa[0] > 0 and np.all(kappa[1:] == 0)


@pytest.mark.parametrize("flush_denormal", [True, False])
@pytest.mark.parametrize("ridge", [np.finfo(float).tiny, 1e-300, 1e-200])
def test_tiny_ridges_converge_with_and_without_flushed_denormals(ridge, flush_denormal):
    """κ ≈ δ/(n − M) past the M = 200 eigenvalues is subnormal for δ = 2.2e-308: the log-space solver still
    converges (it did not under flush-denormal), below M it matches the ridgeless κ, at n = M it solves the
    κ equation written with δ/κ = exp(log δ − log κ)."""
    torch.set_flush_denormal(flush_denormal)
    try:
        kappa = effective_regularization(POWER_LAW, [50, 200, 400], ridge)
    finally:
        torch.set_flush_denormal(True)  # as tests/conftest.py sets it for the whole suite
    assert kappa[0] == pytest.approx(effective_regularization(POWER_LAW, 50)[0], rel=1e-10)
    lhs = np.sum(POWER_LAW / (POWER_LAW + kappa[1])) + np.exp(np.log(ridge) - np.log(kappa[1]))
    assert lhs == pytest.approx(200, rel=1e-9)
    past = ridge / 200
    assert kappa[2] == pytest.approx(past, rel=1e-9) or (kappa[2] == 0 and past < np.finfo(float).tiny)


def test_numeric_evaluation_matches_the_sympy_expressions():
    eigenvalues, coeffs = np.array([2.0, 0.7, 0.1, 0.0]), np.array([0.5, -1.0, 0.3, 0.2])
    ridge, noise, n = 0.4, 0.2, 2.5
    curve = predict_learning_curve(eigenvalues, coeffs, n, ridge=ridge, noise=noise)
    sym = LEARNING_CURVE_SYMBOLS
    values = {sym["modes"]: 4, sym["n"]: n, sym["ridge"]: ridge, sym["noise"]: noise, sym["kappa"]: curve.kappa[0]}
    indexed = {sym["eigenvalue"][j]: eigenvalues[j] for j in range(4)} | {
        sym["target_coeff"][j]: coeffs[j] for j in range(4)
    }

    def evaluate(name):
        return float(LEARNING_CURVE_EXPRESSIONS[name].subs(values).doit().subs(indexed))

    assert evaluate("kappa_equation") == pytest.approx(0, abs=1e-12)
    assert curve.total_learnability[0] == pytest.approx(evaluate("total_learnability"), rel=1e-12)
    assert curve.overfitting_coefficient[0] == pytest.approx(evaluate("overfitting_coefficient"), rel=1e-12)
    assert curve.test_mse[0] == pytest.approx(evaluate("test_mse"), rel=1e-12)
    assert curve.train_mse[0] == pytest.approx(evaluate("train_mse"), rel=1e-12)
    learnability = sympy.lambdify(
        (sym["eigenvalue"][0], sym["kappa"]), LEARNING_CURVE_EXPRESSIONS["learnability"].subs(sym["index"], 0)
    )
    np.testing.assert_allclose(curve.learnabilities()[0, :3], learnability(eigenvalues[:3], curve.kappa[0]), rtol=1e-14)


@pytest.mark.parametrize("ridge", [1e-3, 1.0])
def test_total_learnability_is_n_minus_ridge_over_kappa(ridge):
    sizes = np.arange(1, 400, 7)
    curve = predict_learning_curve(POWER_LAW, POWER_LAW, sizes, ridge=ridge)
    np.testing.assert_allclose(curve.total_learnability, sizes - ridge / curve.kappa, rtol=1e-10)
    np.testing.assert_allclose(curve.learnabilities().sum(axis=1), curve.total_learnability, rtol=1e-12)


def test_ridgeless_prediction_peaks_at_the_number_of_nonzero_eigenvalues_and_optimal_ridge_removes_it():
    eigenvalues = np.concatenate([POWER_LAW[:60], np.zeros(40)])  # M⁺ = 60 learnable modes
    coeffs = np.concatenate([POWER_LAW[:60] ** 0.5, 0.05 * np.ones(40)])
    sizes = np.arange(1, 181)
    ridgeless = predict_learning_curve(eigenvalues, coeffs, sizes, noise=0.1)
    at = sizes == 60
    assert np.isinf(ridgeless.overfitting_coefficient[at]).all() and np.isinf(ridgeless.test_mse[at]).all()
    assert np.all(np.diff(ridgeless.test_mse[40:59]) > 0) and np.all(np.diff(ridgeless.test_mse[60:80]) < 0)
    finite = np.where(at, -np.inf, ridgeless.test_mse)
    assert sizes[np.argmax(finite)] in (59, 61)
    # Ridgeless past the peak: κ = 0, every learnable mode learnt, E_0 = n/(n − M⁺) (under-parameterised OLS).
    past = sizes > 60
    np.testing.assert_allclose(ridgeless.overfitting_coefficient[past], sizes[past] / (sizes[past] - 60), rtol=1e-12)

    ridges = np.logspace(-6, 2, 81)
    tuned = np.min([predict_learning_curve(eigenvalues, coeffs, sizes, r, noise=0.1).test_mse for r in ridges], 0)
    assert np.all(np.isfinite(tuned))
    assert np.all(np.diff(tuned) <= 1e-3 * tuned[1:])  # monotone up to the ridge grid's resolution
    assert tuned[at][0] < 0.2 * min(ridgeless.test_mse[58], ridgeless.test_mse[61])


@given(
    st.floats(0.5, 500.0, allow_subnormal=False),
    st.floats(1.01, 10.0, allow_subnormal=False),
    st.floats(0.0, 10.0, allow_subnormal=False),
    st.floats(1.5, 10.0, allow_subnormal=False),
    st.integers(0, 2**16),
)
@example(n=40.0, factor=1.5, ridge=2.2250738585072014e-308, exponent=2.0, seed=0)  # once failed: δ/(2n) subnormal
def test_prediction_properties(n, factor, ridge, exponent, seed):
    rng = np.random.default_rng(seed)
    eigenvalues = np.sort(rng.exponential(size=30))[::-1] ** exponent
    coeffs = rng.normal(size=30)
    curve = predict_learning_curve(eigenvalues, coeffs, [n, n * factor], ridge=ridge, noise=0.1)
    kappa_more_ridge = effective_regularization(eigenvalues, n, ridge * factor + 1e-3)[0]
    if np.all(np.isfinite(curve.test_mse)):
        assert curve.kappa[1] <= curve.kappa[0] and kappa_more_ridge >= curve.kappa[0]
        learn = curve.learnabilities()
        assert np.all((learn >= 0) & (learn <= 1)) and np.all(curve.total_learnability <= curve.n + 1e-9)
        assert np.all(curve.overfitting_coefficient >= 1) and np.all(curve.train_mse <= curve.test_mse + 1e-12)
        assert np.all(curve.train_mse >= 0)


class _CircleKernel:
    """A translation-invariant kernel on N equispaced points of the circle, with an exact eigendecomposition.

    Under the uniform measure the eigenfunctions are 1, √2 cos(kx), √2 sin(kx) (k = 1..R), orthonormal on the grid;
    K(x, x') = c(x − x') with c = Σ_k s_k e^{ik(x−x')} (a discrete Fourier transform of the spectrum s).
    """

    def __init__(self, n_points, frequencies, rng):
        k = np.arange(1, frequencies + 1)
        lam = np.concatenate([[1.0], k**-2.0])  # λ_0, then λ_k shared by the cos and sin modes
        cos_coeffs = np.concatenate([[0.5], rng.normal(size=frequencies) / k])
        sin_coeffs = rng.normal(size=frequencies) / k
        spectrum = np.zeros(n_points)
        spectrum[: frequencies + 1], spectrum[n_points - frequencies :] = lam, lam[1:][::-1]
        self.profile = np.fft.fft(spectrum).real
        x = 2 * np.pi * np.arange(n_points) / n_points
        self.target = cos_coeffs[0] + np.sqrt(2) * (
            np.cos(np.outer(x, k)) @ cos_coeffs[1:] + np.sin(np.outer(x, k)) @ sin_coeffs
        )
        self.eigenvalues = np.concatenate([lam, lam[1:]])
        self.coeffs = np.concatenate([cos_coeffs, sin_coeffs])
        self.n_points = n_points

    def gram(self, rows, cols):
        return self.profile[(rows[:, None] - cols[None, :]) % self.n_points]

    def predict_everywhere(self, idx, alpha):
        """Σ_i α_i K(x, x_i) at every grid point x: a circular convolution, by FFT."""
        weights = np.bincount(idx, weights=alpha, minlength=self.n_points)
        return np.fft.ifft(np.fft.fft(self.profile) * np.fft.fft(weights)).real


@pytest.fixture(scope="module")
def circle_kernel():
    return _CircleKernel(n_points=4096, frequencies=1000, rng=np.random.default_rng(0))


def test_circle_kernel_eigendecomposition_is_exact():
    kernel = _CircleKernel(n_points=256, frequencies=50, rng=np.random.default_rng(0))
    everywhere, x = np.arange(256), 2 * np.pi * np.arange(256) / 256
    gram = kernel.gram(everywhere, everywhere)
    alpha = np.random.default_rng(1).normal(size=10)
    np.testing.assert_allclose(kernel.predict_everywhere(everywhere[:10], alpha), gram[:, :10] @ alpha, atol=1e-12)
    for k in (0, 3, 50):
        for mode, eigenvalue in (
            (np.sqrt(2) * np.cos(k * x), kernel.eigenvalues[k]),
            (np.sqrt(2) * np.sin(k * x), None),
        ):
            if k == 0:
                mode = np.ones(256)
            if eigenvalue is None and k == 0:
                continue
            np.testing.assert_allclose(gram @ mode / 256, kernel.eigenvalues[k] * mode, atol=1e-12)
    np.testing.assert_allclose(np.mean(kernel.target**2), np.sum(kernel.coeffs**2), rtol=1e-12)  # Parseval


@pytest.mark.parametrize("ridge", [0.0, 0.1, 1.0])
def test_prediction_matches_measured_kernel_ridge_test_mse_within_ten_percent(circle_kernel, ridge):
    kernel = circle_kernel
    noise, sizes, seeds = 0.05, [100, 300], 6
    predicted = predict_learning_curve(kernel.eigenvalues, kernel.coeffs, sizes, ridge=ridge, noise=noise)
    for j, n in enumerate(sizes):
        test, train = [], []
        for seed in range(seeds):
            draw = np.random.default_rng(100 + seed)
            # Without replacement (n ≪ N): duplicates of a finite domain would add a train-error floor.
            idx = draw.choice(kernel.n_points, n, replace=False)
            y = kernel.target[idx] + np.sqrt(noise) * draw.normal(size=n)
            alpha = np.linalg.solve(kernel.gram(idx, idx) + ridge * np.eye(n), y)
            fit = kernel.predict_everywhere(idx, alpha)
            test.append(np.mean((fit - kernel.target) ** 2) + noise)
            train.append(np.mean((fit[idx] - y) ** 2))
        assert np.mean(test) == pytest.approx(predicted.test_mse[j], rel=0.1)
        if ridge >= 0.1:  # small-ridge train MSE is tiny and matches the asymptotic formula less closely
            assert np.mean(train) == pytest.approx(predicted.train_mse[j], rel=0.15)


def test_to_frame_and_validation():
    curve = predict_learning_curve(POWER_LAW, POWER_LAW, [10, 20], ridge=0.1)
    assert isinstance(curve, LearningCurve)
    assert list(curve.to_frame().columns) == [
        "n",
        "kappa",
        "total_learnability",
        "overfitting_coefficient",
        "test_mse",
        "train_mse",
    ]
    with pytest.raises(ValueError, match="'eigenvalues' argument must be .*non-negative"):
        predict_learning_curve([-1.0, 2.0], [1.0, 1.0], 10)
    with pytest.raises(ValueError, match=r"'target_coeffs' argument must be .*\(2,\). Got shape \(3,\)"):
        predict_learning_curve([1.0, 2.0], [1.0, 1.0, 1.0], 10)
    with pytest.raises(ValueError, match="'n' argument must be a positive number"):
        predict_learning_curve([1.0], [1.0], [0, 1])
    with pytest.raises(ValueError, match="'ridge' parameter of predict_learning_curve"):
        predict_learning_curve([1.0], [1.0], 3, ridge=-1)
