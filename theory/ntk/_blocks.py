"""The blocked driver of ``empirical_ntk``: a memory plan, then features of row and column blocks contracted in strips.

:func:`plan_kernel` fixes the route and the block sizes within a budget (:func:`feature_budget`: 2 GiB on the
host, a quarter of the free memory on CUDA, never more than half of what is left after the result): 3/4 of it
for held features, 1/4 for the working memory (activations, patches) of the chunk of samples whose features
are being computed. Its ``workspace`` (held features + a chunk's working memory + the contraction temporaries)
is what ``empirical_ntk``'s memory check adds to the result. Routes:

- ``"blocks"``: when every sample's features fit, they are computed once and the Gram is taken in row strips
  against all later columns, so a symmetric kernel costs about 9/16 of the square product. Otherwise a row block
  as large as the budget allows is held while column blocks are streamed (and recomputed for each row block):
  feature work grows by about N/(2R) for R held rows, the Gram work does not.
- ``"outputs"``: traced and diagonal kernels are sums over outputs of single-output kernels, so when the closed
  forms repeated for every output add little (conv nets, not MLPs) the outputs are streamed: one forward, then
  one output's features of every sample at a time (1/O of the memory, hot in cache).
- ``"output forwards"``: as ``"outputs"`` when one output's features of every sample fit but not every sample's
  activations: a forward per output and chunk of samples (O forwards instead of recomputing every column
  block's features for each held row block).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Protocol

import torch
from torch import Tensor

from theory.ntk import _guards

HOST_FEATURE_BYTES = 2**31  # 2 GiB on the host: 3/4 for held features, 1/4 for the working memory of a chunk
PAIR_BYTES = 2**28  # bound on the kernel entries of one contraction call
TEMPORARY_COPIES = 3  # kernel entries alive per contraction call: a layer's term, the sum, the mirrored copy
STREAMING_OVERHEAD = 1.05  # stream outputs only if closed forms repeated per output add at most 5% of the MACs


class KernelBackend(Protocol):
    """What an implementation provides to the blocked driver: per-block features and their contraction.

    A backend may also stream outputs (the structured one does): ``output_features(x)`` yields one output's
    features at a time, ``output_features_of(x, o)`` builds output o's alone, ``output_bytes_per_sample`` sizes
    them, ``output_streaming_overhead`` is their MACs over those of all outputs at once, and
    ``contract_outputs`` contracts two blocks' single-output features into a traced kernel block.
    """

    groups: dict[str, tuple[str, ...]]
    mode: str  # "full", "trace" or "diag"

    def bytes_per_sample(self, x: Tensor) -> tuple[int, int]:
        """(held, working) bytes per sample: the features ``features`` returns, and its memory on the way."""

    def features(self, x: Tensor) -> Any:
        """Features of a block of inputs: tensors, dicts, lists or dataclasses batched along dim 0."""

    def contract(self, f1: Any, f2: Any) -> dict[str, Tensor]:
        """Kernel block {group: (B1, B2, ...)} of two blocks' features."""


