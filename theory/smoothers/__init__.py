"""Smoothers ŝ(x)ᵀ of predictors linear in the training labels and their effective parameters."""

from theory.smoothers._effective import PerOutputEffectiveParameters, effective_parameters

__all__ = ["PerOutputEffectiveParameters", "effective_parameters"]
