"""Records scalars and registered quantities at scheduled steps of a run, in tidy long form."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import torch

from empirics.quantities import QUANTITIES, StepQuantity, check_quantities, make_quantity
from empirics.snapshot import Snapshot, TrainingContext


def log_spaced_steps(total: int, count: int, *, include_zero: bool = True) -> list[int]:
    """About ``count`` distinct integer steps spaced logarithmically in [1, total], plus 0 and total."""
    steps = np.unique(np.round(np.logspace(0, np.log10(max(total, 1)), count)).astype(int))
    out = sorted(set(steps.tolist()) | {total} | ({0} if include_zero else set()))
    return out


class Recorder:
    """Collects ``(step, quantity, value)`` rows for one run.

    Args:
        quantities: names from :data:`empirics.quantities.QUANTITIES` computed at each snapshot.
        schedule: the steps at which :meth:`due` is true.
        device: the torch device the run trains on (phenomena that declare it move their model and data there);
            quantities not registered with ``any_device=True`` see CPU copies of the snapshots.
    """

    def __init__(
        self, quantities: Sequence[str] = (), schedule: Iterable[int] = (), *, device: torch.device | str = "cpu"
    ) -> None:
        check_quantities(tuple(quantities))
        self.quantities = tuple(quantities)
        self.device = torch.device(device)
        self._compute = {q: make_quantity(q) for q in self.quantities}
        self._stepped = [c for c in self._compute.values() if isinstance(c, StepQuantity)]
        self.schedule = frozenset(int(s) for s in schedule)
        self.rows: list[tuple[int, str, float]] = []
        self.arrays: dict[str, np.ndarray] = {}

    def due(self, step: int) -> bool:
        return step in self.schedule

    @property
    def follows_steps(self) -> bool:
        """Whether a requested quantity follows every optimizer step (the training loop must call the hooks)."""
        return bool(self._stepped)

    def attach(self, context: TrainingContext) -> None:
        """Before the first optimizer step: hand the run to every step-following quantity."""
        for quantity in self._stepped:
            quantity.attach(context)

    def before_step(self, batch: torch.Tensor | None) -> None:
        """Between ``loss.backward()`` and ``optimizer.step()``; ``batch``: the minibatch indices (None: all)."""
        for quantity in self._stepped:
            quantity.before_step(batch)

    def after_step(self) -> None:
        """After ``optimizer.step()``."""
        for quantity in self._stepped:
            quantity.after_step()

    def record(self, step: int, snapshot: Snapshot | None = None, **scalars: float) -> None:
        """Store ``scalars`` as given and, with a snapshot, every requested quantity computed from it."""
        for name, value in scalars.items():
            self.rows.append((int(step), name, float(value)))
        if snapshot is not None:
            on_cpu = None
            for key, compute in self._compute.items():
                seen = snapshot
                if self.device.type != "cpu" and not getattr(QUANTITIES[key], "any_device", False):
                    on_cpu = on_cpu or snapshot.to("cpu")
                    seen = on_cpu
                for name, value in compute(seen).items():
                    self.rows.append((int(step), name, float(value)))

    def save_array(self, name: str, array: np.ndarray) -> None:
        """Keep a large array; the store writes it to a content-hashed file next to the database."""
        self.arrays[name] = np.asarray(array)

    def finalize(self, seed: int) -> None:
        """Post-hoc controls after ``Phenomenon.run``: :func:`empirics.controls.finalize_controls` adds the seeded
        random-measure rows (Jeffares & van der Schaar 2025)."""
        from empirics.controls import finalize_controls  # here, not above: sympy loads only when a run ends

        self.rows = finalize_controls(self.rows, seed)
