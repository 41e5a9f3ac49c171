"""Effective parameters of a smoother from a block of its weights (Curth, Jeffares & van der Schaar 2023)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["PerOutputEffectiveParameters", "effective_parameters", "as_float_array"]


@dataclass(frozen=True)
class PerOutputEffectiveParameters:
    """Effective parameters of a multi-output smoother: one value per output and their mean."""

    per_output: np.ndarray
    mean: float


def as_float_array(name: str, value: Any, ndim: tuple[int, ...]) -> np.ndarray:
    """Return ``value`` (array-like or torch tensor) as a float64 array of one of the given ranks."""
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"The {name!r} argument must be a real array. Got {type(value).__name__} instead.") from None
    if array.ndim not in ndim:
        shapes = " or ".join(f"{d}-D" for d in ndim)
        raise ValueError(f"The {name!r} argument must be {shapes}. Got shape {array.shape} instead.")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"The {name!r} argument must be finite. Got non-finite entries instead.")
    return array


def effective_parameters(weights: Any) -> float | PerOutputEffectiveParameters:
    """Effective parameters p̂(I) = (n/|I|) Σ_{j∈I} ‖ŝ(x_j)‖² of a smoother (Curth, Jeffares & van der Schaar 2023).

    A predictor linear in the training labels, f̂(x) = ŝ(x)ᵀy, has smoother weights ŝ(x) ∈ Rⁿ; ``weights`` holds
    the rows ŝ(x_j)ᵀ for the inputs I. Note the factor n: the authors' released code reports the mean ‖ŝ‖².

    Args:
        weights: array or torch tensor of shape (|I|, n), or (|I|, n, O) for O outputs each with its own smoother.

    Returns:
        The float p̂(I) for a 2-D block; for a 3-D block a ``PerOutputEffectiveParameters`` with the O values
        and their mean.

    Raises:
        ValueError: if ``weights`` is not 2-D or 3-D, is empty or non-finite.

    Example:
        >>> effective_parameters(np.eye(3))  # interpolating smoother: S = I, p = n
        3.0
    """
    w = as_float_array("weights", weights, ndim=(2, 3))
    if w.shape[0] == 0 or w.shape[1] == 0:
        raise ValueError(f"The 'weights' argument must have at least one input and one training point. Got {w.shape}.")
    n_inputs, n_train = w.shape[:2]
    per_output = np.einsum("jn...,jn...->...", w, w) * (n_train / n_inputs)
    if w.ndim == 2:
        return float(per_output)
    return PerOutputEffectiveParameters(per_output=per_output, mean=float(per_output.mean()))
