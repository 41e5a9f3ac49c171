"""The empirical NTK Θ(x1, x2) = J(x1) J(x2)ᵀ: one entry point, three implementations, blocked over samples."""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from enum import StrEnum
from typing import Any, Protocol

import torch
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode

from theory._validation import check_option, check_positive_int
from theory.ntk import _guards, structured
from theory.ntk._model import ModelView, make_view
from theory.ntk.jacobian import JacobianBackend
from theory.ntk.ntk_vp import NTKVPBackend

logger = logging.getLogger("theory.ntk")

_BLOCK_BYTES = 2**28  # bound on one block's features and on one block's kernel temporaries
_CACHE_BYTES = 2**29  # column-block features are kept (not recomputed) while they fit in this


class NTKImplementation(StrEnum):
    """How ``empirical_ntk`` computes Θ; the default is ``AUTO``.

    - ``STRUCTURED``: per-layer closed forms from hooked activations a and backpropagated δ, e.g. for a
      dense layer Θ_W = (a aᵀ) ⊙ (δ δᵀ); no Jacobian is built. Time ≈ N²·Σ_l (d_in + O²·d_out), the
      (N·O × d_out)(d_out × N·O) GEMMs dominate.
    - ``JACOBIAN``: ``vmap(jacrev)`` per block and a contraction; time N·O·[FP] + N²·O²·P, memory B·O·P.
    - ``NTK_VP``: NTK-vector products (vjp then jvp); time N²·O·[FP], memory chunk·P, Θ never stored whole.
    - ``AUTO``: ``STRUCTURED`` if every parameter-owning module is supported, else the cheaper of the
      other two by the cost formulas above (Novak et al. 2022), [FP] counted by ``FlopCounterMode``.
    """

    AUTO = "auto"
    STRUCTURED = "structured"
    JACOBIAN = "jacobian"
    NTK_VP = "ntk_vp"


class KernelBackend(Protocol):
    """What an implementation provides to the blocked driver: per-block features and their contraction."""

    groups: dict[str, tuple[str, ...]]
    mode: str  # "full", "trace" or "diag"

    def bytes_per_sample(self, x: Tensor) -> int:
        """Memory of one sample's features (sizes the default block)."""

    def features(self, x: Tensor) -> Any:
        """Features of a block of inputs, reused for every block it pairs with."""

    def contract(self, f1: Any, f2: Any, mode: str) -> dict[str, Tensor]:
        """Kernel block {group: (B1, B2, ...)} of two blocks' features; mode is "full", "trace" or "diag"."""


_BACKENDS: dict[NTKImplementation, type[KernelBackend]] = {
    NTKImplementation.STRUCTURED: structured.StructuredBackend,
    NTKImplementation.JACOBIAN: JacobianBackend,
    NTKImplementation.NTK_VP: NTKVPBackend,
}


