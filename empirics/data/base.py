"""Data sets as plain arrays, seeded label noise, and an on-disk cache keyed by the generating arguments."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from theory._validation import check_in_range, check_option

Task = Literal["classification", "regression"]


@dataclass(frozen=True)
class Dataset:
    """A train/test split as numpy arrays.

    ``y_*`` hold class indices in ``[0, num_classes)`` for ``task="classification"`` and real targets (1-D or
    2-D) for ``task="regression"`` (then ``num_classes`` is 0). ``y_train_clean`` keeps the labels before any
    injected label noise (equal to ``y_train`` without noise). ``args`` are the arguments that generated it.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    task: Task = "classification"
    num_classes: int = 0
    y_train_clean: np.ndarray | None = None
    args: Mapping[str, Any] = field(default_factory=dict)

    @property
    def n_train(self) -> int:
        return int(self.x_train.shape[0])

    @property
    def n_test(self) -> int:
        return int(self.x_test.shape[0])

    @property
    def input_dim(self) -> int:
        return int(np.prod(self.x_train.shape[1:]))

    def tensors(
        self, dtype: torch.dtype = torch.float32
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(x_train, y_train, x_test, y_test)`` as torch tensors (labels int64 for classification)."""
        ydtype = torch.int64 if self.task == "classification" else dtype
        return (
            torch.as_tensor(self.x_train, dtype=dtype),
            torch.as_tensor(self.y_train, dtype=ydtype),
            torch.as_tensor(self.x_test, dtype=dtype),
            torch.as_tensor(self.y_test, dtype=ydtype),
        )

    def one_hot(self, split: Literal["train", "test"] = "train") -> np.ndarray:
        """One-hot targets (n, num_classes) in float64 of a classification split."""
        y = self.y_train if split == "train" else self.y_test
        return np.eye(self.num_classes)[y]


def add_label_noise(y: np.ndarray, fraction: float, num_classes: int, *, seed: int) -> np.ndarray:
    """Flip ``round(fraction · n)`` labels, chosen uniformly without replacement, to a uniformly random *other* class.

    The convention of Nakkiran et al. (2019): a noisy label is always wrong, so exactly a ``fraction`` of the
    labels is corrupted (uniform noise over all classes would corrupt only ``fraction · (1 − 1/K)``).

    Example:
        >>> add_label_noise(np.zeros(10, dtype=int), 0.3, 3, seed=0).astype(bool).sum()
        3
    """
    check_in_range("fraction", fraction, 0.0, 1.0, owner="add_label_noise")
    if num_classes < 2:
        raise ValueError(f"The 'num_classes' parameter of add_label_noise must be >= 2. Got {num_classes!r} instead.")
    y = np.asarray(y).copy()
    rng = np.random.default_rng(seed)
    flip = rng.choice(y.shape[0], size=int(round(fraction * y.shape[0])), replace=False)
    shift = rng.integers(1, num_classes, size=flip.shape[0])
    y[flip] = (y[flip] + shift) % num_classes
    return y


def args_hash(name: str, args: Mapping[str, Any]) -> str:
    """First 16 hex digits of sha256 of canonical JSON ``{name, args}`` (the cache key)."""
    text = json.dumps({"name": name, "args": dict(args)}, sort_keys=True, default=list)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


_ARRAYS = ("x_train", "y_train", "x_test", "y_test", "y_train_clean")


def save_npz(dataset: Dataset, path: Path) -> None:
    """Write ``dataset`` to ``path`` (.npz, no pickled objects; metadata as a JSON string array)."""
    meta = {"name": dataset.name, "task": dataset.task, "num_classes": dataset.num_classes, "args": dataset.args}
    arrays = {k: getattr(dataset, k) for k in _ARRAYS if getattr(dataset, k) is not None}
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, meta=np.array(json.dumps(meta, sort_keys=True, default=list)), **arrays)
    tmp.replace(path)


def load_npz(path: Path) -> Dataset:
    """Read a data set written by :func:`save_npz` (``allow_pickle=False``: loading never runs code)."""
    with np.load(path, allow_pickle=False) as f:
        meta = json.loads(str(f["meta"]))
        arrays = {k: f[k] for k in _ARRAYS if k in f}
    task = check_option("task", meta["task"], ("classification", "regression"), owner=str(path))
    return Dataset(meta["name"], task=task, num_classes=meta["num_classes"], args=meta["args"], **arrays)
