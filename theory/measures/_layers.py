"""Model preparation shared by the measures: BatchNorm folding, weight matrices, parameter vectors, data checks.

Conventions (Jiang et al. 2020, App. C; Neyshabur et al. 2018):

* Every measure sees a float64 copy of the model in eval mode with each BatchNorm folded into the Linear/Conv
  module registered immediately before it (:func:`fold_batchnorm`); the caller's model is never modified.
* A *layer* is every parameter with ``ndim >= 2``, as a matrix ``out x in``: Linear weights as stored, Conv
  kernels reshaped ``out x (in/groups * prod(kernel))``, Embedding tables transposed (``dim x vocab``, the map
  from one-hot tokens), any other parameter (e.g. attention projections) reshaped ``shape[0] x rest``.
* Biases and 1-D norm parameters (LayerNorm gains, BatchNorm that could not be folded) are not layers: the
  layer-wise norms (#29-#32, #40, #42, Bartlett, spectra) ignore them, while the parameter-vector measures
  (#params, #44 path norm, #45 Fisher-Rao, #48/#53/#61 PAC-Bayes) include every parameter.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.utils import prune

CONV_TYPES = (nn.Conv1d, nn.Conv2d)
_FOLDABLE = (nn.Linear, *CONV_TYPES)
_BN_TYPES = (nn.BatchNorm1d, nn.BatchNorm2d)


@dataclass(frozen=True)
class Layer:
    """One weight matrix: its parameter ``name``, the float64 ``matrix`` (out x in) and the owning ``module``."""

    name: str
    matrix: torch.Tensor
    module: nn.Module


def check_model(model: Any, name: str = "model") -> nn.Module:
    """Return ``model`` if it is an ``nn.Module`` with parameters; else raise ``TypeError``/``ValueError``."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"The {name!r} parameter must be a torch.nn.Module. Got {type(model).__name__} instead.")
    if next(model.parameters(), None) is None:
        raise ValueError(f"The {name!r} parameter must have at least one parameter. Got a module with none.")
    return model


def _fold_into(layer: nn.Module, bn: nn.Module) -> None:
    """y = γ (W a + b − μ)/√(v + ε) + β  ⇒  W ← s W, b ← s (b − μ) + β with s = γ/√(v + ε)."""
    scale = 1.0 / torch.sqrt(bn.running_var + bn.eps)
    shift = -bn.running_mean * scale
    if bn.affine:
        scale, shift = scale * bn.weight, shift * bn.weight + bn.bias
    bias = layer.bias if layer.bias is not None else torch.zeros_like(scale)
    layer.weight.copy_(layer.weight * scale.reshape(-1, *([1] * (layer.weight.ndim - 1))))
    new_bias = bias * scale + shift
    if layer.bias is None:
        layer.bias = nn.Parameter(new_bias.detach().clone())
    else:
        layer.bias.copy_(new_bias)


def _set_submodule(model: nn.Module, name: str, module: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent_name) if parent_name else model, child, module)


def detached_copy(model: nn.Module) -> nn.Module:
    """A deep copy of ``model`` with ``torch.nn.utils.prune`` reparametrisations made permanent.

    A pruned layer trains ``weight_orig`` and uses ``weight = weight_orig * weight_mask``, a non-leaf tensor
    attribute that ``copy.deepcopy`` refuses; the copy holds the masked weight as an ordinary parameter, which is
    what every measure should see (pruned weights are zeros of the network, Frankle & Carbin 2019).
    """
    # The masked weight is a derived attribute (recomputed by the pruning pre-hook at every forward, possibly left
    # over from a torch.func transform): the copy drops it instead of copying it.
    memo: dict[int, Any] = {
        id(getattr(module, hook._tensor_name)): None
        for module in model.modules()
        for hook in module._forward_pre_hooks.values()
        if isinstance(hook, prune.BasePruningMethod) and hasattr(module, hook._tensor_name)
    }
    clone = copy.deepcopy(model, memo)
    for module in clone.modules():
        for hook in list(module._forward_pre_hooks.values()):
            if isinstance(hook, prune.BasePruningMethod):
                prune.remove(module, hook._tensor_name)
    return clone


