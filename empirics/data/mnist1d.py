"""MNIST-1D (Greydanus & Kobak 2020), regenerated procedurally; never downloaded."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from empirics.data import register_dataset
from empirics.data.base import Dataset, add_label_noise
from theory._validation import check_in_range, check_positive_int


@lru_cache(maxsize=4)
def _make_mnist1d(num_samples: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """All ``num_samples`` examples of ``mnist1d.data.make_dataset`` (train_split 1), restoring global RNG state.

    Memoised (a sweep regenerates the same pool for every width and seed); the arrays are read-only.
    """
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.num_samples, args.train_split, args.seed = num_samples, 1.0, seed
    np_state, py_state = np.random.get_state(), random.getstate()  # make_dataset reseeds both globally
    try:
        data = make_dataset(args)
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)
    data["x"].flags.writeable = data["y"].flags.writeable = False
    return data["x"], data["y"]


@register_dataset("mnist1d")
def mnist1d(
    n_train: int = 4000,
    n_test: int = 1000,
    classes: Sequence[int] | None = None,
    label_noise: float = 0.0,
    noise_seed: int = 0,
    data_seed: int = 42,
) -> Dataset:
    """MNIST-1D: 40-sample 1-D signals of 10 digit templates (Greydanus & Kobak 2020).

    Generates a pool with ``mnist1d.data.make_dataset`` (``10·ceil((n_train + n_test)/k)`` examples for ``k``
    kept classes, so the defaults regenerate the published 4000/1000 split exactly), keeps ``classes`` (all ten
    when None; e.g. ``(0, 1)`` for the binary task of Jeffares et al. 2024, relabelled ``0..k-1`` in the given
    order), and splits the shuffled pool into the first ``n_train`` and next ``n_test`` examples. Training labels
    get ``label_noise`` by :func:`~empirics.data.base.add_label_noise` seeded by ``noise_seed`` (test labels are
    clean). Inputs are float64, standardised over the pool by ``make_dataset``.
    """
    check_positive_int("n_train", n_train, owner="mnist1d")
    check_positive_int("n_test", n_test, owner="mnist1d")
    check_in_range("label_noise", label_noise, 0.0, 1.0, owner="mnist1d")
    kept = list(range(10)) if classes is None else [int(c) for c in classes]
    if len(kept) < 2 or len(set(kept)) != len(kept) or not all(0 <= c < 10 for c in kept):
        raise ValueError(
            f"The 'classes' parameter of mnist1d must be None or >= 2 distinct digits in 0..9. Got {classes!r} instead."
        )
    k = len(kept)
    x, y = _make_mnist1d(10 * math.ceil((n_train + n_test) / k), data_seed)
    mask = np.isin(y, kept)
    relabel = np.full(10, -1, dtype=np.int64)
    relabel[kept] = np.arange(k)
    x, y = x[mask][: n_train + n_test], relabel[y[mask][: n_train + n_test]]
    clean = y[:n_train]
    noisy = add_label_noise(clean, label_noise, k, seed=noise_seed) if label_noise > 0 else clean
    args = {
        "n_train": n_train,
        "n_test": n_test,
        "classes": None if classes is None else kept,
        "label_noise": label_noise,
        "noise_seed": noise_seed,
        "data_seed": data_seed,
    }
    return Dataset("mnist1d", x[:n_train], noisy, x[n_train:], y[n_train:], "classification", k, clean.copy(), args)
