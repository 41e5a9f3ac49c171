"""Training loop shared by the grokking and lottery-ticket phenomena: seeded batches, standard records."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np
import torch
import torch.nn.functional as F

from empirics.phenomena.constraints import OneOf
from empirics.recorder import Recorder
from empirics.snapshot import Snapshot, TrainingContext
from theory._validation import check_option


class OptimizerKind(StrEnum):
    """``adamw`` (decoupled weight decay, Loshchilov & Hutter 2019; the grokking default), ``adam`` (weight decay
    as an L2 gradient term) or ``sgd`` (with the given momentum)."""

    ADAMW = "adamw"
    ADAM = "adam"
    SGD = "sgd"


class LossKind(StrEnum):
    """``cross_entropy`` on class logits, or ``mse``: mean squared error against one-hot targets (classification;
    with a single output, the 0/1 class index itself) or real targets (regression), averaged over examples and
    outputs."""

    CROSS_ENTROPY = "cross_entropy"
    MSE = "mse"


OPTIMIZERS = OneOf([k.value for k in OptimizerKind])
LOSSES = OneOf([k.value for k in LossKind])


def make_optimizer(
    kind: str,
    params,
    lr: float,
    weight_decay: float = 0.0,
    *,
    betas: tuple[float, float] = (0.9, 0.999),
    momentum: float = 0.0,
) -> torch.optim.Optimizer:
    """The torch optimizer named by :class:`OptimizerKind`."""
    kind = OptimizerKind(check_option("optimizer", kind, list(OptimizerKind)))
    if kind is OptimizerKind.ADAMW:
        return torch.optim.AdamW(params, lr=lr, betas=betas, weight_decay=weight_decay)
    if kind is OptimizerKind.ADAM:
        return torch.optim.Adam(params, lr=lr, betas=betas, weight_decay=weight_decay)
    return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)


def loss_value(kind: str, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean loss of outputs ``out`` against class indices (``y`` int64) or real targets."""
    kind = LossKind(check_option("loss", kind, list(LossKind)))
    if kind is LossKind.CROSS_ENTROPY:
        if out.shape[-1] == 1:
            raise ValueError("The 'loss' parameter must be 'mse' for a one-output classifier. Got 'cross_entropy'.")
        return F.cross_entropy(out, y)
    return F.mse_loss(out, squared_loss_targets(out, y))


