"""Fitted scikit-learn trees, forests and gradient boosting as smoothers (Curth et al. 2023, §2 and App. B)."""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse
from sklearn.dummy import DummyRegressor
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    GradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.tree import BaseDecisionTree, DecisionTreeRegressor
from sklearn.utils.validation import check_is_fitted

from theory.smoothers._base import Smoother

__all__ = ["TreeSmoother", "GradientBoostingSmoother", "FORESTS"]

FORESTS = (RandomForestRegressor, RandomForestClassifier, ExtraTreesRegressor, ExtraTreesClassifier)

_MEAN_CRITERIA = {"squared_error", "friedman_mse", "poisson"}  # criteria whose leaf value is the (weighted) mean


def _check_fitted_estimator(estimator: Any, kinds: tuple[type, ...], owner: str) -> None:
    if not isinstance(estimator, kinds):
        names = ", ".join(k.__name__ for k in kinds)
        raise TypeError(f"The 'estimator' of {owner} must be a fitted {names}. Got {type(estimator).__name__}.")
    check_is_fitted(estimator)


class TreeSmoother(Smoother):
    """A fitted decision tree or random forest as a smoother (Curth et al. 2023, §2).

    Tree: ŝ(x)_i = c_i 1{leaf(x_i) = leaf(x)} / Σ_k c_k 1{leaf(x_k) = leaf(x)}, with c_i the number of times x_i
    is in the tree's bootstrap sample (1 without bootstrap), so ŝ(x)ᵀy is the leaf's (weighted) mean, exactly what
    ``predict`` returns. Forest: the mean over trees. Bootstrap is handled exactly through the forest's
    ``estimators_samples_``. Classifiers: ŝ(x)ᵀY with one-hot Y is ``predict_proba``. Squared norms use the
    sparse leaf co-membership (single trees: Σc²/(Σc)² per leaf), tr(S) the leaf counts; no n×n matrix.

    Args:
        estimator: a fitted ``DecisionTreeRegressor``/``Classifier`` or ``RandomForest``/``ExtraTrees``
            ``Regressor``/``Classifier``, fitted without ``sample_weight`` or ``class_weight`` on the inputs later
            given to ``fit``.
    """

    def __init__(self, estimator: Any) -> None:
        _check_fitted_estimator(estimator, (BaseDecisionTree, *FORESTS), type(self).__name__)
        trees = estimator.estimators_ if isinstance(estimator, FORESTS) else [estimator]
        criterion = getattr(trees[0], "criterion", "squared_error")
        if isinstance(trees[0], DecisionTreeRegressor) and criterion not in _MEAN_CRITERIA:
            raise ValueError(
                f"The 'estimator' of {type(self).__name__} must use a mean-valued criterion "
                f"({', '.join(sorted(_MEAN_CRITERIA))}). Got criterion={criterion!r} instead."
            )
        self.estimator = estimator
        self.trees = list(trees)

    def _fit(self, X: np.ndarray) -> None:
        n = len(X)
        if X.shape[1] != self.estimator.n_features_in_ or getattr(self.estimator, "_n_samples", n) != n:
            raise ValueError(
                f"The 'X' argument must be the estimator's training inputs. Got shape {X.shape} instead "
                f"(the estimator has {self.estimator.n_features_in_} features)."
            )
        if isinstance(self.estimator, FORESTS) and self.estimator.bootstrap:
            counts = [np.bincount(s, minlength=n).astype(float) for s in self.estimator.estimators_samples_]
        else:
            counts = [np.ones(n)] * len(self.trees)
        self.offsets_ = np.cumsum([0] + [t.tree_.node_count for t in self.trees])
        leaves = self._leaves(X)
        self.counts_ = np.stack(counts, axis=1)  # (n, T)
        n_nodes = self.offsets_[-1]
        self.leaf_weight_ = np.bincount(leaves.ravel(), weights=self.counts_.ravel(), minlength=n_nodes)
        self.leaf_square_ = np.bincount(leaves.ravel(), weights=self.counts_.ravel() ** 2, minlength=n_nodes)
        self.train_leaves_ = leaves
        self.indicator_ = scipy.sparse.csr_matrix(
            (self.counts_.ravel(), (leaves.ravel(), np.repeat(np.arange(n), leaves.shape[1]))), shape=(n_nodes, n)
        )

    def _leaves(self, X: np.ndarray) -> np.ndarray:
        """(m, T) global node ids (tree offset added) of the leaves the inputs fall in."""
        return np.stack([t.apply(X) for t in self.trees], axis=1) + self.offsets_[:-1]

    def _sparse_weights(self, X: np.ndarray) -> scipy.sparse.csr_matrix:
        leaves = self._leaves(X)
        m, n_trees = leaves.shape
        rows = np.repeat(np.arange(m), n_trees)
        scale = 1.0 / (n_trees * self.leaf_weight_[leaves.ravel()])
        averaging = scipy.sparse.csr_matrix((scale, (rows, leaves.ravel())), shape=(m, self.offsets_[-1]))
        return averaging @ self.indicator_  # Σ_t A_t B_t over the trees' disjoint node ranges

    def _weights(self, X: np.ndarray) -> np.ndarray:
        return self._sparse_weights(X).toarray()

    def _apply(self, X: np.ndarray, y: np.ndarray) -> np.ndarray:
        return self._sparse_weights(X) @ y

    def squared_norms(self, X: Any = None) -> np.ndarray:
        X = self._inputs(X)
        if len(self.trees) == 1:
            leaves = self._leaves(X)[:, 0]
            return self.leaf_square_[leaves] / self.leaf_weight_[leaves] ** 2
        norms = []
        for block in self._blocks(X):
            w = self._sparse_weights(block)
            norms.append(np.asarray(w.multiply(w).sum(axis=1)).ravel())
        return np.concatenate(norms)

    def diagonal(self) -> np.ndarray:
        self._check_fitted()
        return np.mean(self.counts_ / self.leaf_weight_[self.train_leaves_], axis=1)


