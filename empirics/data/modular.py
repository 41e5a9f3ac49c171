"""Modular arithmetic tables a ∘ b mod p, the grokking benchmark (Power et al. 2022; Nanda et al. 2023)."""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum

import numpy as np

from empirics.data import register_dataset
from empirics.data.base import Dataset
from theory._validation import check_in_range, check_option, check_positive_int


class ModularOperation(StrEnum):
    """The binary operation ``a ∘ b mod p``.

    - ``ADD``: a + b (Power et al. 2022; Nanda et al. 2023; Gromov 2023).
    - ``SUB``: a − b.
    - ``DIV``: a · b⁻¹ for b ≠ 0 (Power et al. 2022), pairs with b = 0 excluded.
    - ``QUAD``: a² + ab + b² (Power et al. 2022, a "hard" operation).
    """

    ADD = "add"
    SUB = "sub"
    DIV = "div"
    QUAD = "quad"


def _div(a: np.ndarray, b: np.ndarray, p: int) -> np.ndarray:
    return a * np.array([pow(int(v), -1, p) for v in b], dtype=np.int64) % p


_OPERATIONS: dict[ModularOperation, Callable[[np.ndarray, np.ndarray, int], np.ndarray]] = {
    ModularOperation.ADD: lambda a, b, p: (a + b) % p,
    ModularOperation.SUB: lambda a, b, p: (a - b) % p,
    ModularOperation.DIV: _div,
    ModularOperation.QUAD: lambda a, b, p: (a * a + a * b + b * b) % p,
}


def is_prime(p: int) -> bool:
    """Whether the integer ``p`` is a prime (trial division)."""
    return p >= 2 and all(p % d for d in range(2, int(p**0.5) + 1))


def split_sizes(p: int, operation: str, train_fraction: float) -> tuple[int, int]:
    """``(n_train, n_test)`` of the table of ``a ∘ b mod p``: p² pairs (p(p − 1) for division), of which
    ``round(train_fraction · pairs)`` train."""
    pairs = p * (p - 1) if operation == ModularOperation.DIV else p * p
    n_train = int(round(train_fraction * pairs))
    return n_train, pairs - n_train


@register_dataset("modular")
def modular(
    p: int = 97,
    operation: str = "add",
    train_fraction: float = 0.3,
    split_seed: int = 0,
) -> Dataset:
    """All pairs (a, b) ∈ Z_p² (b ≠ 0 for division) labelled c = a ∘ b mod p, split at random.

    Inputs are the integer pairs ``(a, b)`` (shape (n, 2), stored as float64; models embed or one-hot them);
    labels are the classes ``c`` (``num_classes = p``). A ``train_fraction`` of the table, chosen by
    ``split_seed``, is the training set and the rest the test set (Power et al. 2022).

    Example:
        >>> ds = modular(p=7, operation="add", train_fraction=0.5)
        >>> ds.n_train + ds.n_test, ds.num_classes
        (49, 7)
    """
    check_positive_int("p", p, owner="modular")
    if not is_prime(p):
        raise ValueError(f"The 'p' parameter of modular must be a prime. Got {p!r} instead.")
    op = ModularOperation(check_option("operation", operation, list(ModularOperation), owner="modular"))
    check_in_range("train_fraction", train_fraction, 0.0, 1.0, inclusive=(False, False), owner="modular")
    a, b = (g.reshape(-1) for g in np.meshgrid(np.arange(p), np.arange(p), indexing="ij"))
    if op is ModularOperation.DIV:
        a, b = a[b != 0], b[b != 0]
    c = _OPERATIONS[op](a, b, p).astype(np.int64)
    order = np.random.default_rng(split_seed).permutation(a.size)
    n_train, n_test = split_sizes(p, op, train_fraction)
    if not (n_train and n_test):
        raise ValueError(
            f"The 'train_fraction' parameter of modular leaves an empty split for p={p}. Got {train_fraction!r}."
        )
    x = np.stack([a, b], axis=1).astype(np.float64)[order]
    y = c[order]
    args = {"p": p, "operation": op.value, "train_fraction": train_fraction, "split_seed": split_seed}
    return Dataset("modular", x[:n_train], y[:n_train], x[n_train:], y[n_train:], "classification", p, None, args)
