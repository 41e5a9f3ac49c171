"""One entry point: effective parameters of any smoother or fitted scikit-learn estimator (Curth et al. 2023)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

from sklearn.ensemble import GradientBoostingRegressor
from sklearn.kernel_ridge import KernelRidge
from sklearn.linear_model import LinearRegression, Ridge
from sklearn.metrics.pairwise import pairwise_kernels
from sklearn.tree import BaseDecisionTree

from theory.smoothers._base import Smoother
from theory.smoothers._linear import KernelRidgeSmoother, LeastSquaresSmoother
from theory.smoothers._trees import FORESTS, GradientBoostingSmoother, TreeSmoother

__all__ = ["EffectiveParameters", "effective_parameters_of", "smoother_for"]


@dataclass(frozen=True)
class EffectiveParameters:
    """Effective parameters of a smoother on training and held-out inputs (Curth, Jeffares & van der Schaar 2023).

    Attributes:
        p_train: p̂ on the training inputs, (n/n) Σ_i ‖ŝ(x_i)‖² = ‖S‖_F².
        p_test: p̂ on the held-out inputs, (n/m) Σ_j ‖ŝ(x_j)‖².
        trace_train: tr(S), the classical degrees of freedom.
        n_train, n_test: n and m.
    """

    p_train: float
    p_test: float
    trace_train: float
    n_train: int
    n_test: int

    def summary(self) -> str:
        """One line: p_train, p_test and tr(S) with n and m."""
        return (
            f"p_train = {self.p_train:.4g}, p_test = {self.p_test:.4g}, tr(S) = {self.trace_train:.4g} "
            f"(n = {self.n_train}, m = {self.n_test})"
        )


def smoother_for(estimator: Any) -> Smoother:
    """The smoother of a scikit-learn estimator (unfitted ``Smoother`` instances are returned as they are).

    Fitted trees and forests give a ``TreeSmoother``, a fitted squared-error ``GradientBoostingRegressor`` a
    ``GradientBoostingSmoother``; ``LinearRegression``, ``Ridge`` and ``KernelRidge`` (fitted or not) give the
    equivalent ``LeastSquaresSmoother`` / ``KernelRidgeSmoother``, built from their hyperparameters alone since
    their smoother does not depend on the labels.

    Raises:
        TypeError: for any other object, listing the supported ones.
    """
    if isinstance(estimator, Smoother):
        return estimator
    if isinstance(estimator, (BaseDecisionTree, *FORESTS)):
        return TreeSmoother(estimator)
    if isinstance(estimator, GradientBoostingRegressor):
        return GradientBoostingSmoother(estimator)
    if isinstance(estimator, Ridge):
        return LeastSquaresSmoother(ridge=estimator.alpha, fit_intercept=estimator.fit_intercept)
    if isinstance(estimator, LinearRegression):
        return LeastSquaresSmoother(fit_intercept=estimator.fit_intercept)
    if isinstance(estimator, KernelRidge):
        # As KernelRidge._get_kernel: a callable kernel gets kernel_params only, a named one gamma/degree/coef0.
        if callable(estimator.kernel):
            params = dict(estimator.kernel_params or {})
        else:
            params = {"gamma": estimator.gamma, "degree": estimator.degree, "coef0": estimator.coef0}
        kernel = partial(pairwise_kernels, metric=estimator.kernel, filter_params=True, **params)
        return KernelRidgeSmoother(kernel, ridge=estimator.alpha)
    raise TypeError(
        "The 'smoother' argument must be a Smoother or a scikit-learn DecisionTree*, RandomForest*, ExtraTrees*, "
        f"GradientBoostingRegressor, LinearRegression, Ridge or KernelRidge. Got {type(estimator).__name__} instead."
    )


def effective_parameters_of(smoother: Any, X_train: Any, X_test: Any) -> EffectiveParameters:
    """p_train, p_test and tr(S) of a smoother fitted on ``X_train`` (Curth, Jeffares & van der Schaar 2023).

    p̂(I) = (n/|I|) Σ_{j∈I} ‖ŝ(x_j)‖², on I = training inputs and I = ``X_test``.

    Args:
        smoother: a ``Smoother`` (fitted here on ``X_train``) or a scikit-learn estimator (see ``smoother_for``);
            trees, forests and boosting must already be fitted on ``X_train``.
        X_train: the n training inputs.
        X_test: the m held-out inputs.

    Example:
        >>> import numpy as np
        >>> X = np.random.default_rng(0).normal(size=(50, 3))
        >>> round(effective_parameters_of(LeastSquaresSmoother(), X, X[:5]).p_train, 10)  # OLS: p_train = p = 3
        3.0
    """
    fitted = smoother_for(smoother).fit(X_train)
    p_test = fitted.effective_parameters(X_test)
    return EffectiveParameters(
        p_train=fitted.effective_parameters(),
        p_test=p_test,
        trace_train=float(fitted.diagonal().sum()),
        n_train=fitted.n_train_,
        n_test=len(X_test),
    )
