"""PAC-Bayes measures with σ found by bisection (Jiang et al. 2020, Eqs. 48, 53, 61; Dziugaite & Roy 2017)."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.func import functional_call

from theory._validation import check_in_range, check_positive_int
from theory.measures._layers import as_inputs, as_labels, check_model, logits_of, parameter_vector, prepared


@dataclass(frozen=True)
class SigmaSearch:
    """Result of :func:`pacbayes_sigma`: the noise scale ``sigma``, the accuracy ``drop`` it produces (Monte-Carlo
    mean), the unperturbed ``base_accuracy``, the number of accuracy evaluations ``n_iter`` and ``converged``
    (|drop − target| <= tolerance)."""

    sigma: float
    drop: float
    base_accuracy: float
    n_iter: int
    converged: bool


def perturbed_accuracy(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    sigma: float,
    seeds: np.ndarray,
    *,
    magnitude_aware: bool = False,
    epsilon: float = 1e-3,
) -> float:
    """Mean accuracy of θ + u over one draw per seed: u ~ N(0, σ² I), or u_i ~ N(0, σ² θ_i² + ε²) when
    ``magnitude_aware`` (Jiang et al. 2020, Eqs. 53 and 61). Each seed draws the noise of every parameter in
    registration order from one ``torch.Generator``, so equal seeds give equal noise directions."""
    params = {k: v.detach() for k, v in model.named_parameters()}
    accs = []
    for seed in seeds:
        gen = torch.Generator().manual_seed(int(seed))
        noisy = {}
        for k, p in params.items():
            z = torch.randn(p.shape, dtype=p.dtype, generator=gen)
            scale = torch.sqrt(sigma**2 * p**2 + epsilon**2) if magnitude_aware else sigma
            noisy[k] = p + scale * z
        with torch.no_grad():
            accs.append(float((functional_call(model, noisy, (x,)).argmax(dim=1) == y).double().mean()))
    return float(np.mean(accs))


def pacbayes_sigma(
    model: nn.Module,
    x: Any,
    y: Any,
    *,
    magnitude_aware: bool = False,
    target_drop: float = 0.1,
    tolerance: float = 0.01,
    n_draws: int = 10,
    max_iter: int = 40,
    sigma_max: float = 1e3,
    epsilon: float = 1e-3,
    random_state: int | None = None,
) -> SigmaSearch:
    """The largest noise scale σ whose accuracy drop on (x, y) is ``target_drop`` ± ``tolerance``
    (Jiang et al. 2020, App. C.6: 0.1 ± 0.01 on the training set; Dziugaite et al. 2020's code).

    The drop acc(θ) − E_u acc(θ + u) is averaged over ``n_draws`` Monte-Carlo draws with the same ``n_draws``
    seeds (from ``random_state``) at every σ (common random numbers), making it a deterministic function of σ.
    Search: σ doubles from 1e-3 until the drop reaches the target (up to ``sigma_max``), then bisection on
    [lo, hi] until |drop − target| <= ``tolerance`` or ``max_iter`` evaluations; ``converged`` reports which.
    When even ``sigma_max`` drops less than the target (e.g. a model at chance accuracy), σ is NaN with a
    warning. Noise covers every parameter of the BatchNorm-folded model; ``magnitude_aware`` uses
    u_i ~ N(0, σ² θ_i² + ε²).
    """
    owner = "pacbayes_sigma"
    check_in_range("target_drop", target_drop, 0.0, 1.0, inclusive=(False, False), owner=owner)
    check_in_range("tolerance", tolerance, 0.0, target_drop, inclusive=(False, False), owner=owner)
    check_positive_int("n_draws", n_draws, owner=owner)
    check_positive_int("max_iter", max_iter, owner=owner)
    check_in_range("sigma_max", sigma_max, 1e-3, None, owner=owner)
    check_in_range("epsilon", epsilon, 0.0, None, owner=owner)
    model = prepared(check_model(model))
    x = as_inputs(x)
    y = as_labels(y, x.shape[0])
    base = float((logits_of(model, x, y).argmax(dim=1) == y).double().mean())
    seeds = np.random.SeedSequence(random_state).generate_state(n_draws)

    def drop(sigma: float) -> float:
        return base - perturbed_accuracy(model, x, y, sigma, seeds, magnitude_aware=magnitude_aware, epsilon=epsilon)

    lo, hi, n_iter = 0.0, 1e-3, 0
    while True:
        d, n_iter = drop(hi), n_iter + 1
        if abs(d - target_drop) <= tolerance:
            return SigmaSearch(hi, d, base, n_iter, True)
        if d > target_drop:
            break
        if hi >= sigma_max:
            warnings.warn(
                f"pacbayes_sigma: the accuracy drop at sigma_max={sigma_max} is {d:.3g} < target.", stacklevel=2
            )
            return SigmaSearch(math.nan, d, base, n_iter, False)
        lo, hi = hi, min(2 * hi, sigma_max)
    mid = hi
    while n_iter < max_iter:
        mid = 0.5 * (lo + hi)
        d, n_iter = drop(mid), n_iter + 1
        if abs(d - target_drop) <= tolerance:
            return SigmaSearch(mid, d, base, n_iter, True)
        lo, hi = (mid, hi) if d < target_drop else (lo, mid)
    return SigmaSearch(mid, d, base, n_iter, False)


def pacbayes_init_bound(model: nn.Module, init_model: nn.Module, sigma: float, m: int) -> float:
    """‖θ − θ⁰‖² / (4σ²) + log(m/σ) + 10 (Jiang et al. 2020, Eq. 48, "pacbayes.init"), θ all parameters, m the
    number of training samples and σ from :func:`pacbayes_sigma`."""
    check_positive_int("m", m, owner="pacbayes_init_bound")
    check_in_range("sigma", sigma, 0.0, None, inclusive=(False, True), owner="pacbayes_init_bound")
    now = parameter_vector(prepared(check_model(model)))
    init = parameter_vector(prepared(check_model(init_model, "init_model")))
    if now.shape != init.shape:
        raise ValueError(f"The 'init_model' parameter must have {now.numel()} parameters. Got {init.numel()}.")
    return float(((now - init) ** 2).sum() / (4 * sigma**2) + math.log(m / sigma) + 10)
