"""Sample-wise and feature-wise double descent of random-features least squares, and its removal by ridge.

Min-norm least squares on N random features of n examples has a test-error peak at N ≈ n (Belkin et al. 2019;
Curth et al. 2023 with random Fourier features, frequencies N(0, σ²), one-vs-all regressions on one-hot
targets); an optimally tuned ridge removes it (Nakkiran et al. 2021). The fit is closed form (``steps = 0``).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any

import numpy as np
import torch
from sklearn.linear_model import RidgeCV
from threadpoolctl import threadpool_limits

from empirics.data import load_dataset
from empirics.data.digits import DIGITS_SIZE
from empirics.models import build_model
from empirics.models.random_features import FEATURE_MAPS
from empirics.phenomena import register
from empirics.phenomena.base import Phenomenon, Snapshot
from empirics.phenomena.constraints import FRACTION, NON_NEGATIVE, POSITIVE, POSITIVE_INT, OneOf, Rule
from empirics.recorder import Recorder
from theory.smoothers import LeastSquaresSmoother

#: The ridge grid searched by ``ridge_rule = "optimal"``.
RIDGE_GRID = np.logspace(-8, 2, 21)


class RidgeRule(StrEnum):
    """How the ridge λ is chosen: ``fixed`` (default: the ``ridge`` parameter; 0 is min-norm least squares) or
    ``optimal`` (:func:`optimal_ridge`, leave-one-out over :data:`RIDGE_GRID`; ``ridge`` is then ignored)."""

    FIXED = "fixed"
    OPTIMAL = "optimal"


def optimal_ridge(features: np.ndarray, targets: np.ndarray) -> float:
    """The λ of :data:`RIDGE_GRID` with the least exact leave-one-out squared error of ridge on ``features``.

    Leave-one-out residuals of a linear smoother are (y_i − f̂_i)/(1 − S_ii), computed for every λ from one
    eigendecomposition by scikit-learn's ``RidgeCV`` (no intercept, one λ shared by the one-vs-all outputs):
    a label-only proxy of the oracle optimal ridge of Nakkiran et al. (2021).
    """
    return float(RidgeCV(alphas=RIDGE_GRID, fit_intercept=False).fit(features, targets).alpha_)


@register
class DoubleDescentRFF(Phenomenon):
    """Random-features regression on one-hot targets; classify by the largest output.

    Parameters: ``dataset`` (``digits``: sklearn's 8×8 digits, REFERENCE §8's cheap recipe; or ``mnist1d``),
    ``n_train``, ``n_test``, ``label_noise``; ``n_features`` N, ``feature_map`` and ``bandwidth`` σ of
    :class:`~empirics.models.RandomFeatures` (default cos(Vx + b) with σ² = 9/64); ``ridge`` λ ≥ 0 and
    ``ridge_rule`` (:class:`RidgeRule`: ``fixed`` uses λ, ``optimal`` picks it by leave-one-out); ``steps``
    must be 0 (closed-form fit); ``seed`` draws the features
    (the data split is fixed). Sweep ``n_features`` for feature-wise, ``n_train`` for sample-wise double descent.

    Records at step 0 the standard losses (MSE against one-hot targets, mean over examples and outputs) and
    errors, ``p_train``/``p_test`` of the smoother ŝ(x)ᵀ = φ(x)ᵀ(ΦᵀΦ + λI)⁺Φᵀ (Curth et al. 2023, via
    ``theory.smoothers.LeastSquaresSmoother``) and ``ridge_used``; quantities see the fitted model in float64.
    The linear algebra runs on one BLAS thread: bit-reproducible whatever the machine, and on a loaded 2-core
    machine over ten times faster than OpenBLAS's default threads (measured: 500×2000 SVD 0.6 s vs 8 s).
    """

    name = "double_descent_rff"
    parameters: Mapping[str, Any] = {
        "dataset": "digits",
        "n_train": 500,
        "n_test": 1000,
        "label_noise": 0.0,
        "n_features": 500,
        "feature_map": "cos",
        "bandwidth": 0.375,
        "ridge": 0.0,
        "ridge_rule": "fixed",
        "steps": 0,
        "seed": 0,
    }
    constraints = {
        "dataset": OneOf(("digits", "mnist1d")),
        "n_train": POSITIVE_INT,
        "n_test": (
            POSITIVE_INT,
            Rule(
                lambda n, q: q["dataset"] != "digits" or q["n_train"] + n <= DIGITS_SIZE,
                f"at most {DIGITS_SIZE} - n_train (the digits data set has {DIGITS_SIZE} examples)",
                refs=("n_train", "dataset"),
            ),
        ),
        "label_noise": FRACTION,
        "n_features": POSITIVE_INT,
        "feature_map": OneOf(FEATURE_MAPS),
        "bandwidth": POSITIVE,
        "ridge": NON_NEGATIVE,
        "ridge_rule": OneOf([r.value for r in RidgeRule]),
        "steps": OneOf((0,)),
    }
    outcomes = ("train_loss", "test_loss", "train_error", "test_error", "p_train", "p_test", "ridge_used")

    def run(self, params: Mapping[str, Any], recorder: Recorder) -> dict[str, float]:
        with threadpool_limits(limits=1, user_api="blas"):
            return self._run(self.resolve(params), recorder)

    def _run(self, q: dict[str, Any], recorder: Recorder) -> dict[str, float]:
        rule = RidgeRule(q["ridge_rule"])
        data = load_dataset(q["dataset"], n_train=q["n_train"], n_test=q["n_test"], label_noise=q["label_noise"])
        features = {key: q[key] for key in ("n_features", "feature_map", "bandwidth")}
        build = lambda: build_model(  # noqa: E731
            "random_features", seed=q["seed"], input_dim=data.input_dim, output_dim=data.num_classes, **features
        ).double()
        model = build()
        phi = lambda x: model.features(torch.as_tensor(x, dtype=torch.float64)).numpy()  # noqa: E731
        targets = data.one_hot("train")
        ridge = optimal_ridge(phi(data.x_train), targets) if rule is RidgeRule.OPTIMAL else float(q["ridge"])
        smoother = LeastSquaresSmoother(ridge=ridge, features=phi).fit(data.x_train)
        with torch.no_grad():  # the read-out of f(x) = ŝ(x)ᵀY: W = (V diag(d/(d²+λ)) Uᵀ Y)ᵀ
            model.readout.weight.copy_(torch.from_numpy((smoother.coef_ @ (smoother.U_.T @ targets)).T))
        outcomes = {"ridge_used": ridge, "p_train": smoother.effective_parameters()}
        outcomes["p_test"] = smoother.effective_parameters(data.x_test)
        for split, x, y in (("train", data.x_train, data.y_train), ("test", data.x_test, data.y_test)):
            predictions = smoother.predict(x, targets)
            outcomes[f"{split}_loss"] = float(np.mean((predictions - np.eye(data.num_classes)[y]) ** 2))
            outcomes[f"{split}_error"] = float(np.mean(predictions.argmax(axis=1) != y))
        if recorder.due(0):
            x_train, y_train, x_test, y_test = data.tensors(torch.float64)
            recorder.record(0, Snapshot(model, build(), x_train, y_train, x_test, y_test), **outcomes)
        return outcomes