class GradientBoostingSmoother(Smoother):
    """A fitted ``GradientBoostingRegressor`` (squared error) as a smoother (Curth et al. 2023, App. B).

    The initial estimator is itself a smoother: the mean, Ŝ_0 = 11ᵀ/n (a one-leaf tree with rate 1), or 0 for
    ``init="zero"``. Each round fits a tree to the residuals (I − Ŝ_{t−1})y, so with K_t = P_t D_t⁻¹ P_tᵀ the
    leaf-averaging matrix of round t (P_t the n × L_t leaf indicator, D_t the leaf sizes) and rate η,
    Ŝ_t = Ŝ_{t−1} + η K_t (I − Ŝ_{t−1}) and ŝ_t(x)ᵀ = ŝ_{t−1}(x)ᵀ + η k_t(x)ᵀ(I − Ŝ_{t−1}).
    Each update has rank L_t, so ŝ_T(x)ᵀ = a(x)ᵀ Bᵀ with a(x) = [η p_t(x)ᵀ D_t⁻¹]_t (sparse, one leaf per round) and
    B = [C_t]_t, C_t = (I − Ŝ_{t−1})ᵀ P_t = P_t − B_{<t} (A_{<t}ᵀ P_t): exact, memory n·r and time O(n·r²) for
    r = 1 + Σ_t L_t (at most a few thousand); the n×n matrix Ŝ is never formed, and
    ‖ŝ(x)‖² = a(x)ᵀ (BᵀB) a(x), S_ii = a(x_i)ᵀ B_i.

    Args:
        estimator: a fitted ``GradientBoostingRegressor`` with ``loss="squared_error"``, ``subsample=1.0`` (the
            in-bag masks of stochastic boosting are not stored by scikit-learn), ``init=None`` or ``"zero"``, fitted
            without ``sample_weight`` on the inputs later given to ``fit``.
    """

    def __init__(self, estimator: Any) -> None:
        _check_fitted_estimator(estimator, (GradientBoostingRegressor,), type(self).__name__)
        owner = type(self).__name__
        if estimator.loss != "squared_error" or estimator.subsample != 1.0:
            raise ValueError(
                f"The 'estimator' of {owner} must have loss='squared_error' and subsample=1.0. "
                f"Got loss={estimator.loss!r}, subsample={estimator.subsample!r} instead."
            )
        init = estimator.init_
        if not (init == "zero" or (isinstance(init, DummyRegressor) and init.strategy == "mean")):
            raise ValueError(f"The 'estimator' of {owner} must have init=None (the mean) or 'zero'. Got {init!r}.")
        self.estimator = estimator

    def _leaf_columns(self, X: np.ndarray) -> np.ndarray:
        """(m, T') global columns of r: the leaf of each input in each round (the mean's single leaf first)."""
        leaves = self.estimator.apply(X).reshape(len(X), -1).astype(np.intp)
        columns = np.stack([np.searchsorted(self.leaf_ids_[t], leaves[:, t]) for t in range(leaves.shape[1])], 1)
        columns += self.offsets_[self.has_mean_ : -1]
        if self.has_mean_:
            columns = np.hstack([np.zeros((len(X), 1), dtype=np.intp), columns])
        return columns

    def _coefficients(self, X: np.ndarray) -> scipy.sparse.csr_matrix:
        """The sparse (m, r) rows a(x)ᵀ = [η_t p_t(x)ᵀ D_t⁻¹]_t."""
        columns = self._leaf_columns(X)
        m, rounds = columns.shape
        values = (self.rates_[None, :] / self.leaf_sizes_[columns]).ravel()
        rows = np.repeat(np.arange(m), rounds)
        return scipy.sparse.csr_matrix((values, (rows, columns.ravel())), shape=(m, self.offsets_[-1]))

    def _fit(self, X: np.ndarray) -> None:
        if X.shape[1] != self.estimator.n_features_in_:
            raise ValueError(
                f"The 'X' argument must be the estimator's training inputs ({self.estimator.n_features_in_} features)."
                f" Got shape {X.shape} instead."
            )
        n = len(X)
        leaves = self.estimator.apply(X).reshape(n, -1).astype(np.intp)
        self.has_mean_ = int(self.estimator.init_ != "zero")
        self.leaf_ids_ = [np.unique(leaves[:, t]) for t in range(leaves.shape[1])]
        sizes = [np.array([float(n)])] * self.has_mean_  # the mean: one leaf holding all n points
        sizes += [np.bincount(np.searchsorted(ids, leaves[:, t])).astype(float) for t, ids in enumerate(self.leaf_ids_)]
        self.offsets_ = np.cumsum([0] + [len(c) for c in sizes])
        self.leaf_sizes_ = np.concatenate(sizes)
        rate = self.estimator.learning_rate
        self.rates_ = np.array([1.0] * self.has_mean_ + [rate] * leaves.shape[1])
        columns = self._leaf_columns(X)  # (n, rounds)
        indicator = scipy.sparse.csc_matrix(
            (np.ones(columns.size), (np.repeat(np.arange(n), columns.shape[1]), columns.ravel())),
            shape=(n, self.offsets_[-1]),
        )  # [P_t]_t
        coefficients = self._coefficients(X).tocsc()  # A = [η_t P_t D_t⁻¹]_t
        basis = np.zeros((n, self.offsets_[-1]))  # B = [C_t]_t
        for t in range(len(self.rates_)):
            block = slice(self.offsets_[t], self.offsets_[t + 1])
            earlier = slice(0, self.offsets_[t])
            overlap = (coefficients[:, earlier].T @ indicator[:, block]).toarray()  # A_{<t}ᵀ P_t
            basis[:, block] = indicator[:, block].toarray() - basis[:, earlier] @ overlap
        self.basis_ = basis
        self.gram_ = basis.T @ basis

    def _weights(self, X: np.ndarray) -> np.ndarray:
        return (self.basis_ @ self._coefficients(X).T.toarray()).T

    def _apply(self, X: np.ndarray, y: np.ndarray) -> np.ndarray:
        return self._coefficients(X) @ (self.basis_.T @ y)

    def squared_norms(self, X: Any = None) -> np.ndarray:
        a = self._coefficients(self._inputs(X))
        return np.asarray(a.multiply(a @ self.gram_).sum(axis=1)).ravel()

    def diagonal(self) -> np.ndarray:
        self._check_fitted()
        a = self._coefficients(self.X_train_)
        return np.asarray(a.multiply(self.basis_).sum(axis=1)).ravel()
