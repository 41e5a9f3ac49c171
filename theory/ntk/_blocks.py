"""The blocked driver of ``empirical_ntk``: features of row and column blocks, contracted in strips.

Memory is bounded by a budget (host: ``HOST_FEATURE_BYTES``; CUDA: a quarter of the free device memory):
3/4 of it for held features, 1/4 for the working memory (activations, patches) of the chunk of samples
whose features are being computed. When every sample's features fit, they are computed once and the Gram
is taken in row strips against all later columns, so a symmetric kernel costs about 9/16 of the square
product. Otherwise a row block as large as the budget allows is held while column blocks are streamed (and
recomputed for each row block): feature work grows by about N/(2R) for R held rows, the Gram work does not.
Traced and diagonal kernels stream the outputs instead when one output's features of every sample fit and
the closed forms repeated for every output add little (conv nets, not MLPs): after one forward if every
sample's activations fit too, else with a forward per output and chunk of samples (O forwards instead of
recomputing every column block's features for each held row block).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Protocol

import torch
from torch import Tensor

HOST_FEATURE_BYTES = 2**31  # 2 GiB on the host: 3/4 for held features, 1/4 for the working memory of a chunk
PAIR_BYTES = 2**28  # bound on the kernel temporaries of one contraction call
STREAMING_OVERHEAD = 1.05  # stream outputs only if closed forms repeated per output add at most 5% of the MACs


class KernelBackend(Protocol):
    """What an implementation provides to the blocked driver: per-block features and their contraction."""

    groups: dict[str, tuple[str, ...]]
    mode: str  # "full", "trace" or "diag"

    def bytes_per_sample(self, x: Tensor) -> tuple[int, int]:
        """(held, working) bytes per sample: the features ``features`` returns, and its memory on the way."""

    def features(self, x: Tensor) -> Any:
        """Features of a block of inputs: tensors, dicts, lists or dataclasses batched along dim 0."""

    def contract(self, f1: Any, f2: Any) -> dict[str, Tensor]:
        """Kernel block {group: (B1, B2, ...)} of two blocks' features."""


