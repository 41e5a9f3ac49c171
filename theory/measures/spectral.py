"""Spectral-norm measures (Bartlett et al. 2017; Neyshabur et al. 2018; Jiang et al. 2020, Eqs. 29-32)."""

from __future__ import annotations

import math
from enum import StrEnum
from typing import Any

import numpy as np
import torch
from scipy.sparse.linalg import LinearOperator, svds
from torch import nn
from torch.func import vjp

from theory._validation import check_in_range, check_option
from theory.measures._layers import CONV_TYPES, Layer, as_inputs, check_model, paired_layers, prepared, weight_layers
from theory.measures.norms import margin


class ConvNorm(StrEnum):
    """How the spectral norm of a convolution layer is taken.

    * ``RESHAPE`` (default): ‖K‖₂ of the kernel reshaped ``out x (in·k)`` (Jiang et al. 2020's convention); one
      SVD of a small matrix. Not the operator norm: with zero padding each output patch is K times an input
      patch and each input entry lies in at most k patches, so the operator norm is at most √k ‖K‖₂.
    * ``OPERATOR``: the exact operator norm of the convolution as a linear map on the inputs the layer sees
      (padding and stride included), by Lanczos iterations on AᵀA (:func:`conv_operator_norm`); needs one
      input sample to know the shapes. Cost: 2 convolutions per iteration, a few dozen iterations.
    """

    RESHAPE = "reshape"
    OPERATOR = "operator"


def _input_shapes(model: nn.Module, x: torch.Tensor) -> dict[nn.Module, tuple[int, ...]]:
    shapes: dict[nn.Module, tuple[int, ...]] = {}

    def record(module: nn.Module, args: tuple) -> None:
        shapes.setdefault(module, tuple(args[0].shape))

    hooks = [m.register_forward_pre_hook(record) for m in model.modules() if isinstance(m, CONV_TYPES)]
    try:
        with torch.no_grad():
            model(x[:1])
    finally:
        for h in hooks:
            h.remove()
    return shapes


def conv_operator_norm(conv: nn.Module, input_shape: tuple[int, ...], *, random_state=None) -> float:
    """Largest singular value of the bias-free convolution ``conv`` acting on inputs of ``input_shape``.

    The operator A (padding, stride, dilation and groups included) is never formed: Lanczos bidiagonalisation
    (``scipy.sparse.linalg.svds``, ARPACK; a Krylov-accelerated power iteration on AᵀA) uses products with A
    (the convolution) and Aᵀ (its adjoint by ``torch.func.vjp``, exact for a linear map), converging to machine
    precision where plain power iteration stalls on nearly equal top singular values. ``random_state`` seeds
    the start vector. Sedghi et al. 2019 give the same quantity in closed form for circular padding only.
    """
    if not isinstance(conv, CONV_TYPES):
        raise TypeError(f"The 'conv' parameter must be an nn.Conv1d or nn.Conv2d. Got {type(conv).__name__}.")
    weight = conv.weight.detach().to(torch.float64)
    shape = (1, *input_shape[1:])
    probe = torch.zeros(shape, dtype=torch.float64)
    out, adjoint = vjp(lambda a: conv._conv_forward(a, weight, None), probe)
    n_out, n_in = out.numel(), probe.numel()

    def matvec(v: np.ndarray) -> np.ndarray:
        return (
            conv._conv_forward(torch.from_numpy(np.ascontiguousarray(v).reshape(shape)), weight, None)
            .reshape(-1)
            .numpy()
        )

    def rmatvec(u: np.ndarray) -> np.ndarray:
        return adjoint(torch.from_numpy(np.ascontiguousarray(u).reshape(out.shape)))[0].reshape(-1).numpy()

    if min(n_out, n_in) == 1:  # a row or column vector: its Euclidean norm
        return float(np.linalg.norm(matvec(np.ones(1)) if n_in == 1 else rmatvec(np.ones(1))))
    op = LinearOperator((n_out, n_in), matvec=matvec, rmatvec=rmatvec, dtype=np.float64)
    v0 = np.random.default_rng(random_state).standard_normal(min(n_out, n_in))
    return float(svds(op, k=1, v0=v0, return_singular_vectors=False)[0])


def spectral_norms(
    model: nn.Module, *, conv_norm: ConvNorm | str = "reshape", x: Any = None, random_state=None
) -> np.ndarray:
    """‖W_i‖₂ for every weight layer (see :mod:`theory.measures._layers`), BatchNorm folded first.

    Args:
        conv_norm: :class:`ConvNorm`; ``"operator"`` needs ``x`` (one sample fixes each conv's input shape).
        random_state: seeds the Lanczos start vectors of ``"operator"``.
    """
    conv_norm = ConvNorm(check_option("conv_norm", conv_norm, list(ConvNorm), owner="spectral_norms"))
    model = prepared(check_model(model))
    layers = weight_layers(model)
    if conv_norm is ConvNorm.RESHAPE:
        return _matrix_norms(layers)
    if x is None:
        raise ValueError("The 'x' parameter of spectral_norms is required with conv_norm='operator'. Got None.")
    shapes = _input_shapes(model, as_inputs(x))
    rng = np.random.default_rng(random_state)
    return np.array(
        [
            conv_operator_norm(layer.module, shapes[layer.module], random_state=rng)
            if isinstance(layer.module, CONV_TYPES) and layer.module in shapes
            else float(torch.linalg.matrix_norm(layer.matrix, ord=2))
            for layer in layers
        ]
    )


