"""The empirical NTK Θ(x1, x2) = J(x1) J(x2)ᵀ: one entry point, three implementations, blocked over samples."""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Iterable
from enum import StrEnum

import torch
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode

from theory._validation import check_option, check_positive_int
from theory.ntk import _blocks, _guards, structured
from theory.ntk._model import ModelView, make_view
from theory.ntk.jacobian import JacobianBackend
from theory.ntk.ntk_vp import NTKVPBackend

logger = logging.getLogger("theory.ntk")


class NTKImplementation(StrEnum):
    """How ``empirical_ntk`` computes Θ; the default is ``AUTO``.

    - ``STRUCTURED``: per-layer closed forms from hooked activations a and backpropagated δ, e.g. for a
      dense layer Θ_W = (a aᵀ) ⊙ (δ δᵀ); no Jacobian is built. Time ≈ N²·Σ_l (d_in + O²·d_out), the
      (N·O × d_out)(d_out × N·O) GEMMs dominate.
    - ``JACOBIAN``: ``vmap(jacrev)`` per block and a contraction; time N·O·[FP] + N²·O²·P, memory B·O·P.
    - ``NTK_VP``: NTK-vector products (vjp then jvp); time N²·O·[FP], memory chunk·P, Θ never stored whole.
    - ``AUTO``: ``STRUCTURED`` if every parameter-owning module is supported, else the cheaper of the
      other two by the cost formulas above (Novak et al. 2022), [FP] counted by ``FlopCounterMode`` on the
      inputs' device, Jacobian blocks that exceed that device's memory budget counted as recomputed.
    """

    AUTO = "auto"
    STRUCTURED = "structured"
    JACOBIAN = "jacobian"
    NTK_VP = "ntk_vp"