def empirical_ntk(
    f: nn.Module,
    x1: Tensor,
    x2: Tensor | None = None,
    *,
    params: Iterable[str] | None = None,
    trace_outputs: bool = False,
    diagonal_outputs: bool = False,
    implementation: NTKImplementation | str = NTKImplementation.AUTO,
    block_size: int | None = None,
    dtype: torch.dtype | None = None,
    per_layer: bool = False,
) -> Tensor | dict[str, Tensor]:
    """Empirical neural tangent kernel Θ(x, x')_{oo'} = Σ_p ∂f_o(x)/∂θ_p ∂f_o'(x')/∂θ_p (Jacot et al. 2018).

    Computed in blocks of ``block_size`` samples written into one preallocated output; with ``x2=None`` only
    the upper block triangle is computed and mirrored. The implementation ``"auto"`` chose is logged on the
    ``theory.ntk`` logger (INFO) and returned by :func:`resolve_implementation`.

    Args:
        f: the model, mapping a batch (N, ...) to outputs flattened to (N, O). It must not mix samples
            (BatchNorm must be in eval mode).
        x1: inputs (N1, ...). x2: inputs (N2, ...) with the same trailing shape, device and dtype; None means x1.
        params: names of the parameters that count (default: all with ``requires_grad``).
        trace_outputs: return the mean over outputs of the diagonal, Θ_tr = (1/O) Σ_o Θ_oo, shape (N1, N2).
        diagonal_outputs: return the output diagonal Θ_oo, shape (N1, N2, O).
        implementation: a :class:`NTKImplementation` (default ``"auto"``).
        block_size: samples per block (default: sized to keep block temporaries near 256 MB).
        dtype: compute and result dtype (default: ``x1``'s floating dtype, else the parameters').
        per_layer: return ``{module path: kernel}`` with one entry per parameter-owning module; they sum
            to the total.

    Returns:
        Θ of shape (N1, N2, O, O), (N1, N2) traced or (N1, N2, O) diagonal, or a dict of such tensors.

    Raises:
        ValueError / TypeError naming the argument or module for bad input (BatchNorm in training mode,
        in-place operations torch.func rejects, parameters without grad, mismatched x2), and the named
        :class:`~theory.ntk.NTKInputError` subclasses found by a probe on a few samples before any work: NaN/Inf
        inputs, inputs the model cannot take, a forward that modifies its input in place, is not deterministic
        or mixes samples; :class:`~theory.ntk.KernelMemoryError` for a kernel that would not fit in memory.

    Example:
        >>> f = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))
        >>> tuple(empirical_ntk(f, torch.randn(5, 3), trace_outputs=True).shape)
        (5, 5)
    """
    impl = check_option("implementation", implementation, [i.value for i in NTKImplementation], owner="empirical_ntk")
    impl = NTKImplementation(impl)
    check_positive_int("block_size", block_size, allow_none=True, owner="empirical_ntk")
    if trace_outputs and diagonal_outputs:
        raise ValueError("Of 'trace_outputs' and 'diagonal_outputs' of empirical_ntk at most one may be True.")
    _check_inputs(x1, x2)
    view = make_view(f, x1, params, dtype)
    _guards.probe_model(view, x1, x2)
    if impl is NTKImplementation.AUTO:
        impl, reason = _resolve(view, x1, x2)
        logger.info("empirical_ntk: implementation=%s (%s)", impl.value, reason)
    elif impl is NTKImplementation.STRUCTURED:
        problem = structured.unsupported_reason(view, view.cast_input(x1))
        if problem:
            raise ValueError(f"implementation='structured' of empirical_ntk cannot handle this model: {problem}.")
    groups = view.groups if per_layer else {"": view.names}
    mode = "trace" if trace_outputs else "diag" if diagonal_outputs else "full"
    backend = _BACKENDS[impl](view, groups, mode)
    _guards.check_memory(backend, view, x1, x2, block_size)
    out = _blocked(backend, view, view.cast_input(x1), None if x2 is None else view.cast_input(x2), block_size)
    return out if per_layer else out[""]


def resolve_implementation(
    f: nn.Module, x1: Tensor, x2: Tensor | None = None, *, params: Iterable[str] | None = None
) -> NTKImplementation:
    """The implementation ``empirical_ntk(..., implementation="auto")`` runs for these arguments."""
    _check_inputs(x1, x2)
    view = make_view(f, x1, params, None)
    _guards.probe_model(view, x1, x2)
    return _resolve(view, x1, x2)[0]


