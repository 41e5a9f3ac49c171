"""Norm- and margin-based measures (Jiang et al. 2020, App. C; Neyshabur et al. 2015; Liang et al. 2019)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, jvp
from torch.nn.attention import SDPBackend, sdpa_kernel

from theory._validation import check_in_range, check_option
from theory.measures._layers import (
    as_inputs,
    as_labels,
    check_model,
    logits_of,
    paired_layers,
    prepared,
    weight_layers,
)


def num_parameters(model: nn.Module) -> int:
    """ω = the number of scalar parameters (Jiang et al. 2020, App. C.1, "params"), BatchNorm folded first."""
    return sum(p.numel() for p in prepared(model).parameters())


def parameter_norm(model: nn.Module) -> float:
    """Σ_i ‖W_i‖_F² over the weight layers (Jiang et al. 2020, Eq. 42, "parameter norm"); biases excluded."""
    return float(sum((layer.matrix**2).sum() for layer in weight_layers(prepared(model))))


def distance_to_init(model: nn.Module, init_model: nn.Module) -> float:
    """Σ_i ‖W_i − W_i⁰‖_F² over the weight layers (Jiang et al. 2020, Eq. 40, "Frobenius distance to init")."""
    pairs = paired_layers(prepared(model), prepared(check_model(init_model, "init_model")))
    return float(sum(((a.matrix - b.matrix) ** 2).sum() for a, b in pairs))


def margins(model: nn.Module, x: Any, y: Any) -> np.ndarray:
    """Per-sample margins f_y(x) − max_{j≠y} f_j(x) of a classifier (negative when misclassified)."""
    model = prepared(model)
    x = as_inputs(x)
    y = as_labels(y, x.shape[0])
    logits = logits_of(model, x, y)
    correct = logits.gather(1, y[:, None]).squeeze(1)
    others = logits.scatter(1, y[:, None], -torch.inf).amax(dim=1)
    return (correct - others).numpy()


def margin(model: nn.Module, x: Any, y: Any, *, quantile: float = 0.1) -> float:
    """γ = the ``quantile`` (10th percentile) of the margins f_y(x) − max_{j≠y} f_j(x) over (x, y).

    Jiang et al. 2020 (App. C, the γ used by Eqs. 22, 29-31, 43) take the 10th percentile over the training set
    for robustness to outliers; numpy's linear interpolation between order statistics is used.

    Raises:
        ValueError: ``y`` is not integer labels (regression targets), or the outputs are not ``n x C`` logits.
    """
    check_in_range("quantile", quantile, 0.0, 1.0, owner="margin")
    return float(np.quantile(margins(model, x, y), quantile))


def path_norm(model: nn.Module, input_shape: tuple[int, ...]) -> float:
    """Path norm Σ_paths Π_{w ∈ path} w² (Neyshabur et al. 2015; Jiang et al. 2020, Eq. 44).

    Computed as Jiang et al. do: square every parameter (biases included, BatchNorm folded first), forward an
    all-ones input of shape ``(1, *input_shape)`` and sum the outputs. For ReLU (positively homogeneous,
    identity on positive inputs) networks this equals the sum over all input-to-output paths, a bias counting
    as a path starting at its unit; for other activations it is the same forward computation, not a path sum.
    """
    model = prepared(model)
    if any(d < 1 for d in input_shape):
        raise ValueError(f"The 'input_shape' parameter of path_norm must be positive sizes. Got {input_shape}.")
    with torch.no_grad():
        for p in model.parameters():
            p.pow_(2)
        return float(model(torch.ones((1, *input_shape), dtype=torch.float64)).sum())


class FisherRaoMethod(StrEnum):
    """How :func:`fisher_rao_norm` evaluates ⟨θ, ∇_θ ℓ⟩ per sample.

    * ``DIRECTIONAL`` (default): the definition, one forward-mode Jacobian-vector product of the per-sample
      losses along θ (attention runs its composite kernels, which support forward-mode AD); exact for any
      architecture; cost about 3 forward passes.
    * ``HOMOGENEOUS``: Liang et al. 2019's structural lemma ⟨θ, ∇_θ ℓ⟩ = (L+1) ⟨∂ℓ/∂f, f⟩ for a bias-free
      ReLU network with L+1 weight layers (the form Jiang et al. 2020 evaluate); one forward pass. It equals
      ``DIRECTIONAL`` only for such networks.
    """

    DIRECTIONAL = "directional"
    HOMOGENEOUS = "homogeneous"


@contextmanager
def _composite_attention() -> Iterator[None]:
    """Attention without fused kernels (MultiheadAttention fast path, flash SDPA), which lack forward-mode AD."""
    fastpath = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        with sdpa_kernel(SDPBackend.MATH):
            yield
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)


def _per_sample_loss(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    if y.is_floating_point():
        return 0.5 * ((out - y.reshape(out.shape)) ** 2).reshape(out.shape[0], -1).sum(dim=1)
    return F.cross_entropy(out, y, reduction="none")


def fisher_rao_norm(model: nn.Module, x: Any, y: Any, *, method: FisherRaoMethod | str = "directional") -> float:
    """Empirical Fisher-Rao norm ‖θ‖²_fr = (1/n) Σ_i ⟨θ, ∇_θ ℓ(f_θ(x_i), y_i)⟩² (Liang et al. 2019, Def. 2;
    Jiang et al. 2020, Eq. 45).

    ℓ is the cross-entropy for integer labels and ½‖f − y‖² for real targets; the labels are the observed ones
    (empirical, not model-sampled, Fisher). θ is every parameter of the BatchNorm-folded model. ``method``
    chooses the evaluation (:class:`FisherRaoMethod`); ``"homogeneous"`` uses (L+1)² ⟨∂ℓ/∂f, f⟩² with L+1
    the number of weight layers.
    """
    method = FisherRaoMethod(check_option("method", method, list(FisherRaoMethod), owner="fisher_rao_norm"))
    model = prepared(model)
    x = as_inputs(x)
    y = as_inputs(y, "y")
    if not y.is_floating_point():
        y = as_labels(y, x.shape[0])
        logits_of(model, x, y)
    elif y.shape[0] != x.shape[0]:
        raise ValueError(f"The 'y' parameter must have {x.shape[0]} rows to match x. Got {y.shape[0]}.")
    params = {k: v.detach() for k, v in model.named_parameters()}
    if method is FisherRaoMethod.DIRECTIONAL:
        with _composite_attention():
            _, inner = jvp(lambda p: _per_sample_loss(functional_call(model, p, (x,)), y), (params,), (params,))
    else:
        out = model(x).detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(_per_sample_loss(out, y).sum(), out)
        inner = len(weight_layers(model)) * (grad * out).reshape(out.shape[0], -1).sum(dim=1)
    return float((inner.detach() ** 2).mean())
