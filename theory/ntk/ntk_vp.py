"""NTK-vector products: Θ v = J (Jᵀ v) by a vjp then a jvp (Novak et al. 2022), never storing Θ or all of J.

Cost of a kernel block by this method: time B1·B2·O·[FP], memory chunk·P (one chunk of vjp outputs).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

import numpy as np
import torch
from scipy.sparse.linalg import LinearOperator
from torch import Tensor, nn
from torch.func import jvp, vjp, vmap

from theory._validation import check_positive_int
from theory.ntk._blocks import feature_budget
from theory.ntk._guards import check_operator_memory, probe_model
from theory.ntk._model import ModelView, make_view, translate_torch_func_errors

_CHUNK_BYTES = 2**27


class NTKVPBackend:
    """Kernel blocks from NTK-vector products, one parameter group at a time."""

    def __init__(self, view: ModelView, groups: dict[str, tuple[str, ...]], mode: str) -> None:
        self.view = view
        self.groups = groups
        self.mode = mode

    def bytes_per_sample(self, x: Tensor) -> tuple[int, int]:
        return 0, 0

    def features(self, x: Tensor) -> Tensor:
        return x

    def contract(self, x1: Tensor, x2: Tensor) -> dict[str, Tensor]:
        return {key: self._group_block(names, x1, x2, self.mode) for key, names in self.groups.items()}

    def _group_block(self, names: tuple[str, ...], x1: Tensor, x2: Tensor, mode: str) -> Tensor:
        view = self.view
        sel = {n: view.params[n] for n in names}
        n_params = sum(p.numel() for p in sel.values())
        b1, b2 = x1.shape[0], x2.shape[0]
        n_out = view(x2[:1]).shape[1]
        itemsize = torch.finfo(view.dtype).bits // 8
        chunk = max(1, min(b2 * n_out, _CHUNK_BYTES // (itemsize * (n_params + 8 * b1 * n_out))))

        def pull(xm: Tensor, ct: Tensor) -> dict[str, Tensor]:
            return vjp(lambda p: view.single(p, xm), sel)[1](ct)[0]

        def push(tangent: dict[str, Tensor]) -> Tensor:
            return jvp(lambda p: view(x1, p), (sel,), (tangent,))[1]

        samples = torch.arange(b2, device=x2.device).repeat_interleave(n_out)
        outputs = torch.arange(n_out, device=x2.device).repeat(b2)
        eye = torch.eye(n_out, dtype=view.dtype, device=x2.device)
        cols = []
        with translate_torch_func_errors(view.module):
            for start in range(0, b2 * n_out, chunk):
                m, o = samples[start : start + chunk], outputs[start : start + chunk]
                tangents = vmap(pull)(x2[m], eye[o])
                cols.append(vmap(push)(tangents))  # (chunk, B1, O): Θ(n, m)[:, o]
        theta = torch.cat(cols).reshape(b2, n_out, b1, n_out).permute(2, 0, 3, 1)  # (B1, B2, O, O)
        if mode == "full":
            return theta
        diag = theta.diagonal(dim1=2, dim2=3)
        return diag.mean(dim=2) if mode == "trace" else diag


def ntk_operator(
    f: nn.Module,
    x: Tensor,
    *,
    params: Iterable[str] | None = None,
    dtype: torch.dtype | None = torch.float64,
    trace_outputs: bool = False,
    sum_outputs: bool = False,
    block_size: int | None = None,
) -> LinearOperator:
    """Matrix-free NTK Θ(x, x) as a scipy ``LinearOperator`` (Novak et al. 2022), for N where Θ does not fit.

    Each product is Θ v = J (Jᵀ v): vjps of the sample blocks summed into one parameter-space tangent, then
    one jvp per block, so neither Θ nor J is stored; memory is one block's saved activations plus O(P).
    Shapes: (N·O, N·O) with rows (sample, output) in row-major order, matching
    ``empirical_ntk(f, x).permute(0, 2, 1, 3).reshape(N * O, N * O)``; (N, N) with ``trace_outputs``
    (Θ_tr = (1/O) Σ_o J_o J_oᵀ, O products per matvec) or ``sum_outputs`` (the pseudo-NTK of
    Mohamadi et al. 2023, one product). Runs on the device of ``x``; vectors are numpy on the host.

    Args:
        block_size: samples per vjp/jvp (default: all whose saved activations fit a quarter of the feature
            budget of :mod:`theory.ntk._blocks`; their pullback is then kept between products).

    Raises:
        The probe's :class:`~theory.ntk.NTKInputError` subclasses (as ``empirical_ntk``), and
        :class:`~theory.ntk.KernelMemoryError` when one block's saved activations and the tangents cannot fit.

    Example:
        >>> op = ntk_operator(torch.nn.Linear(3, 2), torch.ones(4, 3))
        >>> op.shape
        (8, 8)
    """
    if not isinstance(x, Tensor):
        raise TypeError(f"The 'x' argument must be a torch.Tensor. Got {type(x).__name__} instead.")
    if trace_outputs and sum_outputs:
        raise ValueError("Of 'trace_outputs' and 'sum_outputs' of ntk_operator at most one may be True.")
    check_positive_int("block_size", block_size, allow_none=True, owner="ntk_operator")
    view = make_view(f, x, params, dtype)
    probe_model(view, x)
    if sum_outputs:
        view = dataclasses.replace(view, sum_outputs=True)
    xc = view.cast_input(x)
    sel = view.selected
    n = xc.shape[0]
    n_out = view(xc[:1]).shape[1]
    saved = max(_saved_bytes(view, xc[:1]), 1)
    if block_size is None:
        block_size = max(1, min(n, feature_budget(xc.device) // 4 // saved))
    check_operator_memory(min(block_size, n), saved, view.n_params * view.dtype.itemsize, xc.device)
    blocks = [slice(i, min(i + block_size, n)) for i in range(0, n, block_size)]
    kept = {}

    def pullback(b: slice):
        if b.start in kept:
            return kept[b.start]
        with translate_torch_func_errors(view.module):
            pull = vjp(lambda p: view(xc[b], p), sel)[1]
        if len(blocks) == 1:
            kept[b.start] = pull
        return pull

    def product(ct: Tensor) -> Tensor:
        """J Jᵀ ct for cotangents ct (N, O)."""
        tangent = None
        for b in blocks:
            (part,) = pullback(b)(ct[b])
            tangent = part if tangent is None else {k: tangent[k].add_(part[k]) for k in tangent}
        with translate_torch_func_errors(view.module):
            return torch.cat([jvp(lambda p, b=b: view(xc[b], p), (sel,), (tangent,))[1] for b in blocks])

    def matvec(v: np.ndarray) -> np.ndarray:
        vt = torch.as_tensor(np.ascontiguousarray(v), dtype=view.dtype, device=xc.device)
        if not trace_outputs:
            return product(vt.reshape(n, -1)).reshape(-1).detach().cpu().numpy()
        out = torch.zeros(n, dtype=view.dtype, device=xc.device)
        for o in range(n_out):
            ct = torch.zeros(n, n_out, dtype=view.dtype, device=xc.device)
            ct[:, o] = vt.reshape(n)
            out += product(ct)[:, o]
        return (out / n_out).detach().cpu().numpy()

    size = n if trace_outputs or sum_outputs else n * n_out
    np_dtype = torch.empty((), dtype=view.dtype).numpy().dtype
    return LinearOperator((size, size), matvec=matvec, rmatvec=matvec, dtype=np_dtype)


def _saved_bytes(view: ModelView, x: Tensor) -> int:
    """Bytes autograd saves for the backward of a forward on ``x`` (the activations a vjp keeps)."""
    total = 0

    def pack(t: Tensor) -> Tensor:
        nonlocal total
        total += t.numel() * t.element_size()
        return t

    leaves = {k: v.detach().requires_grad_() for k, v in view.selected.items()}
    with torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        view(x, leaves)
    return total
