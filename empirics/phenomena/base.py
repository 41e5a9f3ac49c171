"""The contract between a phenomenon and the runner.

A *phenomenon* trains one configuration (a flat mapping of parameters, seed included) and reports along
training through a :class:`~empirics.recorder.Recorder`. :class:`Snapshot` (defined in
:mod:`empirics.snapshot`) is re-exported here. The runner expands a spec's sweep axes into
configurations, calls :meth:`Phenomenon.run` for each, and writes the recorder's rows to the store.

Two promises a phenomenon may declare: ``devices`` (the torch device types it moves its model and data to,
``recorder.device``; CPU only by default) and ``follows_steps`` (its training loop calls the recorder's per-step
hooks, so quantities that follow every optimizer step, such as ``telescope``, can be recorded).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar

from empirics.phenomena.constraints import Constraint, Interval, first_problem
from empirics.recorder import Recorder
from empirics.snapshot import Snapshot

#: what the runner needs of every phenomenon, whatever it declares: ``steps`` sets the recording schedule
RUNNER_CONSTRAINTS: Mapping[str, Constraint] = {"steps": Interval(0, None)}


class Phenomenon(ABC):
    """A canonical experiment.

    Subclasses set ``name``, ``parameters`` (every accepted parameter with its default), ``constraints`` (what a
    parameter must be beyond the type of its default, as data: :mod:`empirics.phenomena.constraints`) and
    ``outcomes`` (the final scalars :meth:`run` returns), and implement :meth:`run`.
    """

    name: ClassVar[str]
    parameters: ClassVar[Mapping[str, Any]]
    constraints: ClassVar[Mapping[str, Constraint | tuple[Constraint, ...]]] = {}
    outcomes: ClassVar[tuple[str, ...]] = ()
    #: torch device types :meth:`run` moves its model and data to (``recorder.device``)
    devices: ClassVar[tuple[str, ...]] = ("cpu",)
    #: whether :meth:`run`'s training loop calls ``recorder.attach``, ``before_step`` and ``after_step``
    follows_steps: ClassVar[bool] = False

    def problem(self, params: Mapping[str, Any]) -> tuple[str, str, tuple[str, ...]] | None:
        """The first parameter of resolved ``params`` that breaks its type or constraint: ``(name, expected, refs)``
        (``refs``: the other parameters the broken constraint reads), or ``None``."""
        return first_problem(self.parameters, {**RUNNER_CONSTRAINTS, **self.constraints}, params)

    def resolve(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Defaults overlaid with ``params``, checked against the types of the defaults and the ``constraints``.

        Raises:
            ValueError: an unknown key (naming them all), or the first parameter that breaks its type or constraint
                (``"The 'n_train' parameter of double_descent_mlp must be a value in [1, inf). Got -100 instead."``).
        """
        unknown = sorted(set(params) - set(self.parameters))
        if unknown:
            raise ValueError(
                f"Unknown parameter(s) {unknown} for phenomenon {self.name!r}; "
                f"expected some of {sorted(self.parameters)}."
            )
        resolved = {**self.parameters, **params}
        found = self.problem(resolved)
        if found is not None:
            name, expected, _ = found
            raise ValueError(
                f"The {name!r} parameter of {self.name} must be {expected}. Got {resolved[name]!r} instead."
            )
        return resolved

    @abstractmethod
    def run(self, params: Mapping[str, Any], recorder: Recorder) -> dict[str, float]:
        """Train one configuration, calling ``recorder.record`` at ``recorder.due`` steps.

        Must be deterministic given ``params["seed"]`` on CPU. Returns the final outcomes. A phenomenon that lists
        more than ``"cpu"`` in :attr:`devices` trains on ``recorder.device``.
        """


__all__ = ["Phenomenon", "Snapshot"]
