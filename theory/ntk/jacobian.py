"""Per-sample Jacobians with ``torch.func`` (vmap of jacrev) and their kernel contractions.

Cost of the Jacobian-contraction kernel (Novak et al. 2022): time N·O·[FP] + N²·O²·P, memory B·O·P for a
block of B samples.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor, nn
from torch.func import jacrev, vmap

from theory.ntk._factors import CountSketch, SketchedBackend
from theory.ntk._guards import probe_model
from theory.ntk._model import ModelView, make_view, translate_torch_func_errors


def jacobian(
    f: nn.Module, x: Tensor, *, params: Iterable[str] | None = None, dtype: torch.dtype | None = None
) -> Tensor:
    """Per-sample Jacobian J[n, o, p] = ∂f_o(x_n)/∂θ_p, flattened over the selected parameters.

    Parameters are concatenated in ``f.named_parameters()`` order, each flattened row-major. Computed as
    ``vmap(jacrev(f))`` over the samples (torch.func; Novak et al. 2022).

    Args:
        f: the model; it maps a batch (N, ...) to outputs (N, ...) flattened to (N, O).
        x: inputs (N, ...).
        params: names of the parameters to differentiate (default: all with ``requires_grad``).
        dtype: compute dtype (default: ``x``'s floating dtype).

    Returns:
        Tensor of shape (N, O, P).

    Example:
        >>> J = jacobian(torch.nn.Linear(3, 2), torch.ones(4, 3))
        >>> tuple(J.shape)
        (4, 2, 8)
    """
    if not isinstance(x, Tensor):
        raise TypeError(f"The 'x' argument must be a torch.Tensor. Got {type(x).__name__} instead.")
    view = make_view(f, x, params, dtype)
    probe_model(view, x)
    return jacobian_features(view, view.cast_input(x), {"": view.names})[""]


def jacobian_features(view: ModelView, x: Tensor, groups: dict[str, tuple[str, ...]]) -> dict[str, Tensor]:
    """Jacobian blocks (B, O, P_g) of the batch ``x`` for each parameter group."""
    with translate_torch_func_errors(view.module):
        jac = vmap(jacrev(view.single), in_dims=(None, 0))(view.selected, x)
    n = x.shape[0]
    out = {}
    for key, names in groups.items():
        pieces = [jac[name].reshape(n, jac[name].shape[1], -1) for name in names]
        out[key] = pieces[0] if len(pieces) == 1 else torch.cat(pieces, dim=2)
    return out


def contract(g1: Tensor, g2: Tensor, mode: str) -> Tensor:
    """Kernel block from per-sample gradients g (B, O, p): full (B1, B2, O, O), trace (B1, B2), diag (B1, B2, O)."""
    b1, o, p = g1.shape
    b2 = g2.shape[0]
    if mode == "trace":
        return (g1.reshape(b1, o * p) @ g2.reshape(b2, o * p).T) / o
    if mode == "diag":
        return torch.bmm(g1.transpose(0, 1), g2.permute(1, 2, 0)).permute(1, 2, 0)
    return (g1.reshape(b1 * o, p) @ g2.reshape(b2 * o, p).T).reshape(b1, o, b2, o).permute(0, 2, 1, 3)


class JacobianBackend(SketchedBackend):
    """Kernel blocks as contractions of per-sample Jacobian blocks, one parameter group at a time.

    With ``sketch_dim`` = k each owning module's Jacobian columns (if more than k) are count-sketched to k.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:  # the arguments of SketchedBackend
        super().__init__(*args, **kwargs)
        owners = self.view.groups
        self.owners = {key: [o for o in owners if set(owners[o]) & set(names)] for key, names in self.groups.items()}

    def _width(self, owner: str) -> int:
        size = sum(self.view.params[n].numel() for n in self.view.groups[owner])
        return size if self.sketch_dim is None else min(size, self.sketch_dim)

    def bytes_per_sample(self, x: Tensor) -> tuple[int, int]:
        """Held Jacobian (or sketch) bytes per sample, and the working memory: the unsketched Jacobian
        ``vmap(jacrev)`` returns and one copy of it (concatenation or sketch)."""
        n_out, itemsize = self.view(x[:1]).shape[1], torch.finfo(self.view.dtype).bits // 8
        width = sum(self._width(o) for owners in self.owners.values() for o in owners)
        return n_out * width * itemsize, 2 * n_out * self.view.n_params * itemsize

    def _sketch(self, owner: str, size: int, like: Tensor) -> CountSketch | None:
        if self.sketch_dim is None or size <= self.sketch_dim:
            return None
        if owner not in self.sketches:
            seed = (self.seed + 7919 * list(self.view.groups).index(owner)) % 2**63
            self.sketches[owner] = CountSketch.draw(size, self.sketch_dim, seed, like)
        return self.sketches[owner]

    def features(self, x: Tensor) -> dict[str, Tensor]:
        """Jacobians (B, O, P_g) of each group, owners sketched where ``sketch_dim`` is set."""
        jac = jacobian_features(self.view, x, self.view.groups)
        out = {}
        for key, owners in self.owners.items():
            pieces = []
            for owner in owners:
                sketch = self._sketch(owner, jac[owner].shape[2], jac[owner])
                pieces.append(jac[owner] if sketch is None else sketch(jac[owner]))
            out[key] = pieces[0] if len(pieces) == 1 else torch.cat(pieces, dim=2)
        return out

    def contract(self, f1: dict[str, Tensor], f2: dict[str, Tensor]) -> dict[str, Tensor]:
        return {key: contract(f1[key], f2[key], self.mode) for key in self.groups}