def feature_budget(device: torch.device, reserved: int = 0) -> int:
    """Bytes of features and working memory the driver may use on ``device``: ``HOST_FEATURE_BYTES`` on the host,
    a quarter of the available memory on CUDA, and at most half of what is available after ``reserved`` bytes
    (the result), so that a machine short of memory gets smaller blocks rather than an out-of-memory error."""
    available, _ = _guards.available_memory(device)
    budget = (available or 0) // 4 if device.type == "cuda" else HOST_FEATURE_BYTES
    return budget if available is None else min(budget, max(available - reserved, 0) // 2)


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
    pair_budget: int = PAIR_BYTES,
) -> Plan:
    """Block sizes for an (n1, n2) kernel: features take ``feature_bytes`` and kernel entries ``pair_bytes``
    per sample (pair), and one sample is ``gemm_rows`` rows of the contraction GEMMs; held features stay
    within ``budget`` and the kernel entries of one contraction call within ``pair_budget``.

    Diagonal strips are ⌈R/8⌉ samples high (the triangle then costs 9/16 of the square) but at least 64 GEMM
    rows (measured: thinner strips lose more GEMM rate than they save work)."""
    if block is not None:
        held, streamed = min(block, n1), min(block, n2)
    elif symmetric and n1 * feature_bytes <= budget:
        held = streamed = n1
    elif not symmetric and n2 * feature_bytes <= budget // 2:
        streamed = n2
        held = max(1, min(n1, (budget - n2 * feature_bytes) // feature_bytes))
    else:
        streamed = max(1, min(n2, budget // (8 * feature_bytes)))
        held = min(n1, max(streamed, (budget - streamed * feature_bytes) // feature_bytes))
    bound = max(1, pair_budget // (max(held, streamed) * pair_bytes))
    diagonal = min(held, max(math.ceil(held / 8), math.ceil(64 / gemm_rows)))
    return Plan(held, streamed, max(1, min(diagonal, bound)), max(1, min(held, bound)))


@dataclasses.dataclass(frozen=True)
class KernelPlan:
    """How :func:`fill_kernel` fills a kernel: its ``route`` ("blocks", "outputs" or "output forwards", see the
    module docstring), block sizes, the samples whose features are computed at once (``chunk``), and the
    ``workspace``: bytes it needs besides the result (held features, a chunk's working memory, temporaries)."""

    route: str
    blocks: Plan
    chunk: int
    workspace: int


def plan_kernel(
    backend: KernelBackend, x1: Tensor, x2: Tensor | None, n_out: int, dtype: torch.dtype, block: int | None,
    reserved: int = 0,
) -> KernelPlan:  # fmt: skip
    """The plan of an (N1, N2) kernel within :func:`feature_budget` (``reserved``: the result's bytes); with
    ``block`` (a user's ``block_size``) every block holds at most that many samples, computed at once."""
    symmetric, mode = x2 is None, backend.mode
    n1 = x1.shape[0]
    n2 = n1 if symmetric else x2.shape[0]
    samples = n1 + (0 if symmetric else n2)
    itemsize = torch.finfo(dtype).bits // 8
    pair_bytes = {"full": n_out * n_out, "diag": n_out, "trace": 1}[mode] * itemsize
    budget = feature_budget(x1.device, reserved)
    pair_budget = min(PAIR_BYTES, budget // 4 // TEMPORARY_COPIES)  # temporaries within a quarter of the budget
    feature_bytes, working = backend.bytes_per_sample(x1)
    # sketched features are small once sketched: holding them beats streaming outputs through unsketched buffers
    streams = mode != "full" and block is None and hasattr(backend, "output_features")
    streams = streams and not getattr(backend, "sketch_dim", None)
    if streams and backend.output_streaming_overhead(x1) <= STREAMING_OVERHEAD:
        output_bytes, output_working = backend.output_bytes_per_sample(x1)
        p = plan(n1, n2, symmetric, 1, itemsize, 1, budget, None, pair_budget)
        temporaries = TEMPORARY_COPIES * max(p.diagonal_strip, p.strip) * n2 * itemsize
        if samples * (output_bytes + output_working) <= budget:
            return KernelPlan("outputs", p, samples, samples * (output_bytes + output_working) + temporaries)
        if samples * output_bytes <= budget * 3 // 4 < samples * feature_bytes:
            chunk = min(max(1, budget // 4 // max(output_working, 1)), max(n1, n2))
            workspace = samples * output_bytes + chunk * output_working + temporaries
            return KernelPlan("output forwards", p, chunk, workspace)
    gemm_rows = n_out if mode == "full" else 1
    p = plan(n1, n2, symmetric, max(feature_bytes, 1), pair_bytes, gemm_rows, budget * 3 // 4, block, pair_budget)
    chunk = min(block or max(1, budget // 4 // max(working, 1)), max(p.held, p.streamed))
    one_block = symmetric and p.held >= n1  # then no column block is held next to the row block
    columns, height = (0, p.diagonal_strip) if one_block else (p.streamed, max(p.diagonal_strip, p.strip))
    temporaries = TEMPORARY_COPIES * height * max(p.held, p.streamed) * pair_bytes
    workspace = (p.held + columns) * feature_bytes + chunk * working + temporaries
    return KernelPlan("blocks", p, chunk, workspace)


def fill_kernel(
    backend: KernelBackend, kernel_plan: KernelPlan, x1: Tensor, x2: Tensor | None, n_out: int, dtype: torch.dtype
) -> dict[str, Tensor]:
    """Kernels {group: (N1, N2, ...)} filled by ``kernel_plan``; with ``x2=None`` the upper triangle is mirrored."""
    symmetric, mode = x2 is None, backend.mode
    x2 = x1 if symmetric else x2
    n1, n2 = x1.shape[0], x2.shape[0]
    tail = (n_out, n_out) if mode == "full" else (n_out,) if mode == "diag" else ()
    out = {key: torch.empty((n1, n2, *tail), dtype=dtype, device=x1.device) for key in backend.groups}
    p, chunk, inputs = kernel_plan.blocks, kernel_plan.chunk, (x1,) if symmetric else (x1, x2)
    if kernel_plan.route != "blocks":
        if kernel_plan.route == "outputs":
            per_output = zip(*[backend.output_features(x) for x in inputs], strict=True)
        else:

            def one_output(o: int) -> tuple:
                return tuple(assemble(lambda c: backend.output_features_of(c, o), x, chunk) for x in inputs)

            per_output = (one_output(o) for o in range(n_out))
        with torch.no_grad():
            _fill_by_output(backend, per_output, n1, symmetric, out, p.diagonal_strip, p.strip)
        return out

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
