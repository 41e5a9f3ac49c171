"""Recorder quantities the built-in studies add through their specs' ``plugins = ["bridge.studies.quantities"]``.

- ``init_distance``: ‖θ − θ₀‖₂², the squared distance of the parameters from their initialisation (Jiang et al.
  2020, measure #40 "dist. from init."; Nagarajan & Kolter 2019), over the parameters the model computes with
  (pruned entries of lottery tickets count as zero). One pass over the parameters: cheap on any architecture,
  so one hypothesis can be tested on every phenomenon, including models whose eNTK has no structured form.
"""

from __future__ import annotations

import torch

from empirics.phenomena.base import Snapshot
from empirics.quantities import quantity


def _named_effective(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Parameter name -> the tensor the model computes with: ``weight_orig * weight_mask`` under the name
    ``weight`` for tensors pruned with :mod:`torch.nn.utils.prune`, else the parameter as stored."""
    buffers = dict(model.named_buffers())
    out = {}
    for name, param in model.named_parameters():
        base = name[: -len("_orig")] if name.endswith("_orig") else name
        mask = buffers.get(f"{base}_mask") if base != name else None
        out[base] = (param.detach() * mask if mask is not None else param.detach()).double()
    return out


@quantity("init_distance")
def init_distance(snapshot: Snapshot) -> dict[str, float]:
    """``{"init_distance": Σ ‖θ − θ₀‖²}`` between ``snapshot.model`` and ``snapshot.init_model``, matched by name."""
    now, then = _named_effective(snapshot.model), _named_effective(snapshot.init_model)
    if now.keys() != then.keys() or any(now[k].shape != then[k].shape for k in now):
        raise ValueError("init_distance: the model and its initial copy have different parameters.")
    return {"init_distance": float(sum(((now[k] - then[k]) ** 2).sum() for k in now))}
