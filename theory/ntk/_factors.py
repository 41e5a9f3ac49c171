"""Per-layer factors of the structured eNTK, collected one output at a time from the backpropagated δ.

A layer's factor is one of three forms, all batched over samples along dim 0:

- :class:`Kron` (dense layer, one position): a (B, d_in) activations or token ids and δ (B, O, d_out);
  Θ(n, m) = gram(a_n, a_m) · δ_n δ_mᵀ.
- :class:`PatchKron` (layer shared over T positions, few positions): patches p (B, G, T, K) and
  δ (B, O, G, C, T); Θ(n, m) = Σ_g Σ_{t,s} (p_nt·p_ms) δ_nt δ_msᵀ.
- a (B, O, p) tensor of per-sample gradients ∂f_o(x_n)/∂θ_layer (every other case), or their count-sketch
  (B, O, k).

Per-sample gradients of a layer shared over positions are Σ_t δ_t ⊗ p_t: one batched GEMM per output,
δ_o (B, C, T) @ p (B, T, K), written straight into the (B, O, p) result (no unfold of δ, no stacking).
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor, nn

if TYPE_CHECKING:
    from theory.ntk._model import ModelView


@dataclass(frozen=True)
class Kron:
    """Θ(n, m) = gram(a_n, a_m) · δ_n δ_mᵀ with a (B, d_a) features or (B,) token ids (equality gram)."""

    a: Tensor
    delta: Tensor  # (B, O, d)
    padding_idx: int | None = None

    def gram(self, other: Kron) -> Tensor:
        if self.a.is_floating_point():
            return self.a @ other.a.T
        same = self.a[:, None] == other.a[None, :]
        if self.padding_idx is not None:
            same &= (self.a != self.padding_idx)[:, None]
        return same.to(self.delta.dtype)


@dataclass(frozen=True)
class PatchKron:
    """Θ(n, m) = Σ_g Σ_{t,s} (p_nt·p_ms) δ_nt δ_msᵀ: patches p (B, G, T, K) and δ (B, O, G, C, T)."""

    patches: Tensor
    delta: Tensor


@dataclass(frozen=True)
class CountSketch:
    """A count-sketch S ∈ {0, ±1}^{p×k} (Charikar et al. 2002): coordinate i goes to bucket ``index[i]`` with
    ``sign[i]``. E[S Sᵀ] = I, so <gS, g'S> is an unbiased estimate of <g, g'> (Weinberger et al. 2009)."""

    index: Tensor
    sign: Tensor
    dim: int

    @classmethod
    def draw(cls, size: int, dim: int, seed: int, like: Tensor) -> CountSketch:
        g = torch.Generator().manual_seed(seed)
        index = torch.randint(dim, (size,), generator=g)
        sign = torch.randint(2, (size,), generator=g).mul_(2).sub_(1)
        return cls(index.to(like.device), sign.to(device=like.device, dtype=like.dtype), dim)

    def __call__(self, grads: Tensor) -> Tensor:
        """(B, O, p) per-sample gradients -> (B, O, k) sketched features."""
        out = grads.new_zeros(*grads.shape[:-1], self.dim)
        return out.index_add_(-1, self.index, grads * self.sign)


def sketch_seed(random_state: int | None) -> int:
    """The seed of a kernel's sketches: ``random_state``, or fresh entropy (the global RNG is left alone)."""
    return secrets.randbits(62) if random_state is None else random_state


class SketchedBackend:
    """What both per-layer kernel backends (structured, jacobian) hold: the model view, the parameter groups of the
    result, the output mode, and with ``sketch_dim`` = k the count-sketch width and seed of their layers' sketches
    (one per layer, drawn when the layer is first met)."""

    def __init__(
        self,
        view: ModelView,
        groups: dict[str, tuple[str, ...]],
        mode: str,
        sketch_dim: int | None = None,
        random_state: int | None = None,
    ) -> None:
        self.view = view
        self.groups = groups
        self.mode = mode
        self.sketch_dim = sketch_dim
        self.seed = sketch_seed(random_state)
        self.sketches: dict[str, CountSketch | None] = {}


Factor = Tensor | Kron | PatchKron


class Collector:
    """Receives δ_o = ∂f_o/∂y of one layer for each output o in turn, then returns the layer's factors.

    ``buf`` is the buffer it fills and ``keeps`` the other tensors it holds (patches, x̂), for memory plans.
    """

    buf: Tensor
    keeps: tuple[Tensor, ...] = ()

    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in (self.buf, *self.keeps))

    def add(self, o: int, delta: Tensor) -> None:
        raise NotImplementedError

    def finish(self) -> list[Factor]:
        raise NotImplementedError


