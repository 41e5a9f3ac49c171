"""Recorder quantities backed by :mod:`theory`: eNTK spectrum summaries ("ntk") and cheap measures ("measures").

- ``"ntk"`` (:class:`NTKQuantities`): the output-traced empirical NTK Θ_tr(x, x') = (1/O) Σ_o ∂f_o(x)·∂f_o(x')
  (Jacot et al. 2018; ``theory.ntk.empirical_ntk``, float64) on a fixed subsample, the first
  :data:`NTK_SUBSAMPLE` training inputs of each snapshot, summarised as ``ntk_trace`` tr Θ, ``ntk_lambda_max``,
  ``ntk_eff_dim`` N_eff(z) = Σ λ_i/(λ_i + z) at z = tr Θ / N, the mean eigenvalue (Maddox et al. 2020; the
  choice of z makes it invariant to the kernel's scale), ``ntk_alignment`` the centred kernel-target alignment
  with the one-hot labels (Cortes et al. 2012) or real targets, ``ntk_velocity`` the kernel distance
  1 − <K1, K2>_F/(‖K1‖_F‖K2‖_F) (Fort et al. 2020) to the kernel of the previous recorded step (to the initial
  kernel at the first record) and ``ntk_distance_init`` the kernel distance to the initial model's kernel.
- ``"measures"`` (:func:`measures`): the cheap measures of ``theory.measures`` (``CHEAP_MEASURES``, Jiang et al.
  2020 numbering) on the snapshot's training inputs, under their registry names; measures needing class labels
  are skipped for regression snapshots.
- ``"telescope"`` (:class:`TelescopeQuantity`, a step-following quantity): the telescoping model of the run
  (Jeffares, Curth & van der Schaar 2024; ``theory.telescoping.TelescopeTracker``) carried over every optimizer
  step with the run's own optimizer, recorded as ``p_train`` and ``p_test``, the effective parameters
  p(I) = (n/|I|) Σ_{j∈I} ‖ŝ(x_j)‖² of its smoother (Curth et al. 2023) on all n training inputs and on the
  snapshot's test inputs, and ``telescope_gap_train`` / ``telescope_gap_test``, the RMS over those inputs of
  f̃(x) − f(x), the telescoping approximation's error. Squared-loss runs of one output (or a declared one).
"""

from __future__ import annotations

import numpy as np
import torch

from empirics.quantities import StepQuantity, quantity
from empirics.snapshot import Snapshot, TrainingContext
from theory.measures import CHEAP_MEASURES, MEASURES, compute_measures
from theory.ntk import empirical_ntk
from theory.spectral import effective_dimension, kernel_distance, kernel_eigh, kernel_target_alignment
from theory.telescoping import TelescopeTracker

#: training inputs (the first ones of each snapshot) on which the "ntk" quantity computes kernels
NTK_SUBSAMPLE = 128


def _traced_ntk(model: torch.nn.Module, x: torch.Tensor) -> np.ndarray:
    """Θ_tr over every parameter, float64.

    A frozen model (the snapshot's initial copy) has its parameters' ``requires_grad`` switched on for the call
    and restored after it, rather than being copied: a pruned model (``torch.nn.utils.prune``) cannot be
    deep-copied while its masked weight is a non-leaf tensor.
    """
    frozen = [p for p in model.parameters() if not p.requires_grad]
    for p in frozen:
        p.requires_grad_(True)
    try:
        return empirical_ntk(model, x, trace_outputs=True, dtype=torch.float64).cpu().numpy()
    finally:
        for p in frozen:
            p.requires_grad_(False)


def _targets(snapshot: Snapshot, n: int) -> np.ndarray:
    y = snapshot.y_train[:n]
    if snapshot.task == "classification":
        with torch.no_grad():
            classes = snapshot.model(snapshot.x_train[:1]).shape[-1]
        return torch.nn.functional.one_hot(y.long(), classes).double().cpu().numpy()
    return y.double().reshape(n, -1).cpu().numpy()


