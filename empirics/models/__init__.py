"""Model zoo: ``build_model(name, **kwargs)`` builds a seeded torch module from a registered builder.

Register a builder ``fn(**kwargs) -> torch.nn.Module`` with ``@register_model("name")`` and add its module to
``_BUILTIN_MODULES``. Every builder takes ``seed`` and draws its initialisation from that seed only (the
global torch RNG is forked, so building a model never changes other random streams).
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from typing import Any

import torch

MODELS: dict[str, Callable[..., torch.nn.Module]] = {}


def register_model(name: str) -> Callable:
    """Decorator adding a builder ``fn(**kwargs) -> torch.nn.Module`` to :data:`MODELS` under ``name``."""

    def decorate(fn: Callable[..., torch.nn.Module]) -> Callable[..., torch.nn.Module]:
        MODELS[name] = fn
        return fn

    return decorate


def build_model(name: str, *, seed: int = 0, **kwargs: Any) -> torch.nn.Module:
    """The registered model ``name`` built with ``kwargs``, its parameters drawn under ``torch.manual_seed(seed)``.

    Example:
        >>> build_model("mlp", input_dim=40, output_dim=10, width=32).net[0].weight.shape
        torch.Size([32, 40])
    """
    for module in _BUILTIN_MODULES:
        importlib.import_module(module)
    if name not in MODELS:
        raise ValueError(f"The 'name' parameter of build_model must be one of {sorted(MODELS)}. Got {name!r} instead.")
    accepted = inspect.signature(MODELS[name]).parameters
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise ValueError(f"Unknown argument(s) {unknown} for model {name!r}; expected some of {list(accepted)}.")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return MODELS[name](**kwargs)


_BUILTIN_MODULES: tuple[str, ...] = (
    "empirics.models.mlp",
    "empirics.models.conv",
    "empirics.models.random_features",
    "empirics.models.quadratic",
    "empirics.models.embedding_mlp",
    "empirics.models.transformer",
)

from empirics.models.mlp import MLP  # noqa: E402
from empirics.models.random_features import RandomFeatures  # noqa: E402

__all__ = ["MLP", "MODELS", "RandomFeatures", "build_model", "register_model"]