class Stacked(Collector):
    """δ of every output stacked into a (B, O, *shape) buffer, turned into a factor by ``make``."""

    def __init__(self, like: Tensor, n_out: int, shape: tuple[int, ...], make: Callable[[Tensor], Factor]) -> None:
        self.buf = like.new_empty((shape[0], n_out, *shape[1:]))
        self.make = make

    def add(self, o: int, delta: Tensor) -> None:
        self.buf[:, o] = delta.reshape(self.buf.shape[0], *self.buf.shape[2:])

    def finish(self) -> list[Factor]:
        return [self.make(self.buf)]


class Gradients(Collector):
    """Per-sample gradients (B, O, p) written output by output by ``grad(delta_o, out)`` (out: (B, p) view)."""

    def __init__(
        self, like: Tensor, n_out: int, size: int, grad: Callable[[Tensor, Tensor], None], sketch: CountSketch | None
    ) -> None:
        self.buf = like.new_empty((like.shape[0], n_out, size))  # like: any (B, ...) tensor of the compute dtype
        self.grad = grad
        self.sketch = sketch

    def add(self, o: int, delta: Tensor) -> None:
        self.grad(delta, self.buf[:, o])

    def finish(self) -> list[Factor]:
        return [self.buf if self.sketch is None else self.sketch(self.buf)]


#: time per MAC of the position-pair form relative to the per-sample-gradient form, by kernel mode; measured
#: on this project's CPU (oneDNN/MKL, fp32) on conv layers with T = 4…49 positions: the traced and diagonal
#: forms are two large GEMMs (0.3–0.5, taken as 1), the full form has inner dimensions T and O (10–42).
PATCH_GRAM_PENALTY = {"trace": 1.0, "diag": 1.0, "full": 20.0}


def prefer_patch_grams(positions: int, k: int, c: int, n_out: int, mode: str) -> bool:
    """Whether position-pair Grams, T²·(K + O·C) (+ T·O²·C in full mode) MACs per sample pair, times
    ``PATCH_GRAM_PENALTY[mode]``, beat the per-sample-gradient Gram, O_m·C·K (O_m = O² full, O otherwise)."""
    o_m = n_out * n_out if mode == "full" else n_out
    patch = positions * positions * (k + n_out * c) + (positions * o_m * c if mode == "full" else 0)
    return PATCH_GRAM_PENALTY[mode] * patch < o_m * c * k


