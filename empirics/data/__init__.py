"""Registry of procedurally generated data sets (no downloads), cached as .npz by the hash of their arguments.

Register a generator ``fn(**kwargs) -> Dataset`` with ``@register_dataset("name")`` and add its module to
``_BUILTIN_MODULES``; :func:`load_dataset` resolves defaults, hashes the arguments and reuses a cached copy.
"""

from __future__ import annotations

import importlib
import inspect
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from empirics.data.base import Dataset, add_label_noise, args_hash, load_npz, save_npz

DATASETS: dict[str, Callable[..., Dataset]] = {}


def register_dataset(name: str) -> Callable:
    """Decorator adding a generator ``fn(**kwargs) -> Dataset`` to :data:`DATASETS` under ``name``."""

    def decorate(fn: Callable[..., Dataset]) -> Callable[..., Dataset]:
        DATASETS[name] = fn
        return fn

    return decorate


def _load_builtins() -> None:
    for module in _BUILTIN_MODULES:
        importlib.import_module(module)


def resolve_dataset_args(name: str, **kwargs: Any) -> dict[str, Any]:
    """The generator's keyword arguments with defaults filled in; unknown names raise ``ValueError``."""
    _load_builtins()
    if name not in DATASETS:
        raise ValueError(
            f"The 'name' parameter of load_dataset must be one of {sorted(DATASETS)}. Got {name!r} instead."
        )
    signature = inspect.signature(DATASETS[name])
    unknown = sorted(set(kwargs) - set(signature.parameters))
    if unknown:
        raise ValueError(
            f"Unknown argument(s) {unknown} for data set {name!r}; expected some of {list(signature.parameters)}."
        )
    bound = signature.bind(**kwargs)
    bound.apply_defaults()
    return dict(bound.arguments)


def load_dataset(name: str, cache_dir: str | Path | None = None, **kwargs: Any) -> Dataset:
    """Generate the data set ``name`` with ``kwargs``, or load it from ``cache_dir/{name}-{hash}.npz``.

    The hash is :func:`~empirics.data.base.args_hash` of the resolved arguments (defaults included), so any
    change of argument gives a new file. ``cache_dir=None`` uses the folder named by the environment variable
    ``UNITHEORY_DATA_CACHE`` (a runner sets it next to its store) and generates without caching when unset.

    Example:
        >>> ds = load_dataset("mnist1d", n_train=100, n_test=50)
        >>> ds.x_train.shape, ds.num_classes
        ((100, 40), 10)
    """
    args = resolve_dataset_args(name, **kwargs)
    cache_dir = cache_dir if cache_dir is not None else os.environ.get("UNITHEORY_DATA_CACHE")
    if cache_dir is None:
        return DATASETS[name](**args)
    path = Path(cache_dir) / f"{name}-{args_hash(name, args)}.npz"
    if path.exists():
        return load_npz(path)
    dataset = DATASETS[name](**args)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_npz(dataset, path)
    return dataset


_BUILTIN_MODULES: tuple[str, ...] = (
    "empirics.data.mnist1d",
    "empirics.data.digits",
    "empirics.data.modular",
    "empirics.data.teacher_student",
)

__all__ = [
    "DATASETS",
    "Dataset",
    "add_label_noise",
    "args_hash",
    "load_dataset",
    "register_dataset",
    "resolve_dataset_args",
]
