"""Registry of recordable quantities.

A quantity maps a :class:`Snapshot` to named scalars. Register a plain function (stateless) or a class
whose instances are callables (stateful per run, e.g. a kernel velocity that remembers the previous
kernel): the recorder builds one fresh instance per run with :func:`make_quantity`.

A :class:`StepQuantity` also follows every optimizer step, not only the recorded snapshots (the telescoping
model accumulates one first-order step per update). Only phenomena whose training loop calls the recorder's
step hooks (``Phenomenon.follows_steps``) accept one; spec validation refuses it elsewhere.

Snapshots are on the run's device; a quantity registered with ``any_device=False`` (the default) receives a CPU
copy when the run is elsewhere, so quantities written for CPU tensors stay correct on any device.
"""

from __future__ import annotations

import importlib
import importlib.util
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping

import torch

from empirics._registry import register_once
from empirics.snapshot import Snapshot, TrainingContext

QuantityFn = Callable[[Snapshot], Mapping[str, float]]

QUANTITIES: dict[str, QuantityFn | type] = {}

CONTROL_QUANTITIES: tuple[str, ...] = ("prime_count", "param_count")
"""Quantities every run records (registered by :mod:`empirics.controls`; the spec adds them to ``[record]``)."""


class StepQuantity(ABC):
    """A stateful quantity that follows every optimizer step of a run.

    The training loop calls :meth:`attach` once before the first step, :meth:`before_step` between
    ``loss.backward()`` and ``optimizer.step()`` and :meth:`after_step` after it (through the recorder); at
    recorded steps the instance is called with the snapshot like any quantity.
    """

    @abstractmethod
    def attach(self, context: TrainingContext) -> None:
        """Start following the run described by ``context``."""

    @abstractmethod
    def before_step(self, batch: torch.Tensor | None) -> None:
        """At θ_{t−1}, with the step's gradients: ``batch`` are the minibatch's training indices (None: all)."""

    @abstractmethod
    def after_step(self) -> None:
        """After the optimizer step."""

    @abstractmethod
    def __call__(self, snapshot: Snapshot) -> Mapping[str, float]:
        """The values now."""


def quantity(name: str, *, any_device: bool = False) -> Callable:
    """Decorator registering a function or a callable class as the recordable quantity ``name`` (``ValueError`` if
    another definition holds the name: a plugin cannot replace a built-in quantity or a control).

    ``any_device=True`` declares that it computes on the snapshot's device and returns Python floats; otherwise
    a run on another device hands it a CPU copy of the snapshot.
    """

    def decorate(obj):
        register_once(QUANTITIES, "quantity", name, obj)
        obj.any_device = any_device
        return obj

    return decorate


def follows_steps(name: str) -> bool:
    """Whether the registered quantity ``name`` is a :class:`StepQuantity`."""
    obj = QUANTITIES[name]
    return isinstance(obj, type) and issubclass(obj, StepQuantity)


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
