"""NTK-vector products: Θ v = J (Jᵀ v) by a vjp then a jvp (Novak et al. 2022), never storing Θ or all of J.

Cost of a kernel block by this method: time B1·B2·O·[FP], memory chunk·P (one chunk of vjp outputs).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch
from scipy.sparse.linalg import LinearOperator
from torch import Tensor, nn
from torch.func import jvp, vjp, vmap

from theory.ntk._guards import probe_model
from theory.ntk._model import ModelView, make_view, translate_torch_func_errors

_CHUNK_BYTES = 2**27


class NTKVPBackend:
    """Kernel blocks from NTK-vector products, one parameter group at a time."""

    def __init__(self, view: ModelView, groups: dict[str, tuple[str, ...]], mode: str) -> None:
        self.view = view
        self.groups = groups
        self.mode = mode

    def bytes_per_sample(self, x: Tensor) -> int:
        return 0

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
) -> LinearOperator:
    """Matrix-free NTK Θ(x, x) of shape (N·O, N·O) as a scipy ``LinearOperator`` (Novak et al. 2022).

    Each product is Θ v = J (Jᵀ v): one vjp then one jvp over the batch, so neither Θ nor J is stored.
    Rows and columns are indexed by (sample, output) in row-major order, matching
    ``empirical_ntk(f, x).permute(0, 2, 1, 3).reshape(N * O, N * O)``.

    Example:
        >>> op = ntk_operator(torch.nn.Linear(3, 2), torch.ones(4, 3))
        >>> op.shape
        (8, 8)
    """
    if not isinstance(x, Tensor):
        raise TypeError(f"The 'x' argument must be a torch.Tensor. Got {type(x).__name__} instead.")
    view = make_view(f, x, params, dtype)
    probe_model(view, x)
    xc = view.cast_input(x)
    sel = view.selected
    with translate_torch_func_errors(view.module):
        out, pullback = vjp(lambda p: view(xc, p), sel)
    shape = out.shape

    def matvec(v: np.ndarray) -> np.ndarray:
        ct = torch.as_tensor(np.ascontiguousarray(v).reshape(shape), dtype=view.dtype, device=xc.device)
        (tangent,) = pullback(ct)
        with translate_torch_func_errors(view.module):
            prod = jvp(lambda p: view(xc, p), (sel,), (tangent,))[1]
        return prod.reshape(-1).detach().cpu().numpy()

    size = shape.numel()
    np_dtype = torch.empty((), dtype=view.dtype).numpy().dtype
    return LinearOperator((size, size), matvec=matvec, rmatvec=matvec, dtype=np_dtype)