def feature_budget(device: torch.device) -> int:
    """Bytes of features the driver may hold at once on ``device``."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0] // 4
    return HOST_FEATURE_BYTES


def assemble(compute: Any, x: Tensor, chunk: int) -> Any:
    """``compute(x)`` evaluated ``chunk`` samples at a time into tensors allocated after the first chunk, so
    the peak is the whole result plus one chunk (not two copies of the result, as concatenating would be)."""
    n = x.shape[0]
    if chunk >= n:
        return compute(x)
    first = compute(x[:chunk])
    out = _map(lambda t: t.new_empty((n, *t.shape[1:])), first)
    _place(out, first, 0)
    del first
    for c in range(chunk, n, chunk):
        _place(out, compute(x[c : c + chunk]), c)
    return out


def _map(fn: Any, tree: Any) -> Any:
    if isinstance(tree, Tensor):
        return fn(tree)
    if isinstance(tree, dict):
        return {k: _map(fn, v) for k, v in tree.items()}
    if isinstance(tree, list):
        return [_map(fn, v) for v in tree]
    fields = {f.name: _map(fn, getattr(tree, f.name)) for f in dataclasses.fields(tree)
              if isinstance(getattr(tree, f.name), Tensor)}  # fmt: skip
    return dataclasses.replace(tree, **fields)


def _place(dst: Any, src: Any, start: int) -> None:
    """Copy the features ``src`` of a chunk into rows ``start:`` of ``dst``."""
    if isinstance(dst, Tensor):
        dst[start : start + src.shape[0]].copy_(src)
    elif isinstance(dst, dict):
        for k in dst:
            _place(dst[k], src[k], start)
    elif isinstance(dst, list):
        for d, s in zip(dst, src, strict=True):
            _place(d, s, start)
    else:
        for f in dataclasses.fields(dst):
            if isinstance(getattr(dst, f.name), Tensor):
                _place(getattr(dst, f.name), getattr(src, f.name), start)


def rows(features: Any, start: int, stop: int | None) -> Any:
    """The features of samples ``start:stop`` of a block (views, no copies)."""
    if isinstance(features, Tensor):
        return features[start:stop]
    if isinstance(features, dict):
        return {k: rows(v, start, stop) for k, v in features.items()}
    if isinstance(features, list):
        return [rows(v, start, stop) for v in features]
    if dataclasses.is_dataclass(features):
        sliced = {f.name: rows(getattr(features, f.name), start, stop) for f in dataclasses.fields(features)
                  if isinstance(getattr(features, f.name), Tensor)}  # fmt: skip
        return dataclasses.replace(features, **sliced)
    raise TypeError(f"Cannot slice features of type {type(features).__name__}.")


@dataclasses.dataclass(frozen=True)
class Plan:
    """Row block ``held`` (features kept), column block ``streamed``, strip heights of contraction calls."""

    held: int
    streamed: int
    diagonal_strip: int
    strip: int


def plan(
    n1: int,
    n2: int,
    symmetric: bool,
    feature_bytes: int,
    pair_bytes: int,
    gemm_rows: int,
    budget: int,
    block: int | None,
) -> Plan:
    """Block sizes for an (n1, n2) kernel: features take ``feature_bytes`` and kernel entries ``pair_bytes``
    per sample (pair), and one sample is ``gemm_rows`` rows of the contraction GEMMs.

    Diagonal strips are ⌈R/8⌉ samples high (the triangle then costs 9/16 of the square) but at least 64 GEMM
    rows (measured: thinner strips lose more GEMM rate than they save work)."""
    if block is not None:
        held = streamed = block
    elif symmetric and n1 * feature_bytes <= budget:
        held = streamed = n1
    elif not symmetric and n2 * feature_bytes <= budget // 2:
        streamed = n2
        held = max(1, min(n1, (budget - n2 * feature_bytes) // feature_bytes))
    else:
        streamed = max(1, min(n2, budget // (8 * feature_bytes)))
        held = max(streamed, min(n1, (budget - streamed * feature_bytes) // feature_bytes))
    bound = max(1, PAIR_BYTES // (max(held, streamed) * pair_bytes))
    diagonal = min(held, max(math.ceil(held / 8), math.ceil(64 / gemm_rows)))
    return Plan(held, streamed, max(1, min(diagonal, bound)), max(1, min(held, bound)))


def fill_kernel(
    backend: KernelBackend, x1: Tensor, x2: Tensor | None, n_out: int, dtype: torch.dtype, block: int | None
) -> dict[str, Tensor]:
    """Kernels {group: (N1, N2, ...)} filled block by block; with ``x2=None`` the upper triangle is mirrored.

    Traced and diagonal kernels are sums over outputs of single-output kernels: when the backend streams
    outputs (``output_features``) and every sample's single-output features fit the budget, one pass over
    the outputs fills the whole kernel, holding 1/O of the features (and keeping them hot in cache).
    """
    symmetric, mode = x2 is None, backend.mode
    x2 = x1 if symmetric else x2
    n1, n2 = x1.shape[0], x2.shape[0]
    itemsize = torch.finfo(dtype).bits // 8
    per_pair = {"full": n_out * n_out, "diag": n_out, "trace": 1}[mode]
    budget = feature_budget(x1.device)
    tail = (n_out, n_out) if mode == "full" else (n_out,) if mode == "diag" else ()
    out = {key: torch.empty((n1, n2, *tail), dtype=dtype, device=x1.device) for key in backend.groups}
    # sketched features are small once sketched: holding them beats streaming outputs through unsketched buffers
    streams = mode != "full" and block is None and hasattr(backend, "output_features")
    streams = streams and not getattr(backend, "sketch_dim", None)
    streams = streams and backend.output_streaming_overhead(x1) <= STREAMING_OVERHEAD
    feature_bytes, working = backend.bytes_per_sample(x1)
    if streams:
        output_bytes, output_working = backend.output_bytes_per_sample(x1)
        samples = n1 + (0 if symmetric else n2)
        p = plan(n1, n2, symmetric, 1, itemsize, 1, budget, None)
        if samples * (output_bytes + output_working) <= budget:  # one forward, all outputs streamed
            per_output = zip(*[backend.output_features(x) for x in (x1, x2)[: 1 if symmetric else 2]], strict=True)
        elif samples * output_bytes <= budget * 3 // 4 < samples * feature_bytes:  # a forward per output
            chunk = max(1, budget // 4 // max(output_working, 1))

            def one_output(o: int) -> tuple:
                return tuple(assemble(lambda c: backend.output_features_of(c, o), x, chunk)
                             for x in (x1, x2)[: 1 if symmetric else 2])  # fmt: skip

            per_output = (one_output(o) for o in range(n_out))
        else:
            per_output = None
        if per_output is not None:
            with torch.no_grad():
                _fill_by_output(backend, per_output, n1, symmetric, out, p.diagonal_strip, p.strip)
            return out
    gemm_rows = n_out if mode == "full" else 1
    p = plan(n1, n2, symmetric, max(feature_bytes, 1), per_pair * itemsize, gemm_rows, budget * 3 // 4, block)
    chunk = block or max(1, budget // 4 // max(working, 1))  # samples whose working memory may coexist

    def features(x: Tensor) -> Any:
        return assemble(backend.features, x, chunk)

    def put(i: int, j: int, blocks: dict[str, Tensor], mirror_from: int | None) -> None:
        for key, value in blocks.items():
            h, w = value.shape[:2]
            out[key][i : i + h, j : j + w] = value
            if mirror_from is not None and mirror_from < w:
                flipped = value[:, mirror_from:].transpose(0, 1)
                out[key][j + mirror_from : j + w, i : i + h] = flipped.transpose(-1, -2) if mode == "full" else flipped

    def strips(r: Any, c: Any, i: int, j: int, height: int, count: int, diagonal: bool) -> None:
        for s in range(0, count, height):
            cols = rows(c, s, count) if diagonal else c
            mirror = min(height, count - s) if diagonal else 0
            put(i + s, j + s if diagonal else j, backend.contract(rows(r, s, s + height), cols),
                mirror if symmetric else None)  # fmt: skip

    cached = held = cols = None
    with torch.no_grad():
        for i in range(0, n1, p.held):
            held = None  # release the previous block before computing the next (the peak would be two blocks)
            held = features(x1[i : i + p.held])
            count = min(p.held, n1 - i)
            if symmetric:
                strips(held, held, i, i, p.diagonal_strip, count, diagonal=True)
            for j in range(i + count if symmetric else 0, n2, p.streamed):
                if cached is None:
                    cols = None
                    cols = features(x2[j : j + p.streamed])
                    cached = cols if p.streamed == n2 else None
                strips(held, cached if cached is not None else cols, i, j, p.strip, count, diagonal=False)
    return out


def _fill_by_output(
    backend: Any, per_output: Any, n1: int, symmetric: bool, out: dict[str, Tensor], diagonal: int, strip: int
) -> None:
    """One pass over the outputs, ``per_output`` yielding the features of x1 (and x2) for each output:
    Θ_tr = (1/O) Σ_o Θ_o, Θ_diag[..., o] = Θ_o; for x2=None the upper triangle of each Θ_o is taken in strips
    and the lower one mirrored at the end."""
    mode = backend.mode
    if mode == "trace":
        for value in out.values():
            value.zero_()
    o = -1
    for feats in per_output:  # not enumerate(): its recycled result tuple would keep the last features alive
        o += 1
        f1, f2 = feats[0], feats[-1]
        height = diagonal if symmetric else strip
        for s in range(0, n1, height):
            start = s if symmetric else 0
            blocks = backend.contract_outputs(rows(f1, s, s + height), rows(f2, start, None))
            for key, value in blocks.items():
                target = out[key][s : s + value.shape[0], start:]
                if mode == "trace":
                    target.add_(value)
                else:
                    target[..., o] = value
        del feats, f1, f2, blocks  # free this output's features before the next output's are built
    for value in out.values():
        if mode == "trace":
            value.div_(o + 1)
        if symmetric:
            for s in range(0, n1, diagonal):
                value[s + diagonal :, s : s + diagonal] = value[s : s + diagonal, s + diagonal :].transpose(0, 1)
