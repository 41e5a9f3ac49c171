"""Structured eNTK: per-layer closed forms from hooked activations and backpropagated δ, no Jacobian built.

For a layer y = W a + b with δ_n = ∂f(x_n)/∂y ∈ R^{O×d_out}: Θ_W(n, m) = (a_n·a_m) δ_n δ_mᵀ and
Θ_b(n, m) = δ_n δ_mᵀ (Novak et al. 2022, "structured derivatives"; Jacot et al. 2018). Layers applied at
several positions (Conv1d/Conv2d with any stride/padding/dilation/groups, Linear on sequences) are contracted
through position-pair Grams when they have few positions, else through their per-sample gradients
Σ_t δ_t ⊗ p_t, formed by one batched GEMM per output from strided patches p; Embedding on sequences and the
affine parameters of LayerNorm/GroupNorm/BatchNorm (eval) through their per-sample gradients. Parameter-free
modules (activations, pooling, Flatten, Dropout in eval, residual additions) need nothing: δ is obtained by
one backward per output to a zero perturbation added to each layer's output, and 4-D inputs of conv nets
run in channels-last memory format (conv forward and backward-data ~2× faster on CPU oneDNN).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor, nn

from theory.ntk import _factors
from theory.ntk._factors import CountSketch, Factor, Kron, PatchKron, SketchedBackend
from theory.ntk._model import ModelView

logger = logging.getLogger("theory.ntk")

_PAIR_ELEMENTS = 2**24  # bound on the (t, s) Gram temporaries of one row chunk of a conv layer

SUPPORTED = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Embedding, nn.LayerNorm, nn.GroupNorm, nn.modules.batchnorm._BatchNorm)


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


class StructuredBackend(SketchedBackend):
    """Kernel blocks from per-layer factors (hooked inputs a and δ), one group per owning module.

    With ``sketch_dim`` = k, each layer contracted through per-sample gradients with more than k of them is
    count-sketched to k coordinates (one sketch per layer, drawn from ``random_state``); other layers stay exact.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:  # the arguments of SketchedBackend
        super().__init__(*args, **kwargs)
        self.owners = _owners(self.view)
        self.selected = set(self.view.names)
        self.channels_last = any(isinstance(m, nn.Conv2d) for m in self.owners.values())

    def _forward(self, x: Tensor, capture, captured: tuple[dict, ...]) -> Tensor:
        """Outputs with the capture hooks; channels-last for 4-D inputs of conv nets, unless the model rejects
        it (e.g. ``.view`` on a conv output), in which case the contiguous format is used from then on."""
        handles = [m.register_forward_hook(capture(p)) for p, m in self.owners.items()]
        try:
            if self.channels_last and x.dim() == 4:
                try:
                    return self.view(x.contiguous(memory_format=torch.channels_last))
                except RuntimeError as err:
                    logger.info("structured eNTK: channels-last input rejected (%s); using contiguous", err)
                    self.channels_last = False
                    for d in captured:
                        d.clear()
            return self.view(x)
        finally:
            for h in handles:
                h.remove()

    def _prepare(self, x: Tensor, slots: int | None, mode: str) -> tuple:
        """Forward with capture hooks; collectors with ``slots`` outputs each (None: all O)."""
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

        with torch.enable_grad():
            out = self._forward(x, capture, (inputs, versions, perturbations))
        paths = list(perturbations)
        n_out = out.shape[1]
        slots = n_out if slots is None else slots
        collectors = [self._collector(p, inputs[p].detach(), perturbations[p], slots, mode) for p in paths]
        return out, paths, [perturbations[p] for p in paths], collectors, (inputs, versions)

    def _deltas(self, out: Tensor, leaves: list[Tensor], o: int, last: bool) -> tuple[Tensor, ...]:
        """δ of every layer for output o: one backward of Σ_n f_o(x_n) (samples do not interact); the graph is
        freed after the ``last`` output's."""
        with torch.enable_grad():
            total = out[:, o].sum()
        return torch.autograd.grad(total, leaves, retain_graph=not last, allow_unused=True, materialize_grads=True)

    def _gather(self, paths: list[str], collectors: list, captured: tuple[dict, dict]) -> dict[str, list[Factor]]:
        inputs, versions = captured
        changed = [p for p in paths if inputs[p]._version != versions[p]]
        if changed:
            raise ValueError(f"The inputs of layers {changed} are modified in place after use; the kernel is undefined")
        feats: dict[str, list[Factor]] = {key: [] for key in self.groups}
        for path, collector in zip(paths, collectors, strict=True):
            feats[path if path in feats else ""].extend(collector.finish())
        return feats

    def features(self, x: Tensor) -> dict[str, list[Factor]]:
        """Factors of every layer for all O outputs (one backward per output: faster than is_grads_batched)."""
        out, paths, leaves, collectors, captured = self._prepare(x, None, self.mode)
        for o in range(out.shape[1]):
            for collector, delta in zip(collectors, self._deltas(out, leaves, o, o == out.shape[1] - 1), strict=True):
                collector.add(o, delta)
        return self._gather(paths, collectors, captured)

    def output_features(self, x: Tensor) -> Iterator[dict[str, list[Factor]]]:
        """For o = 0, …, O−1 the factors of output o alone, in buffers reused from one output to the next: the
        traced and diagonal kernels are sums over o of single-output kernels, so they need 1/O of the memory."""
        out, paths, leaves, collectors, captured = self._prepare(x, 1, "trace")
        for o in range(out.shape[1]):
            for collector, delta in zip(collectors, self._deltas(out, leaves, o, o == out.shape[1] - 1), strict=True):
                collector.add(0, delta)
            yield self._gather(paths, collectors, captured)

    def output_features_of(self, x: Tensor, o: int) -> dict[str, list[Factor]]:
        """The factors of output o alone (a forward and one backward): for kernels too large to keep every
        sample's activations while the outputs are streamed, each output's features are built in chunks."""
        out, paths, leaves, collectors, captured = self._prepare(x, 1, "trace")
        for collector, delta in zip(collectors, self._deltas(out, leaves, o, last=True), strict=True):
            collector.add(0, delta)
        return self._gather(paths, collectors, captured)

    def bytes_per_sample(self, x: Tensor) -> tuple[int, int]:
        """Bytes per sample of :meth:`features`: the factors it returns, and the working memory on the way
        (saved activations, patches, unsketched gradients)."""
        return self._bytes_per_sample(x, None, self.mode)

    def output_bytes_per_sample(self, x: Tensor) -> tuple[int, int]:
        """Bytes per sample of one output's factors and of the working memory (saved activations, patches)."""
        return self._bytes_per_sample(x, 1, "trace")

    def output_streaming_overhead(self, x: Tensor) -> float:
        """MACs per sample pair of the traced kernel streamed output by output over those of all outputs at
        once: closed forms repeat their activation (patch) Grams for every output, gradients cost the same."""
        feats = self._gather(*[self._prepare(x[:1], None, self.mode)[i] for i in (1, 3, 4)])
        together = by_output = 0
        for f in (f for fs in feats.values() for f in fs):
            if isinstance(f, Kron):
                n_out, d = f.delta.shape[1:]
                d_a = f.a.shape[1] if f.a.dim() == 2 else 1
                together, by_output = together + d_a + n_out * d, by_output + n_out * (d_a + d)
            elif isinstance(f, PatchKron):
                _, groups, t, k = f.patches.shape
                n_out, c = f.delta.shape[1], f.delta.shape[3]
                together += groups * t * t * (k + n_out * c)
                by_output += n_out * groups * t * t * (k + c)
            else:
                together, by_output = together + f[0].numel(), by_output + f[0].numel()
        return by_output / max(together, 1)

    def _bytes_per_sample(self, x: Tensor, slots: int | None, mode: str) -> tuple[int, int]:
        """(held, working) bytes of a forward and its collectors, two samples minus one (parameters saved
        for the backward cancel). Working memory: saved activations, patches, unsketched buffers, and for
        the backward three times the layer outputs (perturbations, δ, autograd's intermediate gradients)."""

        def measure(batch: Tensor) -> tuple[int, int]:
            total = 0

            def pack(t: Tensor) -> Tensor:
                nonlocal total
                total += t.numel() * t.element_size()
                return t

            with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
                _, _, leaves, collectors, _ = self._prepare(batch, slots, mode)
            held = sum(t.numel() * t.element_size() for c in collectors for f in c.finish() for t in _tensors(f))
            backward = 3 * sum(t.numel() * t.element_size() for t in leaves)
            return held, total + backward + sum(c.nbytes() for c in collectors) - held

        pair = x[:2] if len(x) >= 2 else x[:1].expand(2, *x.shape[1:])
        (h2, w2), (h1, w1) = measure(pair), measure(x[:1])
        return max(h2 - h1, 1), max(w2 - w1, 0)

    def contract_outputs(self, f1: dict, f2: dict) -> dict[str, Tensor]:
        """Kernel block (B1, B2) of two blocks' single-output factors from :meth:`output_features`."""
        return {key: _contract_layers(f1[key], f2[key], "trace") for key in self.groups}

    def _sketch(self, path: str, like: Tensor):
        """The count-sketch of layer ``path`` for p per-sample gradients (None: exact), drawn once per layer."""

        def get(size: int) -> CountSketch | None:
            if self.sketch_dim is None or size <= self.sketch_dim:
                return None
            if path not in self.sketches:
                seed = (self.seed + 7919 * list(self.owners).index(path)) % 2**63
                self.sketches[path] = CountSketch.draw(size, self.sketch_dim, seed, like)
            return self.sketches[path]

        return get

    def names(self, path: str) -> tuple[str, str]:
        return (f"{path}.weight", f"{path}.bias") if path else ("weight", "bias")

    def _collector(self, path: str, a: Tensor, y: Tensor, n_out: int, mode: str) -> _factors.Collector:
        """The factor collector of one layer from its input ``a`` and output ``y`` (the perturbation), for
        ``n_out`` outputs contracted in ``mode``."""
        module = self.owners[path]
        w, b = self.names(path)
        use_w, use_b = w in self.selected, b in self.selected
        n, sketch = a.shape[0], self._sketch(path, y)
        if isinstance(module, nn.Linear):
            if a.dim() == 2:
                cols = ([a] if use_w else []) + ([torch.ones_like(a[:, :1])] if use_b else [])
                a_ext = torch.cat(cols, dim=1)
                return _factors.Stacked(y, n_out, (n, y.shape[1]), lambda d: Kron(a_ext, d))
            patches = _factors.sequence_patches(a, use_w, use_b)
            c = y.shape[-1]

            def seq_gct(d: Tensor) -> Tensor:
                return d.reshape(n, -1, c).transpose(1, 2).unsqueeze(1)

            return _factors.shared_layer(patches, seq_gct, c, n_out, mode, sketch)
        if isinstance(module, nn.Conv1d | nn.Conv2d):
            patches = _factors.conv_patches(module, a, use_w, use_b)
            groups, c = module.groups, module.out_channels // module.groups

            def conv_gct(d: Tensor) -> Tensor:
                return d.reshape(n, groups, c, -1)

            return _factors.shared_layer(patches, conv_gct, c, n_out, mode, sketch)
        if isinstance(module, nn.Embedding):
            return _factors.embedding_layer(module, a, y, n_out, sketch)
        stats = tuple(self.view.buffers.get(f"{path}.{s}" if path else s) for s in ("running_mean", "running_var"))
        return _factors.norm_layer(module, a, use_w, use_b, stats, n_out, sketch)

    def contract(self, f1: dict, f2: dict) -> dict[str, Tensor]:
        return {key: _contract_layers(f1[key], f2[key], self.mode) for key in self.groups}


