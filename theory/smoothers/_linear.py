"""Least squares, ridge, random Fourier features and kernel ridge as smoothers (Curth et al. 2023, §2)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.linalg

from theory._validation import check_in_range, check_positive_int
from theory.smoothers._base import Smoother
from theory.smoothers._effective import as_float_array

__all__ = ["LeastSquaresSmoother", "RandomFourierFeaturesSmoother", "KernelRidgeSmoother"]


def _inverse(values: np.ndarray, ridge: float, rcond: float | None, size: int, power: int = 1) -> np.ndarray:
    """1/(values^power + ridge) on kept directions, 0 on the (numerical) null space: a pseudo-inverse when ridge=0."""
    if ridge > 0:
        keep = values > 0
    else:
        keep = values > (np.finfo(float).eps * size if rcond is None else rcond) * values.max(initial=0.0)
    return np.where(keep, 1.0 / np.where(keep, values**power + ridge, 1.0), 0.0)


class LeastSquaresSmoother(Smoother):
    """Min-norm least squares / ridge on features φ: ŝ(x)ᵀ = φ(x)ᵀ(ΦᵀΦ + λI)⁺Φᵀ (Curth et al. 2023, §2).

    With ``ridge=0`` this is φ(x)ᵀΦ⁺, the ordinary least squares fit when p < n and the min-norm interpolator
    when p ≥ n. From the thin SVD Φ = U D Vᵀ: ŝ(x)ᵀ = φ(x)ᵀ V diag(d/(d²+λ)) Uᵀ, so ‖ŝ(x)‖² = ‖φ(x)ᵀ V d/(d²+λ)‖²
    (no n×n matrix), p_train = Σ (d²/(d²+λ))² and tr(S) = Σ d²/(d²+λ) (= rank for least squares). Memory
    O(n·min(n, p) + p·min(n, p)).

    Args:
        ridge: λ ≥ 0 added to ΦᵀΦ (scikit-learn's ``Ridge(alpha=λ)``).
        features: feature map φ applied to raw inputs, (m, d) -> (m, p); identity when None.
        fit_intercept: centre the features at their training mean and add the mean smoother 11ᵀ/n (an unpenalised
            intercept, as scikit-learn's ``fit_intercept=True``); it adds exactly 1 to p_train and tr(S).
        rcond: relative cutoff on singular values for the pseudo-inverse when ``ridge=0``
            (default max(n, p)·machine epsilon, as ``scipy.linalg.pinv``).
    """

    def __init__(
        self,
        ridge: float = 0.0,
        features: Callable[[np.ndarray], Any] | None = None,
        fit_intercept: bool = False,
        rcond: float | None = None,
    ) -> None:
        self.ridge = check_in_range("ridge", ridge, 0, None, owner=type(self).__name__)
        self.features = features
        self.fit_intercept = bool(fit_intercept)
        self.rcond = None if rcond is None else check_in_range("rcond", rcond, 0, 1, owner=type(self).__name__)

    def _raw_features(self, X: np.ndarray) -> np.ndarray:
        return X if self.features is None else as_float_array("features(X)", self.features(X), ndim=(2,))

    def _features(self, X: np.ndarray) -> np.ndarray:
        """φ(x), centred at the training mean when fitting an intercept."""
        return self._raw_features(X) - self.mean_

    def _fit(self, X: np.ndarray) -> None:
        phi = self._raw_features(X)
        self.mean_ = phi.mean(axis=0) if self.fit_intercept else np.zeros(phi.shape[1])
        self.U_, d, vt = scipy.linalg.svd(phi - self.mean_, full_matrices=False, lapack_driver="gesdd")
        inverse = _inverse(d, self.ridge, self.rcond, max(phi.shape), power=2)
        self.coef_ = vt.T * (d * inverse)  # V diag(d/(d²+λ)), shape (p, r)
        self.train_shrinkage_ = d**2 * inverse

    def _offset(self) -> float:
        return 1.0 / self.n_train_ if self.fit_intercept else 0.0

    def _weights(self, X: np.ndarray) -> np.ndarray:
        return (self._features(X) @ self.coef_) @ self.U_.T + self._offset()

    def _apply(self, X: np.ndarray, y: np.ndarray) -> np.ndarray:
        return (self._features(X) @ self.coef_) @ (self.U_.T @ y) + self._offset() * y.sum(axis=0)

    def squared_norms(self, X: Any = None) -> np.ndarray:
        if X is None:
            self._check_fitted()
            return self.U_**2 @ self.train_shrinkage_**2 + self._offset()
        X = self._inputs(X)
        norms = [np.sum((self._features(block) @ self.coef_) ** 2, axis=1) for block in self._blocks(X)]
        return np.concatenate(norms) + self._offset()  # the intercept's 1/n row is orthogonal to the rest

    def diagonal(self) -> np.ndarray:
        self._check_fitted()
        return self.U_**2 @ self.train_shrinkage_ + self._offset()


class RandomFourierFeaturesSmoother(LeastSquaresSmoother):
    """Random Fourier features regression (Rahimi & Recht 2007) as a smoother (Curth et al. 2023, §2).

    φ(x) = [cos(Vx), sin(Vx)] / √N with N frequencies V ~ N(0, σ²I), so φ(x)ᵀφ(x') ≈ exp(−σ²‖x − x'‖²/2), then
    min-norm least squares (``ridge=0``) or ridge on the 2N features. Curth et al. use σ = 0.2 on MNIST.

    Args:
        n_frequencies: N, giving p = 2N features.
        bandwidth: σ, the standard deviation of the frequencies.
        ridge: λ ≥ 0 (see ``LeastSquaresSmoother``).
        random_state: seed or ``numpy.random.Generator`` for the frequencies.
    """

    def __init__(
        self,
        n_frequencies: int,
        bandwidth: float = 0.2,
        ridge: float = 0.0,
        random_state: int | np.random.Generator | None = None,
    ) -> None:
        super().__init__(ridge=ridge, features=self._fourier_features)
        self.n_frequencies = check_positive_int("n_frequencies", n_frequencies, owner=type(self).__name__)
        self.bandwidth = check_in_range("bandwidth", bandwidth, 0, None, inclusive=(False, True))
        self.random_state = random_state

    def _fourier_features(self, X: np.ndarray) -> np.ndarray:
        projection = X @ self.frequencies_.T
        return np.hstack([np.cos(projection), np.sin(projection)]) / np.sqrt(self.n_frequencies)

    def _fit(self, X: np.ndarray) -> None:
        rng = np.random.default_rng(self.random_state)
        self.frequencies_ = rng.normal(scale=self.bandwidth, size=(self.n_frequencies, X.shape[1]))
        super()._fit(X)


class KernelRidgeSmoother(Smoother):
    """Kernel ridge regression as a smoother: ŝ(x)ᵀ = k(x, X)(K + δI)⁺ (Curth et al. 2023, §2).

    From K = Q Λ Qᵀ: ‖ŝ(x)‖² = ‖k(x, X) Q diag(1/(Λ+δ))‖², p_train = Σ (Λ/(Λ+δ))², tr(S) = Σ Λ/(Λ+δ). The n×n
    Gram matrix is the model itself here; nothing larger is built (memory about 2n² floats). ``ridge=0`` is the
    min-norm kernel interpolator (pseudo-inverse).

    Args:
        kernel: any callable k(X1, X2) -> (n1, n2) array or tensor, e.g.
            ``lambda a, b: theory.empirical_ntk(model, a, b, ...)`` with the outputs traced; inputs are passed
            through unchanged (torch tensors stay tensors), in blocks of ``block_size`` rows for new inputs.
        ridge: δ ≥ 0 added to the kernel's diagonal (scikit-learn's ``KernelRidge(alpha=δ)``).
        rcond: relative eigenvalue cutoff for the pseudo-inverse when ``ridge=0`` (default n·machine epsilon).
    """

    def __init__(self, kernel: Callable[[Any, Any], Any], ridge: float = 0.0, rcond: float | None = None) -> None:
        if not callable(kernel):
            raise TypeError(f"The 'kernel' argument must be a callable k(X1, X2). Got {type(kernel).__name__}.")
        self.kernel = kernel
        self.ridge = check_in_range("ridge", ridge, 0, None, owner=type(self).__name__)
        self.rcond = None if rcond is None else check_in_range("rcond", rcond, 0, 1, owner=type(self).__name__)

    def _prepare(self, name: str, X: Any) -> Any:
        if not hasattr(X, "__len__") or not hasattr(X, "__getitem__"):
            raise TypeError(f"The {name!r} argument must be a sequence of inputs. Got {type(X).__name__} instead.")
        return X

    def _gram(self, X1: Any, X2: Any) -> np.ndarray:
        gram = as_float_array("kernel(X1, X2)", self.kernel(X1, X2), ndim=(2,))
        if gram.shape != (len(X1), len(X2)):
            raise ValueError(
                f"The 'kernel' must return an array of shape ({len(X1)}, {len(X2)}) (outputs traced). "
                f"Got {gram.shape} instead."
            )
        return gram

    def _fit(self, X: Any) -> None:
        gram = self._gram(X, X)
        eigenvalues, self.Q_ = scipy.linalg.eigh((gram + gram.T) / 2, overwrite_a=True)
        eigenvalues = np.clip(eigenvalues, 0.0, None)
        self.inverse_ = _inverse(eigenvalues, self.ridge, self.rcond, len(eigenvalues))
        self.train_shrinkage_ = eigenvalues * self.inverse_

    def _weights(self, X: Any) -> np.ndarray:
        return ((self._gram(X, self.X_train_) @ self.Q_) * self.inverse_) @ self.Q_.T

    def _apply(self, X: Any, y: np.ndarray) -> np.ndarray:
        coefficients = self.Q_ @ ((self.Q_.T @ y) * (self.inverse_ if y.ndim == 1 else self.inverse_[:, None]))
        return self._gram(X, self.X_train_) @ coefficients

    def squared_norms(self, X: Any = None) -> np.ndarray:
        if X is None:
            self._check_fitted()
            return self.Q_**2 @ self.train_shrinkage_**2
        X = self._inputs(X)
        return np.concatenate(
            [np.sum(((self._gram(b, self.X_train_) @ self.Q_) * self.inverse_) ** 2, axis=1) for b in self._blocks(X)]
        )

    def diagonal(self) -> np.ndarray:
        self._check_fitted()
        return self.Q_**2 @ self.train_shrinkage_
