"""Spectral learning-curve predictions for kernel ridge regression (Bordelon et al. 2020; Simon et al. 2023).

With kernel eigenvalues λ_i (w.r.t. the input distribution), target eigencoefficients v_i, ridge δ, n samples and
label noise variance ε², the eigenlearning framework ("The Eigenlearning Framework", Simon, Dickens, Karkada &
DeWeese 2023; Bordelon, Canatar & Pehlevan 2020) predicts:

    Σ_i λ_i/(λ_i + κ) + δ/κ = n           (κ: the effective regularisation)
    L_i = λ_i/(λ_i + κ)                   (learnability of mode i)
    E_0 = n/(n − Σ_i L_i²)                (overfitting coefficient)
    test MSE = E_0 (Σ_i (1 − L_i)² v_i² + ε²),   train MSE = (δ/(nκ))² · test MSE,   Σ_i L_i = n − δ/κ.

The formulas live once, as sympy expressions in ``LEARNING_CURVE_EXPRESSIONS`` (for symbolic fits and tests);
numeric evaluation lambdifies the sum-level expressions (E_0, test and train MSE) and sums the modes with numpy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd
import sympy

from theory._validation import check_in_range

__all__ = [
    "LEARNING_CURVE_EXPRESSIONS",
    "LEARNING_CURVE_SYMBOLS",
    "LearningCurve",
    "effective_regularization",
    "predict_learning_curve",
]

# --- The formulas, once, as sympy expressions -------------------------------------------------------------------

_i = sympy.Symbol("i", integer=True, nonnegative=True)
_M = sympy.Symbol("M", integer=True, positive=True)
_eigenvalue = sympy.IndexedBase("lambda", nonnegative=True)
_coeff = sympy.IndexedBase("v", real=True)
_kappa, _n = sympy.symbols("kappa n", positive=True)
_ridge, _noise = sympy.symbols("delta epsilon2", nonnegative=True)


def _sum(summand: sympy.Expr) -> sympy.Sum:
    return sympy.Sum(summand, (_i, 0, _M - 1))


_learnability = _eigenvalue[_i] / (_eigenvalue[_i] + _kappa)
_overfitting = _n / (_n - _sum(_learnability**2))
_test = _overfitting * (_sum((1 - _learnability) ** 2 * _coeff[_i] ** 2) + _noise)

LEARNING_CURVE_EXPRESSIONS: MappingProxyType[str, sympy.Expr] = MappingProxyType(
    {
        "kappa_equation": _sum(_learnability) + _ridge / _kappa - _n,  # = 0 defines κ
        "learnability": _learnability,
        "total_learnability": _sum(_learnability),
        "overfitting_coefficient": _overfitting,
        "test_mse": _test,
        "train_mse": (_ridge / (_n * _kappa)) ** 2 * _test,
    }
)
"""The eigenlearning formulas; their symbols are in ``LEARNING_CURVE_SYMBOLS``."""

LEARNING_CURVE_SYMBOLS: MappingProxyType[str, sympy.Basic] = MappingProxyType(
    {
        "eigenvalue": _eigenvalue,  # IndexedBase λ, used as lambda[i]
        "target_coeff": _coeff,  # IndexedBase v, used as v[i]
        "index": _i,
        "modes": _M,
        "kappa": _kappa,
        "n": _n,
        "ridge": _ridge,
        "noise": _noise,
    }
)
"""Name -> sympy object of every symbol in ``LEARNING_CURVE_EXPRESSIONS`` (i runs over 0..M−1)."""

# --- Numeric evaluation lambdified from the same expressions ----------------------------------------------------

_s1, _s2, _residual, _ridge_ratio = sympy.symbols("s1 s2 residual ridge_ratio")
_sums_to_symbols = {
    _sum(_learnability): _s1,
    _sum(_learnability**2): _s2,
    _sum((1 - _learnability) ** 2 * _coeff[_i] ** 2): _residual,
}


def _aggregate(name: str) -> Any:
    """Lambdify a sum-level expression of (n, Σ L, Σ L², Σ (1−L)²v², ε², δ/κ); δ/κ stays finite as κ → 0."""
    expr = LEARNING_CURVE_EXPRESSIONS[name].subs(_sums_to_symbols).subs(_ridge, _ridge_ratio * _kappa)
    return sympy.lambdify((_n, _s1, _s2, _residual, _noise, _ridge_ratio), sympy.simplify(expr), "numpy")


_aggregate_functions = {name: _aggregate(name) for name in ("overfitting_coefficient", "test_mse", "train_mse")}


@dataclass(frozen=True)
class LearningCurve:
    """A predicted learning curve at sample sizes ``n`` (Simon et al. 2023, Bordelon et al. 2020).

    Attributes:
        n: sample sizes, shape (k,).
        kappa: effective regularisation κ(n); 0 for ridgeless fits with n ≥ the number of non-zero eigenvalues.
        total_learnability: Σ_i L_i = n − δ/κ.
        overfitting_coefficient: E_0 = n/(n − Σ L_i²) (inf at the ridgeless interpolation threshold).
        test_mse, train_mse: predicted test MSE (including the test-label noise ε²) and train MSE.
        eigenvalues, target_coeffs, ridge, noise: the inputs.
    """

    n: np.ndarray
    kappa: np.ndarray
    total_learnability: np.ndarray
    overfitting_coefficient: np.ndarray
    test_mse: np.ndarray
    train_mse: np.ndarray
    eigenvalues: np.ndarray
    target_coeffs: np.ndarray
    ridge: float
    noise: float

    def learnabilities(self) -> np.ndarray:
        """L_i(n) = λ_i/(λ_i + κ(n)) as a (k, M) array (modes with λ_i = 0 have L_i = 0)."""
        return _learnabilities(self.eigenvalues, self.kappa)

    def to_frame(self) -> pd.DataFrame:
        """One row per n with κ, Σ L_i, E_0, test and train MSE."""
        columns = ("n", "kappa", "total_learnability", "overfitting_coefficient", "test_mse", "train_mse")
        return pd.DataFrame({c: getattr(self, c) for c in columns})


def _learnabilities(eigenvalues: np.ndarray, kappa: np.ndarray) -> np.ndarray:
    """L_i = λ_i/(λ_i + κ) for each κ (rows); modes with λ_i = 0 are unlearnable, L_i = 0, also at κ = 0."""
    with np.errstate(invalid="ignore"):
        return np.where(eigenvalues > 0, eigenvalues / (eigenvalues + kappa[:, None]), 0.0)


def _check_spectrum(eigenvalues: Any, target_coeffs: Any | None = None) -> tuple[np.ndarray, np.ndarray]:
    lam = np.asarray(eigenvalues, dtype=float)
    if lam.ndim != 1 or lam.size == 0 or not np.all(np.isfinite(lam)) or lam.min() < 0 or lam.max() <= 0:
        raise ValueError(
            "The 'eigenvalues' argument must be a non-empty 1-D array of finite non-negative values with at least "
            f"one positive. Got {lam if lam.size <= 6 else f'shape {lam.shape}'} instead."
        )
    coeffs = np.zeros_like(lam) if target_coeffs is None else np.asarray(target_coeffs, dtype=float)
    if coeffs.shape != lam.shape or not np.all(np.isfinite(coeffs)):
        raise ValueError(
            f"The 'target_coeffs' argument must be finite with the shape of 'eigenvalues' {lam.shape}. "
            f"Got shape {coeffs.shape} instead."
        )
    return lam, coeffs


def _check_sizes(n: Any) -> np.ndarray:
    sizes = np.atleast_1d(np.asarray(n, dtype=float))
    if sizes.ndim != 1 or sizes.size == 0 or not np.all(np.isfinite(sizes)) or sizes.min() <= 0:
        raise ValueError(f"The 'n' argument must be a positive number or a 1-D array of them. Got {n!r} instead.")
    return sizes


_GRID_SIZE = 1024  # log-κ grid giving each n a tight bracket and a starting point
_MAX_ITERATIONS = 100


def _chunks(k: int, modes: int) -> list[slice]:
    """Row chunks so that (chunk, modes) temporaries stay around 512 kB (cache-sized: faster than big chunks)."""
    width = max(1, 2**16 // modes)
    return [slice(s, min(s + width, k)) for s in range(0, k, width)]


def effective_regularization(eigenvalues: Any, n: Any, ridge: float = 0.0) -> np.ndarray:
    """κ solving Σ_i λ_i/(λ_i + κ) + δ/κ = n (Simon et al. 2023; Bordelon et al. 2020), vectorised over n.

    Bracketed root finding on u = log κ: the left side, explicit and decreasing in κ, is tabulated on a log grid
    to give each n a bracket and a start, then polished by safeguarded Newton steps (bisection when a step leaves
    the bracket; quadratic convergence, so the whole curve costs about three passes over the spectrum per n).
    Outer bounds where the left side is provably above and below n: κ_hi = 2(Σλ + δ)/n and
    κ_lo = max(δ/(2n), λ_min⁺(M⁺ − n)/(2n)) with M⁺ the number of positive eigenvalues. When δ = 0 and n ≥ M⁺ the
    equation has no positive root and κ = 0 (interpolation of every learnable mode).

    Everything is computed in log space (δ/κ = exp(log δ − u)), so tiny ridges such as δ = 2.2e-308, whose κ
    ≈ δ/(n − M⁺) is subnormal (flushed to 0 under ``torch.set_flush_denormal(True)``), still converge; κ itself
    then underflows to 0, which :func:`predict_learning_curve` treats as its limit (δ/κ = n − Σ L_i).

    Example:
        >>> round(float(effective_regularization([1.0, 1.0], 1.0)[0]), 12)  # 2/(1 + κ) = 1
        1.0
    """
    lam, _ = _check_spectrum(eigenvalues)
    sizes = _check_sizes(n)
    ridge = check_in_range("ridge", ridge, 0, None, owner="effective_regularization")
    positive = lam[lam > 0]
    n_positive, smallest = len(positive), positive.min()
    kappa = np.zeros_like(sizes)
    solvable = (sizes < n_positive) if ridge == 0 else np.ones(sizes.shape, dtype=bool)
    if not solvable.any():
        return kappa
    target = sizes[solvable]
    log_ridge = math.log(ridge) if ridge > 0 else -math.inf
    with np.errstate(divide="ignore"):  # log 0 = -inf: a bound that does not apply (δ = 0, or n ≥ M⁺)
        bound = np.maximum(log_ridge, math.log(smallest) + np.log(np.clip(n_positive - target, 0, None)))
    log_lower = bound - np.log(2 * target)
    log_upper = np.log(2 * (positive.sum() + ridge) / target)

    # The map u = log κ -> Σ λ/(λ+κ) + δ/κ is explicit and decreasing: tabulate it on a log grid for brackets and a
    # starting point, then polish with bracketed Newton steps (bisection whenever a step leaves the bracket).
    grid = np.linspace(log_lower.min(), log_upper.max(), _GRID_SIZE)
    on_grid = _moments(positive, grid, log_ridge)[0]
    cell = np.clip(np.searchsorted(-on_grid, -target) - 1, 0, _GRID_SIZE - 2)
    low = np.maximum(grid[cell], log_lower)
    high = np.minimum(grid[cell + 1], log_upper)
    start = np.interp(np.log(target), np.log(on_grid[::-1]), grid[::-1])
    kappa[solvable] = np.exp(_bracketed_newton(positive, log_ridge, target, low, high, np.clip(start, low, high)))
    return kappa


def _moments(positive: np.ndarray, u: np.ndarray, log_ridge: float) -> tuple[np.ndarray, np.ndarray]:
    """Σ λ/(λ+κ) + δ/κ and its derivative in u = log κ, −Σ L(1 − L) − δ/κ, for each u (in row chunks).

    δ/κ = exp(log δ − u) stays exact when κ = e^u underflows (then L = 1 on every positive mode, to precision).
    """
    value, slope = np.empty_like(u), np.empty_like(u)
    ridge_ratio = np.exp(log_ridge - u)
    kappa = np.exp(u)
    for rows in _chunks(len(u), len(positive)):
        learn = np.add(positive, kappa[rows, None])
        np.divide(positive, learn, out=learn)
        total = learn.sum(axis=1)
        value[rows] = total + ridge_ratio[rows]
        slope[rows] = np.einsum("ij,ij->i", learn, learn) - total - ridge_ratio[rows]  # −Σ L(1 − L) − δ/κ
    return value, slope


def _bracketed_newton(
    positive: np.ndarray, log_ridge: float, target: np.ndarray, low: np.ndarray, high: np.ndarray, start: np.ndarray
) -> np.ndarray:
    """Vectorised safeguarded Newton (Press et al., rtsafe) on u = log κ for Σ λ/(λ+e^u) + δe^{−u} = n."""
    u, low, high = start.copy(), low.copy(), high.copy()
    active = np.arange(len(u))
    for _ in range(_MAX_ITERATIONS):
        value, slope = _moments(positive, u[active], log_ridge)
        excess = value - target[active]
        low[active] = np.where(excess > 0, u[active], low[active])
        high[active] = np.where(excess < 0, u[active], high[active])
        with np.errstate(divide="ignore", invalid="ignore"):  # a flat slope gives ±inf: bisection below
            step = np.where(excess == 0, 0.0, -excess / slope)
        converged = (np.abs(step) < 1e-9) | (excess == 0)  # quadratic convergence: the error is now ~ step²
        new = np.clip(u[active] + step, low[active], high[active])
        bisect = ~converged & ((new <= low[active]) | (new >= high[active]))
        u[active] = np.where(bisect, (low[active] + high[active]) / 2, new)
        active = active[~converged]
        if active.size == 0:
            return u
    raise RuntimeError(f"effective_regularization did not converge for {active.size} sample sizes.")


def predict_learning_curve(
    eigenvalues: Any, target_coeffs: Any, n: Any, ridge: float = 0.0, noise: float = 0.0
) -> LearningCurve:
    """Predicted test and train MSE of kernel ridge regression at sample sizes n (Simon et al. 2023).

    Evaluates ``LEARNING_CURVE_EXPRESSIONS`` (module docstring) with κ from ``effective_regularization``.

    Args:
        eigenvalues: λ_i ≥ 0 of the kernel's integral operator under the input distribution, shape (M,).
        target_coeffs: v_i, the target's coefficients in the orthonormal eigenbasis, shape (M,).
        n: a sample size or a 1-D array of them (any positive reals).
        ridge: δ ≥ 0, with the fit f̂ = k(x, X)(K + δI)⁻¹y on the unnormalised Gram matrix K.
        noise: ε² ≥ 0, the variance of the label noise.

    Returns:
        A ``LearningCurve``. At the ridgeless interpolation threshold (δ = 0, n = M⁺) E_0 and the test MSE are inf.

    Example:
        >>> k = np.arange(1, 101)
        >>> curve = predict_learning_curve(1.0 / k**2, 1.0 / k, [10, 99, 100, 1000], noise=0.1)
        >>> curve.test_mse.round(3).tolist()  # the ridgeless peak at n = M = 100
        [0.404, 10.08, inf, 0.111]
    """
    lam, coeffs = _check_spectrum(eigenvalues, target_coeffs)
    sizes = _check_sizes(n)
    ridge = check_in_range("ridge", ridge, 0, None, owner="predict_learning_curve")
    noise = check_in_range("noise", noise, 0, None, owner="predict_learning_curve")
    kappa = effective_regularization(lam, sizes, ridge)
    positive = lam > 0
    s1, s2, residual = (np.empty_like(sizes) for _ in range(3))
    for rows in _chunks(len(sizes), int(positive.sum())):
        learn = np.add(lam[positive], kappa[rows, None])
        np.divide(lam[positive], learn, out=learn)  # κ = 0 gives L = 1 on the positive modes
        s1[rows] = learn.sum(axis=1)
        s2[rows] = np.einsum("ij,ij->i", learn, learn)
        np.subtract(1.0, learn, out=learn)
        residual[rows] = np.einsum("ij,ij->i", learn, learn * coeffs[positive] ** 2) + np.sum(coeffs[~positive] ** 2)
    # δ/κ directly when κ > 0 (no cancellation); n − Σ L_i, its value by the κ equation, in the ridgeless κ = 0 case.
    with np.errstate(divide="ignore", invalid="ignore"):
        ridge_ratio = np.where(kappa > 0, ridge / kappa, np.clip(sizes - s1, 0.0, None))
        args = (sizes, s1, s2, residual, noise, ridge_ratio)
        values = {
            name: np.broadcast_to(f(*args), sizes.shape).astype(float) for name, f in _aggregate_functions.items()
        }
    at_threshold = sizes <= s2 * (1 + 1e-12)  # n − Σ L_i² ≤ 0 only at the ridgeless threshold n = M⁺
    for name in ("overfitting_coefficient", "test_mse"):
        values[name] = np.where(at_threshold, np.inf, values[name])
    values["train_mse"] = np.where(at_threshold, 0.0, values["train_mse"])  # its limit from both sides
    return LearningCurve(
        n=sizes,
        kappa=kappa,
        total_learnability=s1,
        overfitting_coefficient=values["overfitting_coefficient"],
        test_mse=values["test_mse"],
        train_mse=values["train_mse"],
        eigenvalues=lam,
        target_coeffs=coeffs,
        ridge=ridge,
        noise=noise,
    )
