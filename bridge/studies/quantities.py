"""Recorder quantities the built-in studies add through their specs' ``plugins = ["bridge.studies.quantities"]``.

- ``init_distance``: ‖θ − θ₀‖₂², the squared distance of the parameters from their initialisation (Jiang et al.
  2020, measure #40 "dist. from init."; Nagarajan & Kolter 2019), over the parameters the model computes with
  (pruned entries of lottery tickets count as zero). One pass over the parameters: cheap on any architecture,
  so one hypothesis can be tested on every phenomenon, including models whose eNTK has no structured form.
"""

from __future__ import annotations

from empirics.controls import effective_parameters
from empirics.phenomena.base import Snapshot
from empirics.quantities import quantity


@quantity("init_distance")
def init_distance(snapshot: Snapshot) -> dict[str, float]:
    """``{"init_distance": Σ ‖θ − θ₀‖²}`` between ``snapshot.model`` and ``snapshot.init_model``."""
    now = list(effective_parameters(snapshot.model))
    then = list(effective_parameters(snapshot.init_model))
    if len(now) != len(then) or any(a.shape != b.shape for a, b in zip(now, then, strict=True)):
        raise ValueError("init_distance: the model and its initial copy have different parameter shapes.")
    return {"init_distance": float(sum(((a.double() - b.double()) ** 2).sum() for a, b in zip(now, then, strict=True)))}
