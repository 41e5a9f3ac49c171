"""Records scalars and registered quantities at scheduled steps of a run, in tidy long form."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from empirics.quantities import check_quantities, make_quantity
from empirics.snapshot import Snapshot


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
    """

    def __init__(self, quantities: Sequence[str] = (), schedule: Iterable[int] = ()) -> None:
        check_quantities(tuple(quantities))
        self.quantities = tuple(quantities)
        self._compute = {q: make_quantity(q) for q in self.quantities}
        self.schedule = frozenset(int(s) for s in schedule)
        self.rows: list[tuple[int, str, float]] = []
        self.arrays: dict[str, np.ndarray] = {}

    def due(self, step: int) -> bool:
        return step in self.schedule

    def record(self, step: int, snapshot: Snapshot | None = None, **scalars: float) -> None:
        """Store ``scalars`` as given and, with a snapshot, every requested quantity computed from it."""
        for name, value in scalars.items():
            self.rows.append((int(step), name, float(value)))
        if snapshot is not None:
            for compute in self._compute.values():
                for name, value in compute(snapshot).items():
                    self.rows.append((int(step), name, float(value)))

    def save_array(self, name: str, array: np.ndarray) -> None:
        """Keep a large array; the store writes it to a content-hashed file next to the database."""
        self.arrays[name] = np.asarray(array)

    def finalize(self, seed: int) -> None:
        """Post-hoc controls after ``Phenomenon.run``: :func:`empirics.controls.finalize_controls` adds the seeded
        random-measure rows (Jeffares & van der Schaar 2025)."""
        from empirics.controls import finalize_controls  # here, not above: sympy loads only when a run ends

        self.rows = finalize_controls(self.rows, seed)
