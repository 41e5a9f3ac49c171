"""Weight-matrix spectrum statistics: power-law exponents and stable ranks (Martin & Mahoney 2021)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from theory._validation import check_in_range, check_positive_int
from theory.measures._layers import check_model, prepared, weight_layers


@dataclass(frozen=True)
class PowerLawFit:
    """Power-law tail p(λ) ∝ λ^(−alpha) for λ >= ``xmin`` fitted to ``n_tail`` eigenvalues, with the
    Kolmogorov-Smirnov distance ``ks`` between the tail's empirical CDF and the fitted one."""

    alpha: float
    xmin: float
    n_tail: int
    ks: float


def _fit_tail(sorted_eigs: np.ndarray, xmin: float) -> PowerLawFit:
    tail = sorted_eigs[sorted_eigs >= xmin]
    n = tail.size
    alpha = 1.0 + n / np.log(tail / xmin).sum()
    cdf = 1.0 - (tail / xmin) ** (1.0 - alpha)
    ranks = np.arange(n)
    ks = float(np.max(np.maximum(np.abs((ranks + 1) / n - cdf), np.abs(ranks / n - cdf))))
    return PowerLawFit(float(alpha), float(xmin), int(n), ks)


def power_law_alpha(eigenvalues: Any, *, xmin: float | None = None, min_tail: int = 10) -> PowerLawFit:
    """Maximum-likelihood power-law exponent of the tail of an eigenvalue spectrum (Clauset, Shalizi & Newman
    2009, Eq. 3.1: α = 1 + n / Σ_{λ_i >= xmin} ln(λ_i / xmin)); used by Martin & Mahoney 2021 on the ESD of WᵀW.

    With ``xmin=None`` the lower cutoff is the eigenvalue minimising the KS distance between the tail and the
    fit (Clauset et al.'s recipe, as in WeightWatcher), among cutoffs leaving at least ``min_tail`` eigenvalues.
    """
    check_positive_int("min_tail", min_tail, owner="power_law_alpha")
    eigs = np.sort(np.asarray(eigenvalues, dtype=np.float64).ravel())
    eigs = eigs[eigs > 0]
    if eigs.size < max(min_tail, 2):
        raise ValueError(
            f"The 'eigenvalues' parameter of power_law_alpha must have at least {max(min_tail, 2)} positive "
            f"values. Got {eigs.size}."
        )
    if xmin is not None:
        check_in_range("xmin", xmin, 0.0, float(eigs[-2]), inclusive=(False, True), owner="power_law_alpha")
        return _fit_tail(eigs, xmin)
    candidates = np.unique(eigs[: eigs.size - min_tail + 1])
    return min((_fit_tail(eigs, c) for c in candidates), key=lambda fit: fit.ks)


@dataclass(frozen=True)
class LayerSpectrum:
    """Spectrum statistics of one weight layer: its power-law fit (``alpha`` NaN when the layer has fewer than
    ``min_tail`` non-zero eigenvalues), largest eigenvalue ``lambda_max`` of WᵀW/N and ``stable_rank``."""

    name: str
    alpha: float
    lambda_max: float
    stable_rank: float


@dataclass(frozen=True)
class WeightSpectrum:
    """Per-layer :class:`LayerSpectrum` with the across-layer aggregates (NaN layers skipped)."""

    layers: tuple[LayerSpectrum, ...]

    @property
    def alpha_mean(self) -> float:
        """Mean of the per-layer α (WeightWatcher's "alpha")."""
        alphas = [s.alpha for s in self.layers if not math.isnan(s.alpha)]
        return float(np.mean(alphas)) if alphas else math.nan

    @property
    def alpha_weighted(self) -> float:
        """α̂ = (1/L) Σ_l α_l log10 λ_max,l (Martin, Peng & Mahoney 2021, "weighted alpha")."""
        terms = [s.alpha * math.log10(s.lambda_max) for s in self.layers if not math.isnan(s.alpha)]
        return float(np.mean(terms)) if terms else math.nan

    @property
    def stable_rank_mean(self) -> float:
        """Mean over layers of ‖W‖_F² / ‖W‖₂²."""
        return float(np.mean([s.stable_rank for s in self.layers]))


def weight_spectrum(model: nn.Module, *, min_tail: int = 10) -> WeightSpectrum:
    """Eigenvalue statistics of every weight layer W (``out x in``, BatchNorm folded; see ``_layers``).

    The empirical spectral density is that of X = WᵀW / N, N = max(out, in), whose non-zero eigenvalues are
    σ_i(W)² / N (Martin & Mahoney 2021). Per layer: the power-law exponent α of its tail
    (:func:`power_law_alpha`, KS-chosen cutoff, eigenvalues below 1e-12 λ_max dropped), λ_max and the stable
    rank ‖W‖_F² / ‖W‖₂² = Σ σ_i² / σ_1².
    """
    check_positive_int("min_tail", min_tail, owner="weight_spectrum")
    out = []
    for layer in weight_layers(prepared(check_model(model))):
        sv2 = torch.linalg.svdvals(layer.matrix).numpy() ** 2
        eigs = sv2 / max(layer.matrix.shape)
        eigs = eigs[eigs > 1e-12 * eigs.max()] if eigs.max() > 0 else eigs[:0]
        alpha = power_law_alpha(eigs, min_tail=min_tail).alpha if eigs.size >= max(min_tail, 2) else math.nan
        lam_max = float(eigs.max()) if eigs.size else 0.0
        stable = float(sv2.sum() / sv2.max()) if sv2.max() > 0 else math.nan
        out.append(LayerSpectrum(layer.name, alpha, lam_max, stable))
    return WeightSpectrum(tuple(out))