def _tensors(f: Factor) -> tuple[Tensor, ...]:
    if isinstance(f, Kron):
        return f.a, f.delta
    return (f.patches, f.delta) if isinstance(f, PatchKron) else (f,)


def _contract_layers(f1: list, f2: list, mode: str) -> Tensor:
    """Σ over layers of the kernel block; full blocks accumulate as (B1, O, B2, O) and are permuted once."""
    total = None
    for u, v in zip(f1, f2, strict=True):
        if isinstance(u, Kron):
            term = _contract_kron(u, v, mode)
        elif isinstance(u, PatchKron):
            term = _contract_patches(u, v, mode)
        else:
            b1, n_out, p = u.shape
            if mode == "full":
                term = (u.reshape(b1 * n_out, p) @ v.reshape(-1, p).T).reshape(b1, n_out, -1, n_out)
            elif mode == "trace":
                term = (u.reshape(b1, -1) @ v.reshape(v.shape[0], -1).T).div_(n_out)
            else:
                term = torch.bmm(u.transpose(0, 1), v.permute(1, 2, 0)).permute(1, 2, 0)
        total = term if total is None else total.add_(term)
    return total.permute(0, 2, 1, 3) if mode == "full" else total


def _contract_kron(u: Kron, v: Kron, mode: str) -> Tensor:
    gram = u.gram(v)
    b1, n_out, d = u.delta.shape
    b2 = v.delta.shape[0]
    if mode == "full":
        dd = (u.delta.reshape(b1 * n_out, d) @ v.delta.reshape(b2 * n_out, d).T).reshape(b1, n_out, b2, n_out)
        return dd.mul_(gram[:, None, :, None])
    if mode == "trace":
        return (u.delta.reshape(b1, -1) @ v.delta.reshape(b2, -1).T).mul_(gram / n_out)
    return torch.bmm(u.delta.transpose(0, 1), v.delta.permute(1, 2, 0)).permute(1, 2, 0).mul_(gram[:, :, None])


