"""The contract between a phenomenon and the runner.

A *phenomenon* trains one configuration (a flat mapping of parameters, seed included) and reports along
training through a :class:`~empirics.recorder.Recorder`. :class:`Snapshot` (defined in
:mod:`empirics.snapshot`) is re-exported here. The runner expands a spec's sweep axes into
configurations, calls :meth:`Phenomenon.run` for each, and writes the recorder's rows to the store.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar

from empirics.recorder import Recorder
from empirics.snapshot import Snapshot


class Phenomenon(ABC):
    """A canonical experiment.

    Subclasses set ``name``, ``parameters`` (every accepted parameter with its default) and
    ``outcomes`` (the final scalars :meth:`run` returns), and implement :meth:`run`.
    """

    name: ClassVar[str]
    parameters: ClassVar[Mapping[str, Any]]
    outcomes: ClassVar[tuple[str, ...]] = ()

    def resolve(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Defaults overlaid with ``params``; unknown keys raise ``ValueError`` naming them."""
        unknown = sorted(set(params) - set(self.parameters))
        if unknown:
            raise ValueError(
                f"Unknown parameter(s) {unknown} for phenomenon {self.name!r}; "
                f"expected some of {sorted(self.parameters)}."
            )
        return {**self.parameters, **params}

    @abstractmethod
    def run(self, params: Mapping[str, Any], recorder: Recorder) -> dict[str, float]:
        """Train one configuration, calling ``recorder.record`` at ``recorder.due`` steps.

        Must be deterministic given ``params["seed"]`` on CPU. Returns the final outcomes.
        """


__all__ = ["Phenomenon", "Snapshot"]