@torch.no_grad()
def fold_batchnorm(model: nn.Module, *, dtype: torch.dtype | None = None) -> nn.Module:
    """A copy of ``model`` in eval mode with each BatchNorm folded into the preceding Linear/Conv layer.

    A BatchNorm1d/2d with running statistics is folded into the Linear/Conv1d/Conv2d leaf module registered
    immediately before it (registration order stands for execution order, as in Neyshabur et al. 2017's and
    Jiang et al. 2020's reparametrisation) when its ``num_features`` equals that layer's outputs; it is then
    replaced by ``nn.Identity``. Other BatchNorms stay as they are (eval mode: an affine map with running
    statistics, batch statistics without them) and only enter the parameter-vector measures. ``dtype``
    converts the copy before folding (float64 for exact arithmetic).
    """
    model = detached_copy(check_model(model)).eval()
    if dtype is not None:
        model = model.to(dtype)
    previous = None
    for name, module in list(model.named_modules()):
        if next(module.children(), None) is not None:
            continue
        out_features = getattr(previous, "out_features", getattr(previous, "out_channels", None))
        if (
            isinstance(module, _BN_TYPES)
            and module.track_running_stats
            and isinstance(previous, _FOLDABLE)
            and out_features == module.num_features
        ):
            _fold_into(previous, module)
            _set_submodule(model, name, nn.Identity())
            previous = None
            continue
        previous = module
    return model


def prepared(model: nn.Module) -> nn.Module:
    """The float64, eval-mode, BatchNorm-folded copy that every measure works on."""
    return fold_batchnorm(model, dtype=torch.float64)


def weight_layers(model: nn.Module) -> list[Layer]:
    """Every parameter with ``ndim >= 2`` as a float64 ``out x in`` matrix, in registration order (see module doc);
    ``ValueError`` when there is none."""
    layers = []
    for module_name, module in model.named_modules():
        for param_name, param in module.named_parameters(recurse=False):
            if param.ndim < 2:
                continue
            w = param.detach().to(torch.float64)
            matrix = w.T if isinstance(module, nn.Embedding) else w.reshape(w.shape[0], -1)
            name = f"{module_name}.{param_name}" if module_name else param_name
            layers.append(Layer(name, matrix, module))
    if not layers:
        raise ValueError("The 'model' parameter must have a weight layer (a parameter with ndim >= 2). Got none.")
    return layers


def paired_layers(model: nn.Module, init_model: nn.Module) -> list[tuple[Layer, Layer]]:
    """Layers of ``model`` and ``init_model`` matched by name; ``ValueError`` if the architectures differ."""
    now, init = weight_layers(model), weight_layers(init_model)
    if [(a.name, a.matrix.shape) for a in now] != [(b.name, b.matrix.shape) for b in init]:
        expected = [(a.name, tuple(a.matrix.shape)) for a in now]
        actual = [(b.name, tuple(b.matrix.shape)) for b in init]
        raise ValueError(
            "The 'init_model' parameter must have the same weight layers (names and shapes) as 'model': "
            f"{expected}. Got {actual} instead."
        )
    return list(zip(now, init, strict=True))


def parameter_vector(model: nn.Module) -> torch.Tensor:
    """All parameters (weights, biases, norm parameters) flattened into one float64 vector."""
    return torch.nn.utils.parameters_to_vector([p.detach().to(torch.float64) for p in model.parameters()])


def as_inputs(x: Any, name: str = "x") -> torch.Tensor:
    """``x`` as a tensor with a leading sample axis: floating inputs cast to float64, integer ones kept."""
    if isinstance(x, np.ndarray | list | tuple):
        x = torch.as_tensor(np.asarray(x))
    if not isinstance(x, torch.Tensor):
        raise TypeError(
            f"The {name!r} parameter must be a torch.Tensor or numpy array. Got {type(x).__name__} instead."
        )
    if x.ndim < 1 or x.shape[0] == 0:
        raise ValueError(
            f"The {name!r} parameter must have a non-empty leading sample axis. Got shape {tuple(x.shape)}."
        )
    x = x.detach()
    return x.to(torch.float64) if x.is_floating_point() else x


def as_labels(y: Any, n: int, name: str = "y") -> torch.Tensor:
    """``y`` as a 1-D int64 tensor of ``n`` class indices; ``ValueError`` for real-valued (regression) targets."""
    y = as_inputs(y, name)
    if y.is_floating_point() or y.dtype == torch.bool:
        raise ValueError(
            f"The {name!r} parameter must hold integer class labels for a classification measure. "
            f"Got dtype {y.dtype} (regression targets?) instead."
        )
    if y.ndim != 1 or y.shape[0] != n:
        raise ValueError(f"The {name!r} parameter must have shape ({n},) to match x. Got {tuple(y.shape)} instead.")
    return y.long()


def logits_of(model: nn.Module, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
    """``model(x)`` checked to be ``n x C`` logits with ``C >= 2`` (and labels in ``[0, C)`` when given)."""
    with torch.no_grad():
        out = model(x)
    if out.ndim != 2 or out.shape[1] < 2:
        raise ValueError(
            f"A classification measure needs the model to output (n, C >= 2) logits. Got shape {tuple(out.shape)}."
        )
    if y is not None and (y.min() < 0 or y.max() >= out.shape[1]):
        raise ValueError(f"The 'y' parameter must hold labels in [0, {out.shape[1]}). Got [{y.min()}, {y.max()}].")
    return out
