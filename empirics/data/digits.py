"""scikit-learn's bundled 8×8 digits (no download), the cheap random-features double-descent data of REFERENCE §8."""

from __future__ import annotations

import numpy as np
from sklearn.datasets import load_digits

from empirics.data import register_dataset
from empirics.data.base import Dataset, add_label_noise
from theory._validation import check_in_range, check_positive_int

DIGITS_SIZE = 1797
"""Examples in ``sklearn.datasets.load_digits``: the most ``n_train + n_test`` can be."""


@register_dataset("digits")
def digits(n_train: int = 500, n_test: int = 1000, label_noise: float = 0.0, split_seed: int = 0) -> Dataset:
    """The 1,797 8×8 digits of ``sklearn.datasets.load_digits``, pixels /16 then centred by the train mean.

    A random permutation seeded by ``split_seed`` gives its first ``n_train`` examples to train and its last
    ``n_test`` to test (``n_train + n_test <= 1797``; the test set does not change with ``n_train``, as a
    sample-wise sweep needs); ``label_noise`` flips train labels as
    :func:`~empirics.data.base.add_label_noise` (seeded by ``split_seed``).
    """
    check_positive_int("n_train", n_train, owner="digits")
    check_positive_int("n_test", n_test, owner="digits")
    check_in_range("label_noise", label_noise, 0.0, 1.0, owner="digits")
    x, y = load_digits(return_X_y=True)
    if n_train + n_test > x.shape[0]:
        raise ValueError(f"digits has {x.shape[0]} examples; n_train + n_test = {n_train + n_test} is too many.")
    order = np.random.default_rng(split_seed).permutation(x.shape[0])
    x, y = x[order] / 16.0, y[order].astype(np.int64)
    x_train, x_test = x[:n_train], x[x.shape[0] - n_test :]
    mean = x_train.mean(axis=0)
    clean = y[:n_train]
    noisy = add_label_noise(clean, label_noise, 10, seed=split_seed) if label_noise > 0 else clean
    args = {"n_train": n_train, "n_test": n_test, "label_noise": label_noise, "split_seed": split_seed}
    return Dataset(
        "digits", x_train - mean, noisy, x_test - mean, y[x.shape[0] - n_test :], "classification", 10, clean, args
    )
