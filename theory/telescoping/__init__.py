"""The telescoping model of training and its effective parameters (Jeffares, Curth & van der Schaar 2024)."""

from theory.telescoping._core import telescope
from theory.telescoping._result import TelescopeResult
from theory.telescoping._spec import OptimizerName, OptimizerSpec, OutputLink, TelescopeMethod
from theory.telescoping._tracker import TelescopeTracker

__all__ = [
    "OutputLink",
    "OptimizerName",
    "OptimizerSpec",
    "TelescopeMethod",
    "TelescopeResult",
    "TelescopeTracker",
    "telescope",
]
