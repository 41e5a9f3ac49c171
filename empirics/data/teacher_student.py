"""The quadratic teacher of Kumar et al. 2024 ("Grokking as the transition from lazy to rich dynamics")."""

from __future__ import annotations

import numpy as np

from empirics.data import register_dataset
from empirics.data.base import Dataset
from theory._validation import check_positive_int


@register_dataset("quadratic_teacher")
def quadratic_teacher(dim: int = 100, n_train: int = 550, n_test: int = 1000, data_seed: int = 0) -> Dataset:
    """Regression on y = ½ (βᵀx)², x ~ N(0, I/D), β ~ N(0, I_D) (Kumar et al. 2024, §3).

    With these scales βᵀx ≈ N(0, 1), so the target has mean ≈ ½ and variance ≈ ½. A linear (lazy) model cannot
    fit it; a network must rotate its features towards β (rich learning).

    Example:
        >>> ds = quadratic_teacher(dim=5, n_train=10, n_test=4)
        >>> ds.x_train.shape, ds.y_test.shape, ds.task
        ((10, 5), (4,), 'regression')
    """
    for name, value in (("dim", dim), ("n_train", n_train), ("n_test", n_test)):
        check_positive_int(name, value, owner="quadratic_teacher")
    rng = np.random.default_rng(data_seed)
    beta = rng.standard_normal(dim)
    x = rng.standard_normal((n_train + n_test, dim)) / np.sqrt(dim)
    y = 0.5 * (x @ beta) ** 2
    args = {"dim": dim, "n_train": n_train, "n_test": n_test, "data_seed": data_seed}
    return Dataset("quadratic_teacher", x[:n_train], y[:n_train], x[n_train:], y[n_train:], "regression", 0, None, args)
