"""Structured eNTK: per-layer closed forms from hooked activations and backpropagated δ, no Jacobian built.

For a layer y = W a + b with δ_n = ∂f(x_n)/∂y ∈ R^{O×d_out}: Θ_W(n, m) = (a_n·a_m) δ_n δ_mᵀ and
Θ_b(n, m) = δ_n δ_mᵀ (Novak et al. 2022, "structured derivatives"; Jacot et al. 2018). Layers applied at
several positions (Conv1d/Conv2d via unfolded patches, with any stride/padding/dilation/groups; Linear on
sequences; Embedding on sequences) and the affine parameters of LayerNorm/GroupNorm/BatchNorm (eval) are
contracted through their per-sample gradients Σ_t δ_t ⊗ a_t, which cost only that layer's parameters.
Parameter-free modules (activations, Flatten, Dropout in eval, residual additions) need nothing: δ is
obtained by backpropagating from the outputs to a zero perturbation added to each layer's output.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from theory.ntk._model import ModelView

_PAIR_ELEMENTS = 2**24  # bound on the (t, s) Gram temporaries of one row chunk of a conv layer

SUPPORTED = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Embedding, nn.LayerNorm, nn.GroupNorm, nn.modules.batchnorm._BatchNorm)


@dataclass(frozen=True)
class _Kron:
    """Θ(n, m) = gram(a_n, a_m) · δ_n δ_mᵀ with a (B, d_a) features or (B,) token ids (equality gram)."""

    a: Tensor
    delta: Tensor  # (B, O, d)
    padding_idx: int | None = None

    def gram(self, other: _Kron) -> Tensor:
        if self.a.is_floating_point():
            return self.a @ other.a.T
        same = self.a[:, None] == other.a[None, :]
        if self.padding_idx is not None:
            same &= (self.a != self.padding_idx)[:, None]
        return same.to(self.delta.dtype)


@dataclass(frozen=True)
class _PatchKron:
    """Θ(n, m) = Σ_g Σ_{t,s} (p_nt·p_ms) δ_nt δ_msᵀ: conv patches p (B, G, K, T) and δ (B, O, G, C, T)."""

    patches: Tensor
    delta: Tensor


def _prefer_patch_grams(positions: int, k: int, c: int, n_out: int, mode: str) -> bool:
    """Whether position-pair Grams, T²·(K + O·C) + T·O_m·C MACs per sample pair, beat per-sample gradients,
    O_m·C·K (O_m = O² for full kernels, O otherwise). Their small inner dimensions ran ~10× below the GEMM
    rate of the gradient contraction (measured on MNIST-1D conv layers), so they must save 10× the MACs."""
    o_m = n_out * n_out if mode == "full" else n_out
    return 10 * (positions * positions * (k + n_out * c) + positions * o_m * c) < o_m * c * k


def _owners(view: ModelView) -> dict[str, nn.Module]:
    return {path: view.module.get_submodule(path) for path in view.groups}


def unsupported_reason(view: ModelView, x: Tensor | None = None) -> str:
    """Why the structured implementation cannot handle ``view`` (empty string if it can).

    With ``x`` (one sample suffices) a traced forward also checks that each layer runs exactly once.
    """
    seen: dict[int, str] = {}
    for path, module in view.module.named_modules():
        for name, p in module._parameters.items():
            if p is not None and id(p) in seen:
                return f"parameter {path}.{name} is shared with {seen[id(p)]}"
            if p is not None:
                seen[id(p)] = f"{path}.{name}"
    for path, module in _owners(view).items():
        where = f"{type(module).__name__} at {path or '<root>'!r}"
        if not isinstance(module, SUPPORTED):
            return f"{where} owns parameters and has no closed form"
        if isinstance(module, nn.Embedding) and module.max_norm is not None:
            return f"{where} renormalises its weights (max_norm)"
        extra = sorted(set(module._parameters) - {"weight", "bias"})
        if extra:  # e.g. torch.nn.utils.prune's weight_orig: the weight used is weight_orig * weight_mask
            return f"{where} owns reparametrised parameter(s) {extra} that its closed form does not cover"
    if x is not None:
        calls = _count_calls(view, x)
        bad = {p: c for p, c in calls.items() if c != 1}
        if bad:
            return f"layers must run exactly once per forward; call counts {bad}"
    return ""


def _count_calls(view: ModelView, x: Tensor) -> dict[str, int]:
    calls = dict.fromkeys(_owners(view), 0)

    def counter(path: str):
        def hook(module, inputs, output):
            calls[path] += 1

        return hook

    handles = [m.register_forward_hook(counter(p)) for p, m in _owners(view).items()]
    try:
        with torch.no_grad():
            view(view.cast_input(x[:1]))
    finally:
        for h in handles:
            h.remove()
    return calls


class StructuredBackend:
    """Kernel blocks from per-layer factors (hooked inputs a and δ), one group per owning module."""

    def __init__(self, view: ModelView, groups: dict[str, tuple[str, ...]], mode: str) -> None:
        self.view = view
        self.groups = groups
        self.mode = mode
        self.owners = _owners(view)
        self.selected = set(view.names)

    def bytes_per_sample(self, x: Tensor) -> int:
        feats = self.features(x[:1])
        return sum(t.numel() * t.element_size() for fs in feats.values() for f in fs for t in _tensors(f))

    def features(self, x: Tensor) -> dict[str, list[Tensor | _Kron]]:
        inputs: dict[str, Tensor] = {}
        versions: dict[str, int] = {}
        perturbations: dict[str, Tensor] = {}

        def capture(path: str):
            def hook(module, args, output):
                if path in perturbations:
                    raise ValueError(
                        f"{type(module).__name__} at {path!r} runs more than once per forward (shared weights); "
                        "use implementation='jacobian' or 'ntk_vp'."
                    )
                inputs[path], versions[path] = args[0], args[0]._version
                perturbations[path] = torch.zeros_like(output, requires_grad=True)
                return output + perturbations[path]

            return hook

        handles = [m.register_forward_hook(capture(p)) for p, m in self.owners.items()]
        try:
            with torch.enable_grad():
                out = self.view(x)
                paths = list(perturbations)
                deltas = _backprop(out, [perturbations[p] for p in paths])
        finally:
            for h in handles:
                h.remove()
        changed = [p for p in paths if inputs[p]._version != versions[p]]
        if changed:
            raise ValueError(f"The inputs of layers {changed} are modified in place after use; the kernel is undefined")
        feats: dict[str, list[Tensor | _Kron]] = {key: [] for key in self.groups}
        for path, delta in zip(paths, deltas, strict=True):
            feats[path if path in feats else ""].extend(self._factors(path, inputs[path].detach(), delta))
        return feats

    def _factors(self, path: str, a: Tensor, delta: Tensor) -> list[Tensor | _Kron]:
        """Per-layer factors: a :class:`_Kron` or per-sample gradients (B, O, p) of the selected parameters."""
        module = self.owners[path]
        w = f"{path}.weight" if path else "weight"
        b = f"{path}.bias" if path else "bias"
        use_w, use_b = w in self.selected, b in self.selected
        n, n_out = delta.shape[:2]
        if isinstance(module, nn.Linear):
            if a.dim() == 2:
                cols = ([a] if use_w else []) + ([torch.ones_like(a[:, :1])] if use_b else [])
                return [_Kron(torch.cat(cols, dim=1), delta)]
            a, delta = a.reshape(n, -1, a.shape[-1]), delta.reshape(n, n_out, -1, delta.shape[-1])
            return _grads(use_w, lambda: torch.einsum("btd,botk->bokd", a, delta), use_b, lambda: delta.sum(2))
        if isinstance(module, nn.Conv1d | nn.Conv2d):
            return _conv_factors(module, a, delta, use_w, use_b, self.mode)
        if isinstance(module, nn.Embedding):
            pad = module.padding_idx
            if a.numel() == n:
                return [_Kron(a.reshape(n), delta.reshape(n, n_out, -1), padding_idx=pad)]
            ids = a.reshape(n, 1, -1, 1).expand(n, n_out, -1, delta.shape[-1])
            d = delta.reshape(n, n_out, -1, delta.shape[-1])
            if pad is not None:
                d = d * (ids != pad)
            grad = d.new_zeros(n, n_out, module.num_embeddings, d.shape[-1]).scatter_add_(2, ids, d)
            return [grad.reshape(n, n_out, -1)]
        stats = tuple(self.view.buffers.get(f"{path}.{b}" if path else b) for b in ("running_mean", "running_var"))
        return _norm_factors(module, a, delta, use_w, use_b, stats)

    def contract(self, f1: dict, f2: dict) -> dict[str, Tensor]:
        return {key: _contract_layers(f1[key], f2[key], self.mode) for key in self.groups}


def _tensors(f: Tensor | _Kron | _PatchKron) -> tuple[Tensor, ...]:
    if isinstance(f, _Kron):
        return f.a, f.delta
    return (f.patches, f.delta) if isinstance(f, _PatchKron) else (f,)


def _grads(use_w: bool, grad_w, use_b: bool, grad_b) -> list[Tensor]:
    """Per-sample gradients (B, O, p) of the selected weight and bias, concatenated."""
    pieces = ([grad_w()] if use_w else []) + ([grad_b()] if use_b else [])
    n, n_out = pieces[0].shape[:2]
    return [torch.cat([p.reshape(n, n_out, -1) for p in pieces], dim=2)]


def _backprop(out: Tensor, leaves: list[Tensor]) -> list[Tensor]:
    """δ_l[n, o] = ∂f_o(x_n)/∂y_l for every leaf, as (B, O, *y_l) tensors; one backward per output.

    Samples do not interact, so one backward of Σ_n f_o(x_n) gives every sample's δ for output o. A loop
    over outputs measured faster than ``is_grads_batched`` (which pays a vmap warm-up on every new graph).
    """
    n_out = out.shape[1]
    per_output = [
        torch.autograd.grad(
            out[:, o].sum(), leaves, retain_graph=o < n_out - 1, allow_unused=True, materialize_grads=True
        )
        for o in range(n_out)
    ]
    return [torch.stack(grads, dim=1) for grads in zip(*per_output, strict=True)]


def _conv_factors(
    module: nn.Conv1d | nn.Conv2d, a: Tensor, delta: Tensor, use_w: bool, use_b: bool, mode: str
) -> list[Tensor | _PatchKron]:
    """Conv factors through ``unfold`` (any stride, padding mode, dilation, groups): patch/δ pairs when
    :func:`_prefer_patch_grams`, else per-sample gradients Σ_t δ_t ⊗ patch_t."""
    n, n_out, c_out = delta.shape[:3]
    groups = module.groups
    d = delta.reshape(n, n_out, groups, c_out // groups, -1)
    positions = d.shape[-1]

    def patches() -> Tensor:
        pad_mode = "constant" if module.padding_mode == "zeros" else module.padding_mode
        x = F.pad(a, list(module._reversed_padding_repeated_twice), mode=pad_mode)
        one_d = isinstance(module, nn.Conv1d)
        if one_d:
            x = x.unsqueeze(2)
        pair = (lambda v: (1, v[0])) if one_d else tuple
        cols = F.unfold(x, pair(module.kernel_size), dilation=pair(module.dilation), stride=pair(module.stride))
        return cols.reshape(n, groups, -1, positions)

    k = (module.in_channels // groups) * math.prod(module.kernel_size) * use_w + use_b
    if _prefer_patch_grams(positions, k, c_out // groups, n_out, mode):
        cols = ([patches()] if use_w else []) + ([d.new_ones(n, groups, 1, positions)] if use_b else [])
        return [_PatchKron(torch.cat(cols, dim=2), d)]
    return _grads(use_w, lambda: torch.einsum("bgkl,bogcl->bogck", patches(), d), use_b, lambda: d.sum(-1))


def _norm_factors(
    module: nn.Module, a: Tensor, delta: Tensor, use_w: bool, use_b: bool, stats: tuple[Tensor | None, ...]
) -> list[Tensor]:
    """Per-sample gradients of the affine γ, β of LayerNorm / GroupNorm / BatchNorm (eval): Σ δ⊙x̂ and Σ δ."""
    n, n_out = delta.shape[:2]
    if isinstance(module, nn.LayerNorm):
        x_hat = F.layer_norm(a, module.normalized_shape, eps=module.eps)
        size = module.weight.numel() if module.weight is not None else module.bias.numel()
        d, xh = delta.reshape(n, n_out, -1, size), x_hat.reshape(n, 1, -1, size)
        return _grads(use_w, lambda: (d * xh).sum(2), use_b, lambda: d.sum(2))
    if isinstance(module, nn.GroupNorm):
        x_hat = F.group_norm(a, module.num_groups, eps=module.eps)
    else:
        x_hat = F.batch_norm(a, *stats, training=False, eps=module.eps)  # running statistics cast like f
    channels = a.shape[1]
    d, xh = delta.reshape(n, n_out, channels, -1), x_hat.reshape(n, 1, channels, -1)
    return _grads(use_w, lambda: (d * xh).sum(-1), use_b, lambda: d.sum(-1))


def _contract_layers(f1: list, f2: list, mode: str) -> Tensor:
    """Σ over layers of the kernel block; full blocks accumulate as (B1, O, B2, O) and are permuted once."""
    total = None
    for u, v in zip(f1, f2, strict=True):
        if isinstance(u, _Kron):
            term = _contract_kron(u, v, mode)
        elif isinstance(u, _PatchKron):
            term = _contract_patches(u, v, mode)
        else:
            b1, n_out, p = u.shape
            if mode == "full":
                term = (u.reshape(b1 * n_out, p) @ v.reshape(-1, p).T).reshape(b1, n_out, -1, n_out)
            elif mode == "trace":
                term = (u.reshape(b1, -1) @ v.reshape(v.shape[0], -1).T) / n_out
            else:
                term = torch.bmm(u.transpose(0, 1), v.permute(1, 2, 0)).permute(1, 2, 0)
        total = term if total is None else total.add_(term)
    return total.permute(0, 2, 1, 3) if mode == "full" else total


def _contract_kron(u: _Kron, v: _Kron, mode: str) -> Tensor:
    gram = u.gram(v)
    b1, n_out, d = u.delta.shape
    b2 = v.delta.shape[0]
    if mode == "full":
        dd = (u.delta.reshape(b1 * n_out, d) @ v.delta.reshape(b2 * n_out, d).T).reshape(b1, n_out, b2, n_out)
        return dd.mul_(gram[:, None, :, None])
    if mode == "trace":
        return (u.delta.reshape(b1, -1) @ v.delta.reshape(b2, -1).T).mul_(gram / n_out)
    return torch.bmm(u.delta.transpose(0, 1), v.delta.permute(1, 2, 0)).permute(1, 2, 0).mul_(gram[:, :, None])


def _contract_patches(u: _PatchKron, v: _PatchKron, mode: str) -> Tensor:
    """Σ_g Σ_{t,s} (p_nt·p_ms)(δ_nt·δ_ms) in row chunks that keep the (t, s) temporaries bounded."""
    b1, groups, _, t = u.patches.shape
    b2, n_out, c, s = v.patches.shape[0], *v.delta.shape[1:2], v.delta.shape[3], v.patches.shape[-1]
    step = max(1, _PAIR_ELEMENTS // (b2 * t * (s + n_out * c)))
    chunks = []
    for r in range(0, b1, step):
        terms = (_patch_block(u.patches[r : r + step, g], u.delta[r : r + step, :, g], v.patches[:, g],
                              v.delta[:, :, g], mode) for g in range(groups))  # fmt: skip
        chunks.append(sum(terms))
    return torch.cat(chunks)


def _patch_block(p1: Tensor, d1: Tensor, p2: Tensor, d2: Tensor, mode: str) -> Tensor:
    """One group: patches p (B, K, T), δ (B, O, C, T); full blocks in the (B1, O, B2, O) accumulation layout.

    H[n, t, m, o, c] = Σ_s (p_nt·p_ms) δ_m[o, c, s] first, then Σ_{t,c} δ_n[o, c, t] H: two batched GEMMs.
    """
    h = torch.einsum("ntms,mocs->ntmoc", torch.einsum("nkt,mks->ntms", p1, p2), d2)
    if mode == "full":
        return torch.einsum("noct,ntmpc->nomp", d1, h)
    if mode == "trace":
        return torch.einsum("noct,ntmoc->nm", d1, h) / d1.shape[1]
    return torch.einsum("noct,ntmoc->nmo", d1, h)
