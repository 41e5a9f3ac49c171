"""Smoothers ŝ(x)ᵀ of predictors linear in the training labels and their effective parameters."""

from theory.smoothers._api import EffectiveParameters, effective_parameters_of, smoother_for
from theory.smoothers._base import NotFittedError, Smoother
from theory.smoothers._effective import PerOutputEffectiveParameters, effective_parameters
from theory.smoothers._linear import KernelRidgeSmoother, LeastSquaresSmoother, RandomFourierFeaturesSmoother
from theory.smoothers._trees import GradientBoostingSmoother, TreeSmoother

__all__ = [
    "EffectiveParameters",
    "GradientBoostingSmoother",
    "KernelRidgeSmoother",
    "LeastSquaresSmoother",
    "NotFittedError",
    "PerOutputEffectiveParameters",
    "RandomFourierFeaturesSmoother",
    "Smoother",
    "TreeSmoother",
    "effective_parameters",
    "effective_parameters_of",
    "smoother_for",
]
