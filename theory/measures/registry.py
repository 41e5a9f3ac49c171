"""The registry of named generalisation measures and :func:`compute_measures`.

Every entry maps (model, init model, data) to one float; names follow Jiang et al. 2020's equation numbers
where they have one. Margin-normalised measures are ``inf`` when the margin γ <= 0 (their limit as γ → 0⁺).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from theory._validation import check_option
from theory.measures._inputs import MeasureInputs
from theory.measures._layers import (
    as_inputs,
    check_model,
    detached_copy,
    prepared,
)
from theory.measures.norms import fisher_rao_norm, path_norm
from theory.measures.pacbayes import pacbayes_init_bound
from theory.measures.spectral import ConvNorm, bartlett_spectral_complexity, neyshabur_pacbayes_bound


@dataclass(frozen=True)
class Measure:
    """A registered measure: ``fn(MeasureInputs) -> float``, a one-line ``description``, the ``reference`` paper
    and ``equation``, whether it ``needs_data`` (x, y) or ``needs_init`` (the initial model), whether it is
    ``cheap`` (no Monte-Carlo search: recorded along every training run) and whether it ``needs_labels``
    (integer class labels and ``n x C`` logits: margins and accuracies; not defined for regression)."""

    name: str
    fn: Callable[[MeasureInputs], float]
    description: str
    reference: str
    equation: str
    needs_data: bool
    needs_init: bool
    cheap: bool
    needs_labels: bool = False


def _num_params(inp: MeasureInputs) -> float:
    """ω = number of scalar parameters (Jiang et al. 2020, App. C.1, "params"), BatchNorm folded first."""
    return float(sum(p.numel() for p in inp.model.parameters()))


def _param_norm(inp: MeasureInputs) -> float:
    """Σ_i ‖W_i‖_F² (Jiang et al. 2020, Eq. 42)."""
    return float(inp.fro2.sum())


def _dist_init(inp: MeasureInputs) -> float:
    """Σ_i ‖W_i − W_i⁰‖_F² (Jiang et al. 2020, Eq. 40)."""
    return float(inp.dist2.sum())


def _log_prod_spec(inp: MeasureInputs) -> float:
    """log Π_i ‖W_i‖₂² (Jiang et al. 2020, Eq. 32)."""
    return inp.log_prod_spec


def _margin(inp: MeasureInputs) -> float:
    """γ = 10th percentile of f_y(x) − max_{j≠y} f_j(x) (Jiang et al. 2020, App. C, the γ of Eq. 22)."""
    return inp.gamma


def _inverse_margin(inp: MeasureInputs) -> float:
    """1/γ² (Jiang et al. 2020, Eq. 22); inf when γ <= 0."""
    return 1.0 / inp.gamma**2 if inp.gamma > 0 else math.inf


def _log_prod_spec_over_margin(inp: MeasureInputs) -> float:
    """log(Π_i ‖W_i‖₂² / γ²) (Jiang et al. 2020, Eq. 31)."""
    return inp.over_margin(inp.log_prod_spec)


def _spec_orig(inp: MeasureInputs) -> float:
    """log(Π_i ‖W_i‖₂² / γ² · Σ_i ‖W_i‖_F² / ‖W_i‖₂²) (Jiang et al. 2020, Eq. 30, "spec-orig")."""
    return inp.over_margin(inp.log_prod_spec + math.log((inp.fro2 / inp.spec**2).sum()))


def _spec_init(inp: MeasureInputs) -> float:
    """log(Π_i ‖W_i‖₂² / γ² · Σ_i ‖W_i − W_i⁰‖_F² / ‖W_i‖₂²) (Jiang et al. 2020, Eq. 29, "spec-init").

    −inf at initialisation, where every ‖W_i − W_i⁰‖_F is 0.
    """
    dispersion = (inp.dist2 / inp.spec**2).sum()
    if dispersion == 0:
        return -math.inf
    return inp.over_margin(inp.log_prod_spec + math.log(dispersion))


def _path_norm(inp: MeasureInputs) -> float:
    """Σ_i f_{w²}(1)[i]: square every parameter, forward all-ones (Jiang et al. 2020, Eq. 44)."""
    if not inp.x.is_floating_point():
        raise ValueError("The path norm needs real-valued inputs 'x' (it forwards an all-ones input). Got integers.")
    return path_norm(inp.model, tuple(inp.x.shape[1:]))


def _path_norm_over_margin(inp: MeasureInputs) -> float:
    """Σ_i f_{w²}(1)[i] / γ² (Jiang et al. 2020, Eq. 43); inf when γ <= 0."""
    return _path_norm(inp) / inp.gamma**2 if inp.gamma > 0 else math.inf


def _bartlett(inp: MeasureInputs) -> float:
    """R = (Π ‖A_i‖_σ)(Σ ‖A_iᵀ‖_{2,1}^{2/3} / ‖A_i‖_σ^{2/3})^{3/2}, M_i = 0, ρ_i = 1 (Bartlett et al. 2017, Eq. 1.2)."""
    return bartlett_spectral_complexity(inp.model, spec=inp.spec)


def _bartlett_over_margin(inp: MeasureInputs) -> float:
    """R / γ, R with M_i = 0 (Bartlett et al. 2017, Eq. 1.2, Thm. 1.1); inf when γ <= 0."""
    return _bartlett(inp) / inp.gamma if inp.gamma > 0 else math.inf


def _bartlett_init_over_margin(inp: MeasureInputs) -> float:
    """R / γ, R with reference matrices M_i = W_i⁰ (Bartlett et al. 2017, Eq. 1.2, Thm. 1.1); inf when γ <= 0."""
    r = bartlett_spectral_complexity(inp.model, inp.init_model, spec=inp.spec)
    return r / inp.gamma if inp.gamma > 0 else math.inf


def _neyshabur(inp: MeasureInputs) -> float:
    """√[(B² d² h ln(dh) Π‖W‖₂² Σ‖W‖_F²/‖W‖₂² + ln(dm/δ))/(γ² m)], δ = 0.05 (Neyshabur et al. 2018, Thm. 1)."""
    return neyshabur_pacbayes_bound(inp.model, inp.x, inp.y, spec=inp.spec)


def _pacbayes_init(inp: MeasureInputs) -> float:
    """‖θ − θ⁰‖²/(4σ²) + log(m/σ) + 10, σ for a 0.1 accuracy drop (Jiang et al. 2020, Eq. 48)."""
    sigma = inp.sigma.sigma
    return pacbayes_init_bound(inp.model, inp.init_model, sigma, inp.x.shape[0]) if sigma == sigma else math.nan


def _pacbayes_flatness(inp: MeasureInputs) -> float:
    """1/σ², u ~ N(0, σ² I) dropping train accuracy by 0.1 ± 0.01 (Jiang et al. 2020, Eq. 53)."""
    return 1.0 / inp.sigma.sigma**2


def _pacbayes_mag_flatness(inp: MeasureInputs) -> float:
    """1/σ'², u_i ~ N(0, σ'² θ_i² + ε²), ε = 1e-3, dropping train accuracy by 0.1 ± 0.01 (Jiang et al. 2020, Eq. 61)."""
    return 1.0 / inp.mag_sigma.sigma**2


def _fisher_rao(inp: MeasureInputs) -> float:
    """(1/n) Σ_i ⟨θ, ∇_θ ℓ(f_θ(x_i), y_i)⟩², the definition (Liang et al. 2019; Jiang et al. 2020, Eq. 45)."""
    return fisher_rao_norm(inp.model, inp.x, inp.y)


def _alpha_mean(inp: MeasureInputs) -> float:
    """Mean over layers of the power-law α of the ESD of WᵀW/N (Martin & Mahoney 2021; Clauset et al. 2009, Eq. 3.1)."""
    return inp.spectrum.alpha_mean


def _alpha_weighted(inp: MeasureInputs) -> float:
    """α̂ = (1/L) Σ_l α_l log10 λ_max,l, α_l by Clauset et al. 2009, Eq. 3.1 (Martin, Peng & Mahoney 2021, α̂)."""
    return inp.spectrum.alpha_weighted


def _stable_rank_mean(inp: MeasureInputs) -> float:
    """Mean over layers of the stable rank ‖W‖_F² / ‖W‖₂² (its definition; Martin & Mahoney 2021)."""
    return inp.spectrum.stable_rank_mean


_J = "Jiang et al. 2020"
MEASURES: dict[str, Measure] = {
    m.name: m
    for m in [
        Measure("num_params", _num_params, "number of parameters", _J, "App. C.1", False, False, True),
        Measure("param_norm", _param_norm, "sum of squared Frobenius norms", _J, "Eq. 42", False, False, True),
        Measure("dist_init", _dist_init, "squared Frobenius distance to init", _J, "Eq. 40", False, True, True),
        Measure(
            "log_prod_spec", _log_prod_spec, "log product of squared spectral norms", _J, "Eq. 32", False, False, True
        ),
        Measure("margin", _margin, "10th-percentile output margin", _J, "App. C", True, False, True, needs_labels=True),
        Measure("inverse_margin", _inverse_margin, "1 / margin²", _J, "Eq. 22", True, False, True, needs_labels=True),
        Measure(
            "log_prod_spec_over_margin",
            _log_prod_spec_over_margin,
            "log prod spec / margin²",
            _J,
            "Eq. 31",
            True,
            False,
            True,
            needs_labels=True,
        ),
        Measure(
            "spec_orig",
            _spec_orig,
            "spectral bound, Frobenius-sum variant",
            _J,
            "Eq. 30",
            True,
            False,
            True,
            needs_labels=True,
        ),
        Measure(
            "spec_init",
            _spec_init,
            "spectral bound, distance-to-init variant",
            _J,
            "Eq. 29",
            True,
            True,
            True,
            needs_labels=True,
        ),
        Measure(
            "path_norm", _path_norm, "path norm (squared weights, all-ones input)", _J, "Eq. 44", True, False, True
        ),
        Measure(
            "path_norm_over_margin",
            _path_norm_over_margin,
            "path norm / margin²",
            _J,
            "Eq. 43",
            True,
            False,
            True,
            needs_labels=True,
        ),
        Measure(
            "bartlett_spectral_complexity",
            _bartlett,
            "spectral complexity R (M = 0)",
            "Bartlett et al. 2017",
            "Eq. 1.2",
            False,
            False,
            True,
        ),
        Measure(
            "bartlett_over_margin",
            _bartlett_over_margin,
            "spectral complexity / margin",
            "Bartlett et al. 2017",
            "Eq. 1.2, Thm. 1.1",
            True,
            False,
            True,
            needs_labels=True,
        ),
        Measure(
            "bartlett_init_over_margin",
            _bartlett_init_over_margin,
            "spectral complexity (M = init) / margin",
            "Bartlett et al. 2017",
            "Eq. 1.2, Thm. 1.1",
            True,
            True,
            True,
            needs_labels=True,
        ),
        Measure(
            "neyshabur_pacbayes_spectral",
            _neyshabur,
            "PAC-Bayes spectrally normalised margin bound",
            "Neyshabur et al. 2018",
            "Thm. 1",
            True,
            False,
            True,
            needs_labels=True,
        ),
        Measure(
            "pacbayes_init",
            _pacbayes_init,
            "PAC-Bayes bound around init",
            _J,
            "Eq. 48",
            True,
            True,
            False,
            needs_labels=True,
        ),
        Measure(
            "pacbayes_flatness",
            _pacbayes_flatness,
            "1 / σ² for a 0.1 accuracy drop",
            _J,
            "Eq. 53",
            True,
            False,
            False,
            needs_labels=True,
        ),
        Measure(
            "pacbayes_mag_flatness",
            _pacbayes_mag_flatness,
            "magnitude-aware 1 / σ'² for a 0.1 accuracy drop",
            _J,
            "Eq. 61",
            True,
            False,
            False,
            needs_labels=True,
        ),
        Measure(
            "fisher_rao", _fisher_rao, "empirical Fisher-Rao norm", "Liang et al. 2019", "Eq. 45", True, False, True
        ),
        Measure(
            "alpha_mean",
            _alpha_mean,
            "mean power-law exponent of layer ESDs",
            "Martin & Mahoney 2021",
            "Clauset et al. 2009, Eq. 3.1",
            False,
            False,
            True,
        ),
        Measure(
            "alpha_weighted",
            _alpha_weighted,
            "α weighted by log10 λ_max",
            "Martin, Peng & Mahoney 2021",
            "α̂ with Clauset et al. 2009, Eq. 3.1",
            False,
            False,
            True,
        ),
        Measure(
            "stable_rank_mean",
            _stable_rank_mean,
            "mean stable rank",
            "Martin & Mahoney 2021",
            "‖W‖_F² / ‖W‖₂² (definition)",
            False,
            False,
            True,
        ),
    ]
}
CHEAP_MEASURES: tuple[str, ...] = tuple(name for name, m in MEASURES.items() if m.cheap)


def compute_measures(
    model: nn.Module,
    init_model: nn.Module | None = None,
    x: Any = None,
    y: Any = None,
    names: Sequence[str] | None = None,
    *,
    conv_norm: ConvNorm | str = "reshape",
    random_state: int | None = None,
) -> dict[str, float]:
    """Evaluate the measures ``names`` of :data:`MEASURES` on ``model`` (trained) against ``init_model``.

    Args:
        x, y: inputs and integer class labels (the training set, as in Jiang et al. 2020); real-valued targets
            only suit ``fisher_rao`` (squared loss) and the data-free measures.
        names: measure names; ``None`` means every measure whose needs the given arguments meet (real-valued
            ``y`` skips the ``needs_labels`` ones).
        conv_norm: spectral norm of conv layers (:class:`ConvNorm`); ``"operator"`` needs ``x``.
        random_state: seeds the PAC-Bayes σ searches and the conv Lanczos start vectors.

    Returns:
        ``{name: value}`` in the order of ``names``; a measure undefined for this model (a layer of zeros: log 0,
        0/0) is its limit ``±inf`` or NaN, without numpy's RuntimeWarnings.

    Raises:
        ValueError: unknown names, a measure whose data/init model is missing, a margin or PAC-Bayes measure
            given labels that are not class indices, or BatchNorm folding that changes the outputs on ``x``
            (BatchNorm modules not registered in execution order).
    """
    check_model(model)
    conv_norm = ConvNorm(check_option("conv_norm", conv_norm, list(ConvNorm), owner="compute_measures"))
    if (x is None) != (y is None):
        raise ValueError("The 'x' and 'y' parameters of compute_measures must be given together. Got only one.")
    if names is None:
        labels = y is not None and not as_inputs(y, "y").is_floating_point()
        names = [
            n
            for n, m in MEASURES.items()
            if (x is not None or not m.needs_data)
            and (init_model is not None or not m.needs_init)
            and (labels or not m.needs_labels)
        ]
    names = [check_option("names", n, MEASURES, owner="compute_measures") for n in names]
    for n in names:
        if MEASURES[n].needs_init and init_model is None:
            raise ValueError(f"The measure {n!r} needs the 'init_model' parameter. Got None.")
        if MEASURES[n].needs_data and x is None:
            raise ValueError(f"The measure {n!r} needs the 'x' and 'y' parameters. Got None.")
    if random_state is not None and (isinstance(random_state, bool) or not isinstance(random_state, int)):
        raise ValueError(
            f"The 'random_state' parameter of compute_measures must be an int or None. Got {random_state!r}."
        )
    folded = prepared(model)
    if x is not None:
        x, y = as_inputs(x), as_inputs(y, "y")
        if y.shape[0] != x.shape[0]:
            raise ValueError(f"The 'y' parameter must have {x.shape[0]} rows to match x. Got {y.shape[0]} instead.")
        if any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules()):
            _check_folding(model, folded, x)
    init = prepared(check_model(init_model, "init_model")) if init_model is not None else None
    inputs = MeasureInputs(folded, init, x, y, random_state, conv_norm)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):  # limits (±inf, NaN) are the values
        return {n: float(MEASURES[n].fn(inputs)) for n in names}


def _check_folding(model: nn.Module, folded: nn.Module, x: torch.Tensor) -> None:
    reference = detached_copy(model).eval().to(torch.float64)
    with torch.no_grad():
        a, b = reference(x[:64]), folded(x[:64])
    if not torch.allclose(a, b, rtol=1e-6, atol=1e-8 * float(a.abs().max()) + 1e-12):
        raise ValueError(
            "BatchNorm folding changed the model's outputs: a BatchNorm does not follow, in execution order, the "
            "Linear/Conv registered before it. Register modules in execution order."
        )
