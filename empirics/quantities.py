"""Registry of recordable quantities.

A quantity maps a :class:`Snapshot` to named scalars. Register a plain function (stateless) or a class
whose instances are callables (stateful per run, e.g. a kernel velocity that remembers the previous
kernel): the recorder builds one fresh instance per run with :func:`make_quantity`.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable, Mapping

from empirics.snapshot import Snapshot

QuantityFn = Callable[[Snapshot], Mapping[str, float]]

QUANTITIES: dict[str, QuantityFn | type] = {}

CONTROL_QUANTITIES: tuple[str, ...] = ("prime_count", "param_count")
"""Quantities every run records (registered by :mod:`empirics.controls`; the spec adds them to ``[record]``)."""


def quantity(name: str) -> Callable:
    """Decorator registering a function or a callable class as the recordable quantity ``name``."""

    def decorate(obj):
        QUANTITIES[name] = obj
        return obj

    return decorate


def make_quantity(name: str) -> QuantityFn:
    """A callable for one run: a fresh instance for a registered class, the function itself otherwise."""
    obj = QUANTITIES[name]
    return obj() if isinstance(obj, type) else obj


def check_quantities(names: list[str] | tuple[str, ...]) -> None:
    """Raise ``ValueError`` naming any quantity that is not registered (at spec-validation time)."""
    if any(n not in QUANTITIES for n in names):
        load_builtin_quantities()
    missing = [n for n in names if n not in QUANTITIES]
    if missing:
        raise ValueError(f"Unknown quantity(ies) {missing}; available: {sorted(QUANTITIES)}.")


#: modules that register quantities on import (loaded lazily, before a spec is validated)
_BUILTIN_MODULES: tuple[str, ...] = ("empirics.controls", "empirics.theory_quantities")


def load_builtin_quantities() -> None:
    """Import the modules of :data:`_BUILTIN_MODULES` that exist, so their quantities are registered."""
    for module in _BUILTIN_MODULES:
        if importlib.util.find_spec(module) is not None:
            importlib.import_module(module)