def _resolve(view: ModelView, x1: Tensor, x2: Tensor | None) -> tuple[NTKImplementation, str]:
    problem = structured.unsupported_reason(view, view.cast_input(x1))
    if not problem:
        return NTKImplementation.STRUCTURED, "every parameter-owning module has a closed form"
    n1 = x1.shape[0]
    n2 = n1 if x2 is None else x2.shape[0]
    with FlopCounterMode(display=False) as counter:
        n_out = view(view.cast_input(x1[:1])).shape[1]
    fp = max(counter.get_total_flops(), 1)
    cost_jac = (n1 + n2) * n_out * fp + n1 * n2 * n_out**2 * view.n_params
    cost_vp = n1 * n2 * n_out * fp
    impl = NTKImplementation.JACOBIAN if cost_jac <= cost_vp else NTKImplementation.NTK_VP
    return impl, f"structured unsupported ({problem}); cost jacobian {cost_jac:.3g} vs ntk_vp {cost_vp:.3g}"


def _check_inputs(x1: Tensor, x2: Tensor | None) -> None:
    if not isinstance(x1, Tensor):
        raise TypeError(f"The 'x1' argument must be a torch.Tensor. Got {type(x1).__name__} instead.")
    if x1.dim() == 0 or x1.shape[0] == 0:
        raise ValueError(f"The 'x1' argument must have a non-empty batch axis. Got shape {tuple(x1.shape)}.")
    if x2 is None:
        return
    if not isinstance(x2, Tensor):
        raise TypeError(f"The 'x2' argument must be a torch.Tensor or None. Got {type(x2).__name__} instead.")
    if x2.dim() == 0 or x2.shape[1:] != x1.shape[1:] or x2.shape[0] == 0:
        raise ValueError(
            f"The 'x2' argument must have shape (N2, {', '.join(map(str, x1.shape[1:]))}) like x1. "
            f"Got {tuple(x2.shape)} instead."
        )
    if x2.device != x1.device or x2.dtype != x1.dtype:
        raise ValueError(
            f"The 'x2' argument must match x1's device and dtype ({x1.device}, {x1.dtype}). "
            f"Got ({x2.device}, {x2.dtype}) instead."
        )


def _blocked(
    backend: KernelBackend, view: ModelView, x1: Tensor, x2: Tensor | None, block: int | None
) -> dict[str, Tensor]:
    """Fill preallocated kernels block by block; column features are cached while they fit in memory."""
    symmetric, mode = x2 is None, backend.mode
    x2 = x1 if symmetric else x2
    n1, n2 = x1.shape[0], x2.shape[0]
    n_out = view(x1[:1]).shape[1]
    itemsize = torch.finfo(view.dtype).bits // 8
    per_pair = {"full": n_out * n_out, "diag": n_out, "trace": 1}[mode]
    feature_bytes = max(backend.bytes_per_sample(x1), 1)
    if block is None:
        kernel_bound = math.isqrt(_BLOCK_BYTES // (4 * itemsize * per_pair))
        # with x2 = x1, >= 4 row blocks leave 10 of 16 block products to compute (the upper triangle)
        split = -(-n1 // 4) if symmetric and n1 >= 64 else n1
        block = max(1, min(split, n2, kernel_bound, _BLOCK_BYTES // feature_bytes))
    tail = (n_out, n_out) if mode == "full" else (n_out,) if mode == "diag" else ()
    out = {key: torch.empty((n1, n2, *tail), dtype=view.dtype, device=x1.device) for key in backend.groups}
    cache_columns = feature_bytes * n2 <= _CACHE_BYTES
    cache: dict[int, Any] = {}

    def column(j: int) -> Any:
        if j in cache:
            return cache[j]
        feats = backend.features(x2[j : j + block])
        if cache_columns:
            cache[j] = feats
        return feats

    with torch.no_grad():
        for i in range(0, n1, block):
            rows = column(i) if symmetric else backend.features(x1[i : i + block])
            for j in range(i if symmetric else 0, n2, block):
                blocks = backend.contract(rows, rows if symmetric and j == i else column(j))
                for key, value in blocks.items():
                    out[key][i : i + block, j : j + block] = value
                    if symmetric and j > i:
                        out[key][j : j + block, i : i + block] = (
                            value.transpose(0, 1).transpose(-1, -2) if (mode == "full") else value.transpose(0, 1)
                        )
    return out
