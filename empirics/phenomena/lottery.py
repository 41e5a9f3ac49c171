"""Lottery tickets: iterative magnitude pruning with rewinding (Frankle & Carbin 2019; Frankle et al. 2020).

Mapping onto the Phenomenon/Recorder contract: one run is one (network, pruning kind, rewind step k, seed)
configuration; its ``steps`` parameter is the number of pruning *rounds* and the recorder's step is the round
(0 = the dense network). Each round r ≥ 1 prunes ``prune_rate`` of the remaining weights of every hidden layer
(``output_prune_rate`` for the read-out, as Frankle & Carbin 2019) by magnitude of the round-(r−1) trained
weights (or at random: the random-pruning control), rewinds the survivors to their values at step k, and trains
``train_steps − k`` steps. Frankle & Carbin's two controls are trained at every round, on the same schedule:
with ``reinit_control`` the ticket's mask from a fresh initialisation (random re-initialisation, trained
``train_steps`` steps), with ``random_control`` a random mask with the ticket's layer-wise counts of surviving
weights, rewound like the ticket (random pruning). Masks use :mod:`torch.nn.utils.prune`.

Recorded per round: ``sparsity`` (fraction of prunable weights remaining), ``train_loss``, ``test_loss``,
``train_error``, ``test_error`` of the ticket, ``reinit_test_error``/``reinit_test_loss``,
``random_test_error``/``random_test_loss``, the ticket's gains over its controls ``ticket_gain_over_reinit`` =
reinit − ticket test error and ``ticket_gain_over_random`` = random − ticket test error (positive: the ticket is
better), its excess over the dense network ``ticket_excess_over_dense`` = ticket − dense test error (≤ 0.01: a
matching ticket), the eNTK kernel distance (Fort et al. 2020) between the ticket and the dense network at
initialisation and at the rewind point (``ntk_distance_ticket_init``, ``ntk_distance_ticket_rewind``), and the
recorder's quantities. With ``prune_rate`` 0.2 (0.1 for the output layer) an MLP keeps about 0.8^r of its weights
after r rounds: 8 rounds leave 17% (Frankle & Carbin's ≤ 20%), 14 rounds 4.8% (≤ 5%).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.utils.prune as prune
from torch import nn

from empirics.data import load_dataset
from empirics.models import build_model
from empirics.phenomena import register
from empirics.phenomena._train import OPTIMIZERS, TrainData, make_optimizer, train
from empirics.phenomena.base import Phenomenon
from empirics.phenomena.constraints import FINITE, NON_NEGATIVE, POSITIVE, POSITIVE_INT, Each, Interval, OneOf
from empirics.recorder import Recorder
from theory import empirical_ntk
from theory.spectral import kernel_distance

PRUNING_KINDS = ("magnitude", "random")
CONTROLS = ("reinit", "random")  #: Frankle & Carbin's controls: random re-initialisation, random pruning
MATCH_TOLERANCE = 0.01


def prunable_layers(model: nn.Module) -> list[nn.Module]:
    """The Linear and Conv layers whose weights are pruned, in forward order (biases are never pruned)."""
    return [m for m in model.modules() if isinstance(m, nn.Linear | nn.Conv1d | nn.Conv2d)]


def next_masks(
    model: nn.Module, rate: float, output_rate: float, kind: str, generator: torch.Generator
) -> list[torch.Tensor]:
    """Layer-wise masks removing ``rate`` (``output_rate`` for the last layer) of each layer's surviving weights.

    ``kind="magnitude"`` removes the smallest |w| among survivors (Frankle & Carbin 2019); ``"random"`` removes
    survivors uniformly at random (the random-pruning control).
    """
    layers = prunable_layers(model)
    masks = []
    for i, layer in enumerate(layers):
        old = getattr(layer, "weight_mask", torch.ones_like(layer.weight))
        alive = old.flatten().nonzero().squeeze(1)
        remove = int(round((output_rate if i == len(layers) - 1 else rate) * alive.numel()))
        if kind == "magnitude":
            score = layer.weight.detach().abs().flatten()[alive]
        else:
            score = torch.rand(alive.numel(), generator=generator)
        new = old.flatten().clone()
        new[alive[torch.argsort(score, stable=True)[:remove]]] = 0.0
        masks.append(new.view_as(old))
    return masks


def apply_masks(model: nn.Module, state: Mapping[str, torch.Tensor], masks: list[torch.Tensor]) -> nn.Module:
    """A copy of ``model``'s architecture holding the dense ``state`` with ``masks`` applied through torch prune."""
    ticket = copy.deepcopy(model)
    for layer in prunable_layers(ticket):
        if prune.is_pruned(layer):
            prune.remove(layer, "weight")
    ticket.load_state_dict(state)
    for layer, mask in zip(prunable_layers(ticket), masks, strict=True):
        prune.custom_from_mask(layer, "weight", mask)
    return ticket