def conv_patches(module: nn.Conv1d | nn.Conv2d, a: Tensor, use_w: bool, use_b: bool) -> Tensor:
    """Patches (B, G, T, K') of a conv layer's input, K' = (C_in/G)·Π kernel (if ``use_w``) + 1 (if ``use_b``).

    Any stride, padding (mode), dilation and groups; copied from one strided view of the (padded) input. The
    order of a patch's K entries follows the input's memory format ((C_in/G, *kernel) for contiguous inputs,
    (*kernel, C_in/G) for channels-last ones); the kernel does not depend on it. The bias is a column of ones.
    """
    pad = module._reversed_padding_repeated_twice
    if any(pad):
        a = F.pad(a, list(pad), mode="constant" if module.padding_mode == "zeros" else module.padding_mode)
    n, c_in, *space = a.shape
    groups, kernel = module.groups, module.kernel_size
    c_g = c_in // groups
    geometry = zip(space, kernel, module.dilation, module.stride, strict=True)
    out_space = [(s - d * (k - 1) - 1) // st + 1 for s, k, d, st in geometry]
    positions, k = math.prod(out_space), c_g * math.prod(kernel)
    patches = a.new_empty(n, groups, positions, k * use_w + use_b)
    if use_b:
        patches[..., -1] = 1
    if use_w:
        s_n, s_c, *s_space = a.stride()
        size = [n, groups, *out_space]
        stride = [s_n, s_c * c_g, *(s * st for s, st in zip(s_space, module.stride, strict=True))]
        window = [(c_g, s_c)] + [(kk, s * d) for kk, s, d in zip(kernel, s_space, module.dilation, strict=True)]
        if s_c == 1 and c_in > 1:  # channels-last: channels innermost
            window = window[1:] + window[:1]
        sizes = [w[0] for w in window]
        view = a.as_strided(size + sizes, stride + [w[1] for w in window], a.storage_offset())
        patches[..., :k].unflatten(2, out_space).unflatten(-1, sizes).copy_(view)  # one copy, no reshaped temporary
    return patches


def sequence_patches(a: Tensor, use_w: bool, use_b: bool) -> Tensor:
    """Patches (B, 1, T, d_in') of a Linear layer applied at T positions (inputs (B, ..., d_in))."""
    n = a.shape[0]
    a = a.reshape(n, -1, a.shape[-1])
    cols = ([a] if use_w else []) + ([a.new_ones(*a.shape[:2], 1)] if use_b else [])
    return torch.cat(cols, dim=2).unsqueeze(1)


def shared_layer(
    patches: Tensor,
    to_gct: Callable[[Tensor], Tensor],
    c: int,
    n_out: int,
    mode: str,
    sketch: Callable[[int], CountSketch | None],
) -> Collector:
    """Collector of a layer shared over positions: patch/δ pairs when :func:`prefer_patch_grams`, else the
    per-sample gradients Σ_t δ_t ⊗ p_t by one bmm per output and group. ``to_gct`` maps δ_o to (B, G, C, T)."""
    n, groups, positions, k = patches.shape
    if prefer_patch_grams(positions, k, c, n_out, mode):
        collector = Stacked(patches, n_out, (n, groups, c, positions), lambda d: PatchKron(patches, d))
    else:

        def grad(delta: Tensor, out: Tensor) -> None:
            d, o = to_gct(delta), out.view(n, groups, c, k)
            for g in range(groups):
                torch.bmm(d[:, g], patches[:, g], out=o[:, g])

        collector = Gradients(patches, n_out, groups * c * k, grad, sketch(groups * c * k))
    collector.keeps = (patches,)
    return collector


def norm_layer(
    module: nn.Module, a: Tensor, use_w: bool, use_b: bool, stats: tuple[Tensor | None, ...], n_out: int, sketch
) -> Collector:
    """Per-sample gradients of the affine γ, β of LayerNorm / GroupNorm / BatchNorm (eval): Σ δ⊙x̂ and Σ δ."""
    n = a.shape[0]
    if isinstance(module, nn.LayerNorm):
        size = module.weight.numel() if module.weight is not None else module.bias.numel()
        x_hat = F.layer_norm(a, module.normalized_shape, eps=module.eps).reshape(n, -1, size)
        axis = 1
    else:
        if isinstance(module, nn.GroupNorm):
            x_hat = F.group_norm(a, module.num_groups, eps=module.eps)
        else:
            x_hat = F.batch_norm(a, *stats, training=False, eps=module.eps)  # running statistics cast like f
        size, axis = a.shape[1], -1
        x_hat = x_hat.reshape(n, size, -1)

    def grad(delta: Tensor, out: Tensor) -> None:
        d = delta.reshape(x_hat.shape)
        pieces = ([(d * x_hat).sum(axis)] if use_w else []) + ([d.sum(axis)] if use_b else [])
        out.copy_(torch.cat(pieces, dim=1))

    collector = Gradients(a, n_out, size * (use_w + use_b), grad, sketch(size * (use_w + use_b)))
    collector.keeps = (x_hat,)
    return collector


def embedding_layer(module: nn.Embedding, ids: Tensor, like: Tensor, n_out: int, sketch) -> Collector:
    """A one-token embedding is a :class:`Kron` with the equality gram; a sequence scatters per-sample gradients.

    ``like`` is the layer's output (B, ..., dim), giving the compute dtype and the embedding dimension."""
    n, pad, dim = ids.shape[0], module.padding_idx, like.shape[-1]
    if ids.numel() == n:
        return Stacked(like, n_out, (n, dim), lambda d: Kron(ids.reshape(n), d, padding_idx=pad))
    ids = ids.reshape(n, -1)
    index = ids.unsqueeze(-1).expand(n, ids.shape[1], dim)
    keep = None if pad is None else (ids != pad).unsqueeze(-1)

    def grad(delta: Tensor, out: Tensor) -> None:
        d = delta.reshape(n, -1, dim)
        out.view(n, module.num_embeddings, dim).zero_().scatter_add_(1, index, d if keep is None else d * keep)

    size = module.num_embeddings * dim
    return Gradients(like, n_out, size, grad, sketch(size))
