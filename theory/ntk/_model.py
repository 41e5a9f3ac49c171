"""A validated, functional view of a torch module: selected parameters, dtype casting, output flattening."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.func import functional_call

_BATCH_MIXING = (nn.modules.batchnorm._BatchNorm,)
_RANDOM_IN_TRAINING = (nn.modules.dropout._DropoutNd,)
#: fragments of the errors torch.func / autograd raise for in-place operations (vmap writes, version counters)
_IN_PLACE_MESSAGES = ("inplace", "in-place", "doesn't match the broadcast shape", "modified by an inplace")


@dataclass(frozen=True)
class ModelView:
    """The model ``f`` seen as a pure function of its selected parameters, in one dtype.

    ``names`` are the selected parameter names (in ``named_parameters`` order), ``params`` holds every
    parameter and ``buffers`` every buffer, detached and cast to ``dtype``; ``groups`` maps each owning
    module's path (the per-layer key) to the names it owns. With ``sum_outputs`` the view is the scalar
    g = (1/√O) Σ_o f_o of the pseudo-NTK (Mohamadi et al. 2023).
    """

    module: nn.Module
    names: tuple[str, ...]
    params: dict[str, Tensor]
    buffers: dict[str, Tensor]
    dtype: torch.dtype
    sum_outputs: bool = False

    @property
    def groups(self) -> dict[str, tuple[str, ...]]:
        out: dict[str, list[str]] = {}
        for name in self.names:
            out.setdefault(group_of(name), []).append(name)
        return {k: tuple(v) for k, v in out.items()}

    @property
    def selected(self) -> dict[str, Tensor]:
        return {n: self.params[n] for n in self.names}

    @property
    def n_params(self) -> int:
        return sum(self.params[n].numel() for n in self.names)

    def cast_input(self, x: Tensor) -> Tensor:
        return x.to(self.dtype) if x.is_floating_point() else x

    def __call__(self, x: Tensor, selected: dict[str, Tensor] | None = None) -> Tensor:
        """Outputs of the model on the batch ``x`` as a (B, O) tensor, with ``selected`` overriding parameters."""
        tensors = {**self.params, **self.buffers, **(selected or {})}
        with translate_torch_func_errors(self.module):
            out = functional_call(self.module, tensors, (x,))
        if not isinstance(out, Tensor):
            raise TypeError(f"The model {type(self.module).__name__} must return a Tensor. Got {type(out).__name__}.")
        out = out.reshape(out.shape[0], -1) if out.dim() != 1 else out.unsqueeze(1)
        return out.sum(1, keepdim=True) / math.sqrt(out.shape[1]) if self.sum_outputs else out

    def single(self, selected: dict[str, Tensor], x: Tensor) -> Tensor:
        """Outputs (O,) of one sample ``x`` (no batch axis); the function ``torch.func`` transforms."""
        return self(x.unsqueeze(0), selected)[0]


def group_of(name: str) -> str:
    """Per-layer key of a parameter: the path of the module that owns it (``""`` for the root module)."""
    return name.rpartition(".")[0]


def make_view(f: nn.Module, x1: Tensor, params: Iterable[str] | None, dtype: torch.dtype | None) -> ModelView:
    """Validate ``f``, ``params`` and ``dtype`` and build the functional view used by every implementation."""
    if not isinstance(f, nn.Module):
        raise TypeError(f"The 'f' argument must be a torch.nn.Module. Got {type(f).__name__} instead.")
    for path, module in f.named_modules():
        where = f"{type(module).__name__} at {path or '<root>'!r}"
        if isinstance(module, _BATCH_MIXING) and (module.training or module.running_mean is None):
            raise ValueError(
                f"{where} is in training mode (or keeps no running statistics): it mixes samples in a batch, so "
                "the per-sample kernel is undefined. Call f.eval() first (running statistics are then used)."
            )
        if isinstance(module, _RANDOM_IN_TRAINING) and module.training and module.p > 0:
            raise ValueError(f"{where} is in training mode, so the kernel would be random. Call f.eval() first.")
    all_named = dict(f.named_parameters())
    if params is None:
        names = tuple(n for n, p in all_named.items() if p.requires_grad)
        if not names:
            raise ValueError(f"The model {type(f).__name__} has no parameter with requires_grad=True.")
    else:
        if isinstance(params, str):
            raise TypeError(f"The 'params' argument must be an iterable of parameter names. Got the str {params!r}.")
        wanted = list(params)
        unknown = [n for n in wanted if n not in all_named]
        if unknown:
            raise ValueError(
                f"The 'params' argument names unknown parameters {unknown}; valid names: {list(all_named)}."
            )
        frozen = [n for n in wanted if not all_named[n].requires_grad]
        if frozen:
            raise ValueError(f"The 'params' argument selects parameters without grad (requires_grad=False): {frozen}.")
        if not wanted:
            raise ValueError("The 'params' argument must select at least one parameter. Got an empty iterable.")
        names = tuple(n for n in all_named if n in set(wanted))
    if dtype is None:
        dtype = x1.dtype if x1.is_floating_point() else all_named[names[0]].dtype
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ValueError(f"The 'dtype' argument must be a floating torch.dtype or None. Got {dtype!r} instead.")
    device = x1.device

    def cast(t: Tensor) -> Tensor:
        return t.detach().to(device=device, dtype=dtype if t.is_floating_point() else t.dtype)

    return ModelView(
        module=f,
        names=names,
        params={n: cast(p) for n, p in all_named.items()},
        buffers={n: cast(b) for n, b in f.named_buffers()},
        dtype=dtype,
    )


@contextlib.contextmanager
def translate_torch_func_errors(module: nn.Module) -> Iterator[None]:
    """Turn torch.func's in-place errors into one ValueError naming the in-place modules of ``module``."""
    try:
        yield
    except RuntimeError as err:
        text = str(err).lower()
        if not any(key in text for key in _IN_PLACE_MESSAGES):
            raise
        culprits = [p or "<root>" for p, m in module.named_modules() if getattr(m, "inplace", False)]
        hint = f" In-place modules: {culprits}." if culprits else ""
        raise ValueError(
            f"The model {type(module).__name__} performs an in-place operation that torch.func or autograd "
            f"rejects ({err}).{hint} Use out-of-place operations (e.g. ReLU(inplace=False), y = x + z)."
        ) from err