@quantity("ntk", any_device=True)
class NTKQuantities:
    """Stateful per run: remembers the initial and the previous recorded kernel (see the module docstring)."""

    def __init__(self) -> None:
        self._initial: np.ndarray | None = None
        self._previous: np.ndarray | None = None

    def __call__(self, snapshot: Snapshot) -> dict[str, float]:
        x = snapshot.x_train[:NTK_SUBSAMPLE]
        kernel = _traced_ntk(snapshot.model, x)
        if self._initial is None:
            self._initial = _traced_ntk(snapshot.init_model, x)
        previous = self._initial if self._previous is None else self._previous
        self._previous = kernel
        eigenvalues = kernel_eigh(kernel).eigenvalues
        trace = float(np.trace(kernel))
        return {
            "ntk_trace": trace,
            "ntk_lambda_max": float(eigenvalues[0]),
            "ntk_eff_dim": float(effective_dimension(eigenvalues, trace / len(x))),
            "ntk_alignment": kernel_target_alignment(kernel, _targets(snapshot, len(x))),
            "ntk_velocity": kernel_distance(kernel, previous),
            "ntk_distance_init": kernel_distance(kernel, self._initial),
        }


@quantity("measures")
def measures(snapshot: Snapshot) -> dict[str, float]:
    """The cheap ``theory.measures`` on the snapshot's training inputs (labels only for classification).

    A measure undefined at a snapshot (``ValueError`` from ``compute_measures``) is recorded as NaN; the others are
    unaffected.
    """
    labelled = snapshot.task == "classification"
    names = [n for n in CHEAP_MEASURES if labelled or not MEASURES[n].needs_labels]
    args = (snapshot.model, snapshot.init_model, snapshot.x_train, snapshot.y_train)
    try:
        return compute_measures(*args, names, random_state=0)
    except ValueError:
        return {name: _one_measure(args, name) for name in names}


def _one_measure(args: tuple, name: str) -> float:
    try:
        return compute_measures(*args, [name], random_state=0)[name]
    except ValueError:
        return float("nan")


@quantity("telescope", any_device=True)
class TelescopeQuantity(StepQuantity):
    """p_train, p_test and the telescoping gap of the run along training (see the module docstring).

    The smoother is float64 on the run's device (refused on MPS, which has no float64); a run whose state would
    exceed ``TelescopeTracker``'s memory bound, that is not trained on the squared loss, or that has several
    outputs and no declared one is refused with the reason when it is attached.
    """

    def __init__(self) -> None:
        self._tracker: TelescopeTracker | None = None
        self._output = 0

    def attach(self, context: TrainingContext) -> None:
        if self._tracker is not None:
            raise RuntimeError("The 'telescope' quantity follows one training run; it was attached twice.")
        if context.loss != "mse":
            raise ValueError(
                f"The 'telescope' quantity needs a squared-loss run (loss 'mse'). Got loss {context.loss!r} instead."
            )
        outputs = context.targets.shape[1]
        if context.output is None and outputs != 1:
            raise ValueError(
                f"The 'telescope' quantity records one output: the model has {outputs}, so the phenomenon must "
                "declare which one (TrainData.output), and this one does not; record it on a run with one output "
                "(grokking_teacher, or grokking_mnist1d with classes = 2)."
            )
        output = 0 if context.output is None else context.output
        if not 0 <= output < outputs:
            raise ValueError(f"The declared output must be in [0, {outputs}). Got {output} instead.")
        self._output = output
        self._tracker = TelescopeTracker(
            context.model,
            context.optimizer,
            context.x_train,
            context.targets,
            context.x_test,
            loss_scale=context.loss_scale,
        )

    def before_step(self, batch: torch.Tensor | None) -> None:
        self._tracker.before_step(batch)

    def after_step(self) -> None:
        self._tracker.after_step()

    def __call__(self, snapshot: Snapshot) -> dict[str, float]:
        if self._tracker is None:
            raise RuntimeError(
                "The 'telescope' quantity follows every optimizer step, but the run's training loop never attached "
                "it (the phenomenon must call recorder.attach, before_step and after_step)."
            )
        rec, o, n = self._tracker.record(), self._output, self._tracker.n
        gap = rec["telescoping"][:, o] - rec["real"][:, o]
        return {
            "p_train": float(rec["p_train"][o]),
            "p_test": float(rec["p_test"][o]),
            "telescope_gap_train": _rms(gap[:n]),
            "telescope_gap_test": _rms(gap[n:]),
        }


def _rms(values: np.ndarray) -> float:
    return float(np.sqrt(np.mean(values**2))) if values.size else float("nan")