def squared_loss_targets(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The real targets the squared loss compares ``out`` with: one-hot rows for class indices (the 0/1 index
    itself for a one-output binary classifier), else ``y`` reshaped like ``out``."""
    if y.dtype != torch.int64:
        return y.reshape(out.shape)
    if out.shape[-1] == 1:
        return y.to(out.dtype).reshape(out.shape)
    return F.one_hot(y, out.shape[-1]).to(out.dtype)


def error_rate(out: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction of predictions that differ from the class indices ``y``: the argmax, or for one output the class
    1{f > 1/2} (a binary classifier regressed on 0/1)."""
    predicted = (out[..., 0] > 0.5).long() if out.shape[-1] == 1 else out.argmax(dim=-1)
    return float((predicted != y).double().mean())


def weight_norm(model: torch.nn.Module) -> float:
    """‖θ‖₂ over all parameters."""
    return float(torch.sqrt(sum(p.detach().double().square().sum() for p in model.parameters())))


@dataclass
class History:
    """Metrics at the evaluated steps (errors are NaN for regression)."""

    steps: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    test_loss: list[float] = field(default_factory=list)
    train_error: list[float] = field(default_factory=list)
    test_error: list[float] = field(default_factory=list)

    def final(self) -> dict[str, float]:
        """The last evaluated value of every metric."""
        names = ("train_loss", "test_loss", "train_error", "test_error")
        return {name: getattr(self, name)[-1] for name in names}


@dataclass(frozen=True)
class TrainData:
    """Tensors of one run and the subsets every recorded snapshot looks at (quantities such as the eNTK are
    quadratic in the number of examples, so snapshots see the first ``snapshot_size`` of each split)."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    task: str = "classification"
    snapshot_size: int = 256
    output: int | None = None

    def to(self, device: torch.device | str) -> TrainData:
        """The same data with every tensor on ``device``."""
        moved = {k: getattr(self, k).to(device) for k in ("x_train", "y_train", "x_test", "y_test")}
        return dataclasses.replace(self, **moved)

    def snapshot(self, model: torch.nn.Module, init_model: torch.nn.Module, scale: float) -> Snapshot:
        k = self.snapshot_size
        return Snapshot(
            model, init_model, self.x_train[:k], self.y_train[:k], self.x_test[:k], self.y_test[:k], self.task, scale
        )

    def training_context(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, loss: str) -> TrainingContext:
        """What step-following quantities see: every training input with its squared-loss targets (n, O), the
        first ``snapshot_size`` test inputs, the loss and ``c = 2/O`` of ``F.mse_loss`` as ``(c/2)·mean‖f − y‖²``."""
        with torch.no_grad():
            out = model(self.x_train[:1])
        targets = squared_loss_targets(out.expand(self.x_train.shape[0], *out.shape[1:]), self.y_train)
        targets = targets.reshape(self.x_train.shape[0], -1)
        return TrainingContext(
            model, optimizer, self.x_train, targets, self.x_test[: self.snapshot_size], str(loss),
            2.0 / targets.shape[1], self.output,
        )  # fmt: skip


def train(
    model: torch.nn.Module,
    data: TrainData,
    *,
    loss: str,
    optimizer: torch.optim.Optimizer,
    steps: int,
    recorder: Recorder | None,
    seed: int,
    batch_size: int | None = None,
    eval_every: int = 1,
    scale: float = 1.0,
    init_model: torch.nn.Module | None = None,
    step_offset: int = 0,
    extra: Callable[[torch.nn.Module], dict[str, float]] | None = None,
) -> History:
    """Train ``steps`` optimizer steps; evaluate every ``eval_every`` steps and at the recorder's due steps.

    Step s reports the model after s updates. Full batch when ``batch_size`` is None (then the training
    metrics come from the forward pass of the update); otherwise minibatches drawn by a ``torch.Generator``
    seeded with ``seed`` (epochs of a fresh permutation). Due steps record ``train_loss``, ``test_loss``,
    ``train_error``, ``test_error`` (classification), ``weight_norm``, ``extra(model)`` and the recorder's
    quantities on :meth:`TrainData.snapshot`. ``step_offset`` shifts recorded step numbers (a continued or
    rewound segment; its step 0 is not recorded again). A recorder with step-following quantities is attached
    to the run (:meth:`TrainData.training_context`) and called around every optimizer step.
    """
    classification = data.task == "classification"
    init_model = init_model if init_model is not None else _frozen_copy(model)
    generator = torch.Generator().manual_seed(seed)
    order, cursor, n = torch.empty(0, dtype=torch.int64), 0, data.x_train.shape[0]
    history = History()
    stepped = recorder is not None and recorder.follows_steps
    if stepped:
        recorder.attach(data.training_context(model, optimizer, loss))
    batch = None
    for step in range(steps + 1):
        # a continued segment (step_offset > 0) does not record its first step: the previous segment did
        due = recorder is not None and recorder.due(step + step_offset) and not (step == 0 and step_offset > 0)
        evaluate = due or step % eval_every == 0 or step == steps
        if batch_size is None and step < steps:
            out = model(data.x_train)
            objective = loss_value(loss, out, data.y_train)
            train_out = out.detach()
        elif evaluate:
            with torch.no_grad():
                train_out = model(data.x_train)
        if evaluate:
            with torch.no_grad():
                test_out = model(data.x_test)
                history.steps.append(step + step_offset)
                history.train_loss.append(float(loss_value(loss, train_out, data.y_train)))
                history.test_loss.append(float(loss_value(loss, test_out, data.y_test)))
                history.train_error.append(error_rate(train_out, data.y_train) if classification else float("nan"))
                history.test_error.append(error_rate(test_out, data.y_test) if classification else float("nan"))
        if due:
            scalars = {
                "train_loss": history.train_loss[-1],
                "test_loss": history.test_loss[-1],
                "weight_norm": weight_norm(model),
            }
            if classification:
                scalars |= {"train_error": history.train_error[-1], "test_error": history.test_error[-1]}
            scalars |= extra(model) if extra is not None else {}
            recorder.record(step + step_offset, data.snapshot(model, init_model, scale), **scalars)
        if step == steps:
            break
        if batch_size is not None:
            if cursor + batch_size > order.numel():
                order, cursor = torch.randperm(n, generator=generator), 0
            batch = order[cursor : cursor + batch_size]
            cursor += batch_size
            objective = loss_value(loss, model(data.x_train[batch]), data.y_train[batch])
        optimizer.zero_grad(set_to_none=True)
        objective.backward()
        if stepped:
            recorder.before_step(batch)
        optimizer.step()
        if stepped:
            recorder.after_step()
    return history


def _frozen_copy(model: torch.nn.Module) -> torch.nn.Module:
    clone = copy.deepcopy(model)
    clone.requires_grad_(False)
    return clone


def first_step(steps: list[int], values: list[float], threshold: float) -> float:
    """The first step whose value is >= ``threshold`` (NaN if never)."""
    hits = np.flatnonzero(np.asarray(values, dtype=float) >= threshold)
    return float(steps[hits[0]]) if hits.size else float("nan")
