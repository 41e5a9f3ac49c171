"""The blocked driver of ``empirical_ntk``: features of row and column blocks, contracted in strips.

Memory is bounded by a feature budget (host: ``HOST_FEATURE_BYTES``; CUDA: a quarter of the free device
memory). When every sample's features fit, they are computed once and the Gram is taken in row strips
against all later columns, so a symmetric kernel costs (1 + 1/8)/2 of the square product. Otherwise a row
block as large as the budget allows is held while column blocks are streamed (and recomputed for each row
block): feature work grows by about N/(2R) for R held rows, the Gram work does not.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Protocol

import torch
from torch import Tensor

HOST_FEATURE_BYTES = 3 * 2**29  # 1.5 GiB of held features on the host
PAIR_BYTES = 2**28  # bound on the kernel temporaries of one contraction call


class KernelBackend(Protocol):
    """What an implementation provides to the blocked driver: per-block features and their contraction."""

    groups: dict[str, tuple[str, ...]]
    mode: str  # "full", "trace" or "diag"

    def bytes_per_sample(self, x: Tensor) -> int:
        """Memory of one sample's features (sizes the blocks)."""

    def features(self, x: Tensor) -> Any:
        """Features of a block of inputs: tensors, dicts, lists or dataclasses batched along dim 0."""

    def contract(self, f1: Any, f2: Any) -> dict[str, Tensor]:
        """Kernel block {group: (B1, B2, ...)} of two blocks' features."""


def feature_budget(device: torch.device) -> int:
    """Bytes of features the driver may hold at once on ``device``."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0] // 4
    return HOST_FEATURE_BYTES


def rows(features: Any, start: int, stop: int) -> Any:
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
    diagonal = held if block is not None else min(held, max(math.ceil(held / 8), math.ceil(64 / gemm_rows)))
    return Plan(held, streamed, max(1, min(diagonal, bound)), max(1, min(held, bound)))


def fill_kernel(
    backend: KernelBackend, x1: Tensor, x2: Tensor | None, n_out: int, dtype: torch.dtype, block: int | None
) -> dict[str, Tensor]:
    """Kernels {group: (N1, N2, ...)} filled block by block; with ``x2=None`` the upper triangle is mirrored."""
    symmetric, mode = x2 is None, backend.mode
    x2 = x1 if symmetric else x2
    n1, n2 = x1.shape[0], x2.shape[0]
    itemsize = torch.finfo(dtype).bits // 8
    per_pair = {"full": n_out * n_out, "diag": n_out, "trace": 1}[mode]
    feature_bytes = max(backend.bytes_per_sample(x1), 1)
    gemm_rows = n_out if mode == "full" else 1
    p = plan(n1, n2, symmetric, feature_bytes, per_pair * itemsize, gemm_rows, feature_budget(x1.device), block)
    tail = (n_out, n_out) if mode == "full" else (n_out,) if mode == "diag" else ()
    out = {key: torch.empty((n1, n2, *tail), dtype=dtype, device=x1.device) for key in backend.groups}

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

    cached = None
    with torch.no_grad():
        for i in range(0, n1, p.held):
            held = backend.features(x1[i : i + p.held])
            count = min(p.held, n1 - i)
            if symmetric:
                strips(held, held, i, i, p.diagonal_strip, count, diagonal=True)
            for j in range(i + count if symmetric else 0, n2, p.streamed):
                if cached is None or p.streamed < n2:
                    cols = backend.features(x2[j : j + p.streamed])
                    cached = cols if p.streamed == n2 else None
                strips(held, cols if cached is None else cached, i, j, p.strip, count, diagonal=False)
    return out