def _matrix_norms(layers: list[Layer]) -> np.ndarray:
    return np.array([float(torch.linalg.matrix_norm(layer.matrix, ord=2)) for layer in layers])


def log_product_spectral_norms(model: nn.Module, **kwargs: Any) -> float:
    """log Π_i ‖W_i‖₂² = Σ_i 2 log ‖W_i‖₂ (Jiang et al. 2020, Eq. 32); ``kwargs`` go to :func:`spectral_norms`."""
    return float(2 * np.log(spectral_norms(model, **kwargs)).sum())


def bartlett_spectral_complexity(
    model: nn.Module,
    init_model: nn.Module | None = None,
    *,
    lipschitz: float = 1.0,
    spec: np.ndarray | None = None,
) -> float:
    """Spectral complexity R = (Π_i ρ_i ‖A_i‖_σ) (Σ_i ‖A_iᵀ − M_iᵀ‖_{2,1}^{2/3} / ‖A_i‖_σ^{2/3})^{3/2}
    (Bartlett, Foster & Telgarsky 2017, Eq. 1.2).

    ‖Aᵀ‖_{2,1} is the sum of the ℓ2 norms of the rows of A (the weights into each unit). The reference
    matrices M_i are the weights of ``init_model`` when given, else 0; ρ_i = ``lipschitz`` for every layer
    (1 for ReLU/tanh). Evaluated in log space; the result overflows to ``inf`` beyond float64 range. ``spec``
    overrides the spectral norms ‖A_i‖_σ (e.g. exact conv norms from :func:`spectral_norms`).
    """
    check_in_range("lipschitz", lipschitz, 0.0, None, inclusive=(False, True), owner="bartlett_spectral_complexity")
    model = prepared(check_model(model))
    if init_model is None:
        pairs = [(layer, None) for layer in weight_layers(model)]
    else:
        pairs = paired_layers(model, prepared(check_model(init_model, "init_model")))
    norms = _matrix_norms([a for a, _ in pairs]) if spec is None else np.asarray(spec, dtype=np.float64)
    l21 = np.array([float((a.matrix - (0 if b is None else b.matrix)).norm(dim=1).sum()) for a, b in pairs])
    dispersion = ((l21 / norms) ** (2 / 3)).sum()
    if dispersion == 0:  # every A_i equals its reference (e.g. at initialisation with M_i = W_i⁰)
        return 0.0
    log_r = np.log(lipschitz * norms).sum() + 1.5 * np.log(dispersion)
    return float(np.exp(log_r)) if log_r < 709 else math.inf


def neyshabur_pacbayes_bound(
    model: nn.Module, x: Any, y: Any, *, delta: float = 0.05, spec: np.ndarray | None = None
) -> float:
    """√[(B² d² h ln(dh) Π_i ‖W_i‖₂² Σ_i ‖W_i‖_F²/‖W_i‖₂² + ln(d m/δ)) / (γ² m)]
    (Neyshabur, Bhojanapalli & Srebro 2018, Thm. 1, without the absolute constant of its O(·)).

    B = max_i ‖x_i‖₂ over the m samples, d the number of weight layers, h their largest dimension, γ the
    10th-percentile margin (:func:`margin`; ``inf`` when γ <= 0). ``spec`` overrides the spectral norms.
    """
    check_in_range("delta", delta, 0.0, 1.0, inclusive=(False, False), owner="neyshabur_pacbayes_bound")
    model = prepared(check_model(model))
    x = as_inputs(x)
    if not x.is_floating_point():
        raise ValueError("The 'x' parameter of neyshabur_pacbayes_bound must be real-valued. Got integer inputs.")
    gamma = margin(model, x, y)
    if gamma <= 0:
        return math.inf
    layers = weight_layers(model)
    norms = _matrix_norms(layers) if spec is None else np.asarray(spec, dtype=np.float64)
    fro = np.array([float((layer.matrix**2).sum()) for layer in layers])
    d, m = len(layers), x.shape[0]
    h = max(max(layer.matrix.shape) for layer in layers)
    b2 = float((x.reshape(m, -1) ** 2).sum(dim=1).max())
    with np.errstate(divide="ignore"):
        log_first = np.log(b2 * d**2 * h * math.log(d * h)) + 2 * np.log(norms).sum() + np.log((fro / norms**2).sum())
    log_num = np.logaddexp(log_first, math.log(math.log(d * m / delta)))
    log_bound = 0.5 * (log_num - 2 * math.log(gamma) - math.log(m))
    return float(np.exp(log_bound)) if log_bound < 709 else math.inf
