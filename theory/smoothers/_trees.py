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

    The initial estimator is itself a smoother: the mean, Ŝ_0 = 11ᵀ/n (or 0 for ``init="zero"``). Each round fits a
    tree to the residuals (I − Ŝ_{t−1})y, so with K_t the leaf-averaging matrix of round t and rate η,
    Ŝ_t = Ŝ_{t−1} + η K_t (I − Ŝ_{t−1}) and ŝ_t(x)ᵀ = ŝ_{t−1}(x)ᵀ + η k_t(x)ᵀ(I − Ŝ_{t−1}).
    The columns of R_t = I − Ŝ_t evolve independently (R_t = (I − ηK_t)R_{t−1}), so they are propagated in blocks
    of b columns through all rounds: time O(T·n·(n + m)), memory O((n + m)·b) with b = ``column_block`` (by
    default about 32 MB worth of columns); the n×n matrix Ŝ is never held.

    Args:
        estimator: a fitted ``GradientBoostingRegressor`` with ``loss="squared_error"``, ``subsample=1.0`` (the
            in-bag masks of stochastic boosting are not stored by scikit-learn), ``init=None`` or ``"zero"``, fitted
            without ``sample_weight`` on the inputs later given to ``fit``.
        column_block: number of columns of R propagated at once; None picks about 32 MB worth.
    """

    def __init__(self, estimator: Any, column_block: int | None = None) -> None:
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
        if column_block is not None and (isinstance(column_block, bool) or int(column_block) < 1):
            raise ValueError(f"The 'column_block' parameter of {owner} must be a positive int. Got {column_block!r}.")
        self.estimator = estimator
        self.column_block = column_block

    def _fit(self, X: np.ndarray) -> None:
        if X.shape[1] != self.estimator.n_features_in_:
            raise ValueError(
                f"The 'X' argument must be the estimator's training inputs ({self.estimator.n_features_in_} features)."
                f" Got shape {X.shape} instead."
            )
        trees = self.estimator.estimators_[:, 0]
        self.train_leaves_ = self.estimator.apply(X).reshape(len(X), -1).astype(np.intp)
        self.leaf_counts_ = [
            np.bincount(self.train_leaves_[:, t], minlength=tree.tree_.node_count) for t, tree in enumerate(trees)
        ]
        self.members_ = [
            scipy.sparse.csr_matrix(
                (np.ones(len(X)), (self.train_leaves_[:, t], np.arange(len(X)))), shape=(tree.tree_.node_count, len(X))
            )
            for t, tree in enumerate(trees)
        ]
        self.init_weight_ = 1.0 / len(X) if self.estimator.init_ != "zero" else 0.0

    def _columns(self) -> list[slice]:
        width = self.column_block or max(1, 2**22 // self.n_train_)
        return [slice(s, min(s + width, self.n_train_)) for s in range(0, self.n_train_, width)]

    def _block(self, columns: slice, test_leaves: np.ndarray | None) -> np.ndarray:
        """Columns ``columns`` of ŝ_T(x)ᵀ for inputs with leaves ``test_leaves`` (of Ŝ_T = I − R_T when None)."""
        n, eta = self.n_train_, self.estimator.learning_rate
        width = columns.stop - columns.start
        identity = (np.arange(columns.start, columns.stop), np.arange(width))
        residual = np.full((n, width), -self.init_weight_)  # columns of R_0 = I − Ŝ_0
        residual[identity] += 1.0
        test = None if test_leaves is None else np.full((len(test_leaves), width), self.init_weight_)
        for t, members in enumerate(self.members_):
            leaf_means = (members @ residual) / np.maximum(self.leaf_counts_[t], 1)[:, None]  # K_t R via leaf means
            if test is not None:
                test += eta * leaf_means[test_leaves[:, t]]
            residual -= eta * leaf_means[self.train_leaves_[:, t]]
        if test is None:
            test = -residual
            test[identity] += 1.0
        return test

    def _leaves_of(self, X: Any) -> np.ndarray | None:
        return None if X is None else self.estimator.apply(X).reshape(len(X), -1).astype(np.intp)

    def weights(self, X: Any = None) -> np.ndarray:
        leaves = self._leaves_of(None if X is None else self._inputs(X))
        self._check_fitted()
        return np.hstack([self._block(columns, leaves) for columns in self._columns()])

    def _weights(self, X: np.ndarray) -> np.ndarray:
        return self.weights(X)

    def predict(self, X: Any, y: Any) -> np.ndarray:
        leaves = self._leaves_of(self._inputs(X))
        y = np.asarray(y, dtype=float)
        if len(y) != self.n_train_:
            raise ValueError(f"The 'y' argument must have n_train = {self.n_train_} rows. Got {len(y)} instead.")
        return sum(self._block(columns, leaves) @ y[columns] for columns in self._columns())

    def squared_norms(self, X: Any = None) -> np.ndarray:
        leaves = self._leaves_of(None if X is None else self._inputs(X))
        self._check_fitted()
        return sum(np.einsum("ji,ji->j", w, w) for w in (self._block(c, leaves) for c in self._columns()))

    def diagonal(self) -> np.ndarray:
        self._check_fitted()
        return np.concatenate([np.diagonal(self._block(c, None)[c]) for c in self._columns()])