def dense_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The state dict with pruned weights folded in (``weight_orig · weight_mask`` saved as ``weight``)."""
    clone = copy.deepcopy(model)
    for layer in prunable_layers(clone):
        if prune.is_pruned(layer):
            prune.remove(layer, "weight")
    return {k: v.detach().clone() for k, v in clone.state_dict().items()}


def random_masks_like(masks: list[torch.Tensor], generator: torch.Generator) -> list[torch.Tensor]:
    """Random masks with the same number of surviving weights in each layer as ``masks`` (uniform over positions):
    Frankle & Carbin's (2019) random-pruning control at the ticket's layer-wise sparsity."""
    out = []
    for mask in masks:
        keep = int(mask.sum())
        new = torch.zeros(mask.numel(), dtype=mask.dtype)
        new[torch.randperm(mask.numel(), generator=generator)[:keep]] = 1.0
        out.append(new.view_as(mask))
    return out


def remaining_fraction(masks: list[torch.Tensor]) -> float:
    """Fraction of prunable weights that survive."""
    return float(sum(m.sum() for m in masks) / sum(m.numel() for m in masks))


def matching_sparsity(sparsity: list[float], errors: list[float], dense_error: float) -> float:
    """Smallest remaining fraction down to which every round's test error is within 1 point of the dense one.

    Rounds are taken in order and the first round above ``dense_error + 0.01`` stops the scan (Frankle &
    Carbin 2019's "matching" tickets). Returns 1.0 when even the first pruned round fails to match.
    """
    matched = 1.0
    for s, e in zip(sparsity, errors, strict=True):
        if e > dense_error + MATCH_TOLERANCE:
            break
        matched = s
    return matched


def _mlp(input_dim: int, hidden: list[int], output_dim: int) -> nn.Module:
    dims = [input_dim, *hidden]
    layers: list[nn.Module] = []
    for d_in, d_out in zip(dims[:-1], dims[1:], strict=True):
        layers += [nn.Linear(d_in, d_out), nn.ReLU()]
    return nn.Sequential(*layers, nn.Linear(dims[-1], output_dim))


#: the constraints of the network and data parameters both lottery phenomena share
NETWORK_CONSTRAINTS = {
    "network": OneOf(("mlp", "conv1d")),
    "hidden": Each(Interval(1, None, integer=True)),
    "channels": POSITIVE_INT,
    "n_train": POSITIVE_INT,
    "n_test": POSITIVE_INT,
}


def build_network(kind: str, hidden: list[int], channels: int, seed: int) -> nn.Module:
    """MNIST-1D networks: ``"mlp"`` 40-hidden…-10 ReLU (Frankle & Carbin's LeNet-300-100 shape by default)
    or ``"conv1d"``, the MNIST-1D benchmark conv net with ``channels`` channels."""
    if kind == "conv1d":
        return build_model("conv1d", seed=seed, channels=channels)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return _mlp(40, [int(h) for h in hidden], 10)


@register
class LotteryTicket(Phenomenon):
    """Iterative magnitude pruning with rewinding on MNIST-1D (Frankle & Carbin 2019; Frankle et al. 2020).

    Defaults follow this project's measured recipe: 40-300-100-10 MLP, Adam lr 1.2e-3, batch 60, 3000 steps
    per round, 20% per round (10% for the output layer), rewind to initialisation (``rewind_step = 0``), both
    controls (``reinit_control``, ``random_control``) trained at every round. ``momentum`` applies to
    ``optimizer = "sgd"`` (Frankle et al. 2020's unstable networks are trained with SGD and momentum).
    """

    name = "lottery_ticket"
    parameters: Mapping[str, Any] = {
        "network": "mlp",
        "hidden": [300, 100],
        "channels": 32,
        "n_train": 4000,
        "n_test": 1000,
        "pruning": "magnitude",
        "prune_rate": 0.2,
        "output_prune_rate": 0.1,
        "rewind_step": 0,
        "train_steps": 3000,
        "batch_size": 60,
        "optimizer": "adam",
        "lr": 1.2e-3,
        "momentum": 0.0,
        "reinit_control": True,
        "random_control": True,
        "ntk_size": 32,
        "snapshot_size": 256,
        "prime_scale": 10.0,
        "steps": 10,
        "seed": 0,
    }
    constraints = {
        **NETWORK_CONSTRAINTS,
        "pruning": OneOf(PRUNING_KINDS),
        "prune_rate": Interval(0, 1, closed="left"),
        "output_prune_rate": Interval(0, 1, closed="left"),
        "train_steps": POSITIVE_INT,
        "rewind_step": Interval(0, "train_steps", closed="left"),
        "batch_size": POSITIVE_INT,
        "optimizer": OPTIMIZERS,
        "lr": POSITIVE,
        "momentum": Interval(0, 1, closed="left"),
        "ntk_size": POSITIVE_INT,
        "snapshot_size": POSITIVE_INT,
        "prime_scale": FINITE,
        "steps": NON_NEGATIVE,
    }
    outcomes = (
        "dense_test_error",
        "test_error",
        "reinit_test_error",
        "random_test_error",
        "final_sparsity",
        "matching_sparsity",
        "reinit_matching_sparsity",
    )

    def run(self, params: Mapping[str, Any], recorder: Recorder) -> dict[str, float]:
        """Train the dense network, then ``steps`` prune–rewind–retrain rounds, recording at due rounds."""
        q = self.resolve(params)
        ds = load_dataset("mnist1d", n_train=q["n_train"], n_test=q["n_test"])
        data = TrainData(*ds.tensors(), "classification", q["snapshot_size"])
        probe = data.x_train[: q["ntk_size"]]
        seed, k = q["seed"], q["rewind_step"]

        def fit(model: nn.Module, steps: int, offset: int, init: nn.Module) -> dict[str, float]:
            opt = make_optimizer(q["optimizer"], model.parameters(), q["lr"], momentum=q["momentum"])
            return train(
                model,
                data,
                loss="cross_entropy",
                optimizer=opt,
                steps=steps,
                recorder=None,
                seed=seed,
                batch_size=q["batch_size"],
                eval_every=max(steps, 1),
                step_offset=offset,
                init_model=init,
            ).final()

        dense = build_network(q["network"], q["hidden"], q["channels"], seed)
        init_state = dense_state(dense)
        fit(dense, k, 0, dense)
        rewind_state = dense_state(dense)
        metrics = fit(dense, q["train_steps"] - k, k, dense)
        dense_init = apply_masks(dense, init_state, _ones(dense))
        kernels = {
            "init": _ntk(dense_init, probe),
            "rewind": _ntk(apply_masks(dense, rewind_state, _ones(dense)), probe),
        }
        dense_error = metrics["test_error"]
        curve = {"sparsity": [1.0], "test_error": [dense_error]}
        curve |= {f"{c}_test_error": [dense_error] for c in CONTROLS}
        dense_controls = {f"{c}_{m}": metrics[m] for c in CONTROLS for m in ("test_error", "test_loss")}
        gains = {"ticket_gain_over_reinit": 0.0, "ticket_gain_over_random": 0.0, "ticket_excess_over_dense": 0.0}
        distances = {"ntk_distance_ticket_init": 0.0, "ntk_distance_ticket_rewind": 0.0}
        self._record(recorder, 0, dense, dense_init, data, q, metrics, 1.0, dense_controls | gains | distances)
        generator = torch.Generator().manual_seed(seed)
        ticket = dense
        for r in range(1, q["steps"] + 1):
            masks = next_masks(ticket, q["prune_rate"], q["output_prune_rate"], q["pruning"], generator)
            ticket = apply_masks(dense, rewind_state, masks)
            ticket_init = apply_masks(dense, init_state, masks)
            extra = {
                "ntk_distance_ticket_init": kernel_distance(_ntk(ticket_init, probe), kernels["init"]),
                "ntk_distance_ticket_rewind": kernel_distance(_ntk(ticket, probe), kernels["rewind"]),
            }
            metrics = fit(ticket, q["train_steps"] - k, k, ticket_init)
            extra["ticket_excess_over_dense"] = metrics["test_error"] - dense_error
            controls = {c: {"test_error": float("nan"), "test_loss": float("nan")} for c in CONTROLS}
            if q["reinit_control"]:
                fresh = dense_state(build_network(q["network"], q["hidden"], q["channels"], seed + 10_000 * r + 1))
                controls["reinit"] = fit(apply_masks(dense, fresh, masks), q["train_steps"], 0,
                                         apply_masks(dense, fresh, masks))  # fmt: skip
            if q["random_control"]:
                shuffled = random_masks_like(masks, torch.Generator().manual_seed(seed + 10_000 * r + 2))
                controls["random"] = fit(apply_masks(dense, rewind_state, shuffled), q["train_steps"] - k, k,
                                         apply_masks(dense, init_state, shuffled))  # fmt: skip
            for c in CONTROLS:
                extra |= {f"{c}_{m}": controls[c][m] for m in ("test_error", "test_loss")}
                extra[f"ticket_gain_over_{c}"] = controls[c]["test_error"] - metrics["test_error"]
                curve[f"{c}_test_error"].append(controls[c]["test_error"])
            sparsity = remaining_fraction(masks)
            curve["sparsity"].append(sparsity)
            curve["test_error"].append(metrics["test_error"])
            self._record(recorder, r, ticket, ticket_init, data, q, metrics, sparsity, extra)
        return {
            "dense_test_error": dense_error,
            "test_error": curve["test_error"][-1],
            "reinit_test_error": curve["reinit_test_error"][-1],
            "random_test_error": curve["random_test_error"][-1],
            "final_sparsity": curve["sparsity"][-1],
            "matching_sparsity": matching_sparsity(curve["sparsity"][1:], curve["test_error"][1:], dense_error),
            "reinit_matching_sparsity": matching_sparsity(
                curve["sparsity"][1:], curve["reinit_test_error"][1:], dense_error
            ),
        }

    @staticmethod
    def _record(recorder, r, model, init, data, q, metrics, sparsity, extra) -> None:
        if recorder.due(r):
            scalars = {k: metrics[k] for k in ("train_loss", "test_loss", "train_error", "test_error")}
            recorder.record(r, data.snapshot(model, init, q["prime_scale"]), sparsity=sparsity, **scalars, **extra)


def _ones(model: nn.Module) -> list[torch.Tensor]:
    return [torch.ones_like(getattr(m, "weight_mask", m.weight)) for m in prunable_layers(model)]


def _ntk(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Output-traced eNTK on ``x`` w.r.t. the trainable parameters (pruned entries have zero gradient)."""
    return empirical_ntk(model, x, trace_outputs=True, implementation="jacobian", dtype=torch.float64)


__all__ = [
    "LotteryTicket",
    "apply_masks",
    "matching_sparsity",
    "next_masks",
    "random_masks_like",
    "remaining_fraction",
]
