"""Registry of built-in phenomena, keyed by name."""

from __future__ import annotations

from empirics._registry import register_once
from empirics.phenomena.base import Phenomenon, Snapshot

PHENOMENA: dict[str, type[Phenomenon]] = {}


def register(cls: type[Phenomenon]) -> type[Phenomenon]:
    """Class decorator adding a phenomenon to :data:`PHENOMENA` under ``cls.name`` (``ValueError`` if another
    definition holds the name: a plugin cannot replace a built-in phenomenon)."""
    register_once(PHENOMENA, "phenomenon", cls.name, cls)
    return cls


def get_phenomenon(name: str) -> Phenomenon:
    """An instance of the registered phenomenon ``name``; ``ValueError`` lists the known ones."""
    _load_builtins()
    if name not in PHENOMENA:
        raise ValueError(f"Unknown phenomenon {name!r}; known: {sorted(PHENOMENA)}.")
    return PHENOMENA[name]()


def _load_builtins() -> None:
    """Import the modules that register the built-in phenomena (kept lazy: they import torch models)."""
    import importlib

    for module in _BUILTIN_MODULES:
        importlib.import_module(module)


_BUILTIN_MODULES: tuple[str, ...] = (
    "empirics.phenomena.double_descent",
    "empirics.phenomena.double_descent_rff",
    "empirics.phenomena.grokking",
    "empirics.phenomena.grokking_variants",
    "empirics.phenomena.lottery",
    "empirics.phenomena.lottery_lmc",
)

__all__ = ["PHENOMENA", "Phenomenon", "Snapshot", "get_phenomenon", "register"]