_BACKENDS: dict[NTKImplementation, type[_blocks.KernelBackend]] = {
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
    sum_outputs: bool = False,
    sketch_dim: int | None = None,
    random_state: int | None = None,
) -> Tensor | dict[str, Tensor]:
    """Empirical neural tangent kernel Θ(x, x')_{oo'} = Σ_p ∂f_o(x)/∂θ_p ∂f_o'(x')/∂θ_p (Jacot et al. 2018).

    Computed in blocks of samples written into one preallocated output, in bounded memory; with ``x2=None``
    only the upper triangle is computed and mirrored. Runs on the device of ``x1`` (the model's parameters are
    copied there). The implementation ``"auto"`` chose is logged on the ``theory.ntk`` logger (INFO) and
    returned by :func:`resolve_implementation`.

    Args:
        f: the model, mapping a batch (N, ...) to outputs flattened to (N, O). It must not mix samples
            (BatchNorm must be in eval mode).
        x1: inputs (N1, ...). x2: inputs (N2, ...) with the same trailing shape, device and dtype; None means x1.
        params: names of the parameters that count (default: all with ``requires_grad``).
        trace_outputs: return the mean over outputs of the diagonal, Θ_tr = (1/O) Σ_o Θ_oo, shape (N1, N2).
        diagonal_outputs: return the output diagonal Θ_oo, shape (N1, N2, O).
        implementation: a :class:`NTKImplementation` (default ``"auto"``).
        block_size: samples whose features (and working memory) are held at once (default: as many as a
            memory budget allows, 2 GiB on the host, a quarter of the free memory on CUDA, at most half of the
            memory left after the result; see :mod:`theory.ntk._blocks`); ``block_size >= N`` computes every
            feature once in one block.
        dtype: compute and result dtype (default: ``x1``'s floating dtype, else the parameters').
        per_layer: return ``{module path: kernel}`` with one entry per parameter-owning module; they sum
            to the total.
        sum_outputs: return the pseudo-NTK of Mohamadi et al. 2023, the kernel of the scaled summed outputs
            g = (1/√O) Σ_o f_o: Θ_p(x, x') = (1/O) Σ_{o,o'} Θ_oo'(x, x'), shape (N1, N2); one backward per
            sample instead of O. Θ_p − Θ_tr = (1/O) Σ_{o≠o'} Θ_oo', and Mohamadi et al. bound it: at
            initialisation the cross-output blocks vanish as the readout widens, so Θ_p → Θ_tr; after
            training they need not.
        sketch_dim: project each layer's per-sample gradients with more than ``sketch_dim`` coordinates on
            ``sketch_dim`` count-sketch directions S (E[S Sᵀ] = I, Charikar et al. 2002), so the kernel is an
            unbiased estimate Θ̂ = (J S)(J S)ᵀ held in O·k memory per sample (cf. TRAK, Park et al. 2023).
            Structured closed forms (dense layers, few-position convs) stay exact. Implementations
            ``structured`` and ``jacobian`` (``auto`` picks one of them).
        random_state: seeds the sketch (default: fresh randomness).

    Which kernel for large N: the exact kernel while its time (N·O backward passes + N²·O·P for the traced
    Gram) is affordable; ``sum_outputs`` when an (N, N) kernel is enough and a model near initialisation
    has a wide readout (O× fewer backward passes, a bias that does not shrink with N); ``sketch_dim`` when the
    per-sample gradients (O·P floats each) do not fit and N is large enough for the Gram to dominate (error
    ~ 1/√k, unbiased); :func:`theory.ntk_operator` with Lanczos when only the top of the spectrum is needed.

    Returns:
        Θ of shape (N1, N2, O, O), (N1, N2) traced or summed, (N1, N2, O) diagonal, or a dict of such tensors.

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
    check_positive_int("sketch_dim", sketch_dim, allow_none=True, owner="empirical_ntk")
    if random_state is not None and (isinstance(random_state, bool) or not isinstance(random_state, int)):
        raise ValueError(f"The 'random_state' parameter of empirical_ntk must be an int or None. Got {random_state!r}.")
    if trace_outputs + diagonal_outputs + sum_outputs > 1:
        raise ValueError(
            "Of 'trace_outputs', 'diagonal_outputs' and 'sum_outputs' of empirical_ntk at most one may be True."
        )
    if sketch_dim is not None and impl is NTKImplementation.NTK_VP:
        raise ValueError("The 'sketch_dim' parameter of empirical_ntk needs implementation 'structured', "
                         "'jacobian' or 'auto'. Got implementation='ntk_vp'.")  # fmt: skip
    _check_inputs(x1, x2)
    view = make_view(f, x1, params, dtype)
    _guards.probe_model(view, x1, x2)
    if sum_outputs:
        view = dataclasses.replace(view, sum_outputs=True)
    if impl is NTKImplementation.AUTO:
        impl, reason = _resolve(view, x1, x2, sketched=sketch_dim is not None)
        logger.info("empirical_ntk: implementation=%s (%s)", impl.value, reason)
    elif impl is NTKImplementation.STRUCTURED:
        problem = structured.unsupported_reason(view, view.cast_input(x1))
        if problem:
            raise ValueError(f"implementation='structured' of empirical_ntk cannot handle this model: {problem}.")
    groups = view.groups if per_layer else {"": view.names}
    mode = "trace" if trace_outputs or sum_outputs else "diag" if diagonal_outputs else "full"
    sketch = {} if sketch_dim is None else {"sketch_dim": sketch_dim, "random_state": random_state}
    backend = _BACKENDS[impl](view, groups, mode, **sketch)
    xc1, xc2 = view.cast_input(x1), None if x2 is None else view.cast_input(x2)
    n_out = view(xc1[:1]).shape[1]
    n2 = x1.shape[0] if x2 is None else x2.shape[0]
    result = _guards.kernel_nbytes(x1.shape[0], n2, n_out, mode=mode, dtype=view.dtype, n_groups=len(groups))
    plan = _blocks.plan_kernel(backend, xc1, xc2, n_out, view.dtype, block_size, reserved=result)
    _guards.check_memory(backend, x1, x2, n_out, view.dtype, plan.workspace, block_size)
    out = _blocks.fill_kernel(backend, plan, xc1, xc2, n_out, view.dtype)
    return out if per_layer else out[""]


def resolve_implementation(
    f: nn.Module, x1: Tensor, x2: Tensor | None = None, *, params: Iterable[str] | None = None
) -> NTKImplementation:
    """The implementation ``empirical_ntk(..., implementation="auto")`` runs for these arguments."""
    _check_inputs(x1, x2)
    view = make_view(f, x1, params, None)
    _guards.probe_model(view, x1, x2)
    return _resolve(view, x1, x2)[0]


def _resolve(view: ModelView, x1: Tensor, x2: Tensor | None, sketched: bool = False) -> tuple[NTKImplementation, str]:
    problem = structured.unsupported_reason(view, view.cast_input(x1))
    if not problem:
        return NTKImplementation.STRUCTURED, "every parameter-owning module has a closed form"
    if sketched:
        return NTKImplementation.JACOBIAN, f"structured unsupported ({problem}); sketches need the Jacobian"
    n1 = x1.shape[0]
    n2 = n1 if x2 is None else x2.shape[0]
    with FlopCounterMode(display=False) as counter:
        n_out = view(view.cast_input(x1[:1])).shape[1]
    fp = max(counter.get_total_flops(), 1)
    # Jacobian rows that do not fit this device's feature budget are recomputed once per held row block
    jac_bytes = n_out * view.n_params * (torch.finfo(view.dtype).bits // 8)
    budget = _blocks.feature_budget(x1.device) * 3 // 4  # as the blocked driver plans it
    fits = n2 * jac_bytes <= (budget if x2 is None else budget // 2)
    passes = 1 if fits else math.ceil(n1 / max(1, budget // jac_bytes)) / (2 if x2 is None else 1)
    cost_jac = (n1 + n2 * passes) * n_out * fp + n1 * n2 * n_out**2 * view.n_params
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
