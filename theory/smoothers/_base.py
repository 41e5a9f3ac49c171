"""The smoother interface: weights ŝ(x)ᵀ in blocks, their squared norms and the training diagonal."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import Any, Self

import numpy as np

from theory.smoothers._effective import as_float_array

__all__ = ["Smoother", "NotFittedError"]


class NotFittedError(ValueError):
    """A smoother was used before ``fit``."""


class Smoother(ABC):
    """A predictor linear in the training labels, f̂(x) = ŝ(x)ᵀy (Curth, Jeffares & van der Schaar 2023).

    Subclasses implement ``_fit`` (state from the training inputs, ending in ``_``) and ``_weights`` (the rows
    ŝ(x)ᵀ for a block of inputs). ``squared_norms`` and ``diagonal`` have block-wise defaults that subclasses
    replace with closed forms; nothing here builds more than ``block_size`` rows of weights at once.
    """

    block_size: int = 1024

    def fit(self, X: Any) -> Self:
        """Build the smoother from the training inputs ``X`` (n rows); the labels are never needed."""
        X = self._prepare("X", X)
        if len(X) == 0:
            raise ValueError(f"The 'X' argument of {type(self).__name__}.fit must have at least one row. Got 0.")
        self.X_train_ = X
        self.n_train_ = len(X)
        self._fit(X)
        return self

    def weights(self, X: Any = None) -> np.ndarray:
        """The smoother rows ŝ(x_j)ᵀ as an (m, n) array; ``X=None`` means the training inputs (S itself)."""
        X = self._inputs(X)
        return np.concatenate([self._weights(block) for block in self._blocks(X)], axis=0)

    def predict(self, X: Any, y: Any) -> np.ndarray:
        """Predictions f̂(x) = ŝ(x)ᵀy for labels ``y`` of shape (n,) or (n, O), in blocks."""
        X = self._inputs(X)
        y = as_float_array("y", y, ndim=(1, 2))
        if len(y) != self.n_train_:
            raise ValueError(f"The 'y' argument must have n_train = {self.n_train_} rows. Got {len(y)} instead.")
        return np.concatenate([self._apply(block, y) for block in self._blocks(X)], axis=0)

    def squared_norms(self, X: Any = None) -> np.ndarray:
        """‖ŝ(x_j)‖² for each row of ``X`` (training inputs when ``None``)."""
        X = self._inputs(X)
        return np.concatenate([np.einsum("ji,ji->j", w, w) for w in map(self._weights, self._blocks(X))])

    def diagonal(self) -> np.ndarray:
        """The diagonal S_ii = ŝ_i(x_i) of the training smoother; its sum is tr(S)."""
        self._check_fitted()
        out = []
        for start, block in zip(range(0, self.n_train_, self.block_size), self._blocks(self.X_train_), strict=True):
            w = self._weights(block)
            out.append(w[np.arange(len(w)), start + np.arange(len(w))])
        return np.concatenate(out)

    def effective_parameters(self, X: Any = None) -> float:
        """p̂(I) = (n/|I|) Σ_{j∈I} ‖ŝ(x_j)‖² on the rows of ``X`` (training inputs when ``None``)."""
        norms = self.squared_norms(X)
        if len(norms) == 0:
            raise ValueError("The 'X' argument must have at least one row. Got 0.")
        return float(self.n_train_ * norms.mean())

    def _apply(self, X: Any, y: np.ndarray) -> np.ndarray:
        """ŝ(x)ᵀy for a block of inputs; subclasses with a factored smoother avoid forming the (m, n) block."""
        return self._weights(X) @ y

    def _prepare(self, name: str, X: Any) -> Any:
        """Convert inputs to a float64 (m, d) array; kernel smoothers override this to pass inputs through."""
        return as_float_array(name, X, ndim=(2,))

    def _inputs(self, X: Any) -> Any:
        self._check_fitted()
        if X is None:
            return self.X_train_
        X = self._prepare("X", X)
        if hasattr(self.X_train_, "shape") and X.shape[1:] != self.X_train_.shape[1:]:
            raise ValueError(
                f"The 'X' argument must have rows of shape {tuple(self.X_train_.shape[1:])} like the training "
                f"inputs. Got {tuple(X.shape[1:])} instead."
            )
        return X

    def _blocks(self, X: Any) -> Iterator[Any]:
        for start in range(0, len(X), self.block_size):
            yield X[start : start + self.block_size]

    def _check_fitted(self) -> None:
        if not hasattr(self, "n_train_"):
            raise NotFittedError(f"This {type(self).__name__} is not fitted yet: call fit(X_train) first.")

    @abstractmethod
    def _fit(self, X: Any) -> None:
        """Set the fitted state from the training inputs."""

    @abstractmethod
    def _weights(self, X: Any) -> np.ndarray:
        """The (m, n) rows ŝ(x)ᵀ for a block of at most ``block_size`` inputs."""