def _contract_patches(u: PatchKron, v: PatchKron, mode: str) -> Tensor:
    """Σ_g Σ_{t,s} (p_nt·p_ms)(δ_nt·δ_ms) in row chunks that keep the (t, s) temporaries bounded."""
    b1, groups, t, _ = u.patches.shape
    b2, s = v.patches.shape[0], v.patches.shape[2]
    n_out, c = v.delta.shape[1], v.delta.shape[3]
    per_row = t * b2 * {"trace": 2 * s, "diag": (n_out + 1) * s, "full": s + n_out * c}[mode]
    step = max(1, _PAIR_ELEMENTS // per_row)
    chunks = []
    for r in range(0, b1, step):
        terms = (_patch_block(u.patches[r : r + step, g], u.delta[r : r + step, :, g], v.patches[:, g],
                              v.delta[:, :, g], mode) for g in range(groups))  # fmt: skip
        chunks.append(sum(terms))
    return torch.cat(chunks)


def _patch_block(p1: Tensor, d1: Tensor, p2: Tensor, d2: Tensor, mode: str) -> Tensor:
    """One group: patches p (B, T, K), δ (B, O, C, T); full blocks in the (B1, O, B2, O) accumulation layout.

    A[n, t, m, s] = p_nt·p_ms is one GEMM. Traced: E = Σ_{o,c} δ_n[o, c, t] δ_m[o, c, s] is another and
    Θ = Σ_{t,s} A ⊙ E / O (diagonal: one E per output, a bmm); full: H[n, t, m, o, c] = Σ_s A δ_m[o, c, s],
    then Σ_{t,c} δ_n[o, c, t] H. Measured on CPU the traced form runs near the GEMM rate, the full one
    10–40× below it (inner dimensions T and O).
    """
    b1, t, _ = p1.shape
    b2, n_out, c, s = d2.shape
    a = p1.reshape(b1 * t, -1) @ p2.reshape(b2 * s, -1).T
    if mode == "trace":
        e = d1.permute(0, 3, 1, 2).reshape(b1 * t, -1) @ d2.permute(0, 3, 1, 2).reshape(b2 * s, -1).T
        return e.mul_(a).view(b1, t, b2, s).sum((1, 3)).div_(n_out)
    if mode == "diag":
        e = torch.bmm(d1.permute(1, 0, 3, 2).reshape(n_out, b1 * t, c), d2.permute(1, 2, 0, 3).reshape(n_out, c, -1))
        return e.mul_(a).view(n_out, b1, t, b2, s).sum((2, 4)).permute(1, 2, 0)
    h = torch.einsum("ntms,mocs->ntmoc", a.view(b1, t, b2, s), d2)
    return torch.einsum("noct,ntmpc->nomp", d1, h)
