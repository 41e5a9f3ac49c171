"""The ``telescope`` recorder quantity: the telescoping model carried along a phenomenon's own training loop
(Jeffares, Curth & van der Schaar 2024), checked against ``theory.telescope`` on the same run, and refused with
a reason where it cannot follow the run."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from empirics.data import load_dataset
from empirics.models import build_model
from empirics.phenomena import get_phenomenon
from empirics.recorder import Recorder
from empirics.snapshot import Snapshot, TrainingContext
from empirics.spec import ExperimentSpec, RecordSpec, SpecError
from empirics.theory_quantities import TelescopeQuantity
from theory.telescoping import OptimizerSpec, telescope

TEACHER = {"dim": 6, "n_train": 24, "n_test": 10, "width": 16, "alpha": 1.0, "lr_scale": 0.05, "snapshot_size": 8}


def _rows(recorder: Recorder) -> dict[str, dict[int, float]]:
    out: dict[str, dict[int, float]] = {}
    for step, name, value in recorder.rows:
        out.setdefault(name, {})[step] = value
    return out


def test_teacher_run_records_the_smoother_theory_telescope_computes():
    """grokking_teacher trains a float32 net with F.mse_loss (c = 2) and GD lr γ; theory.telescope on a float64
    copy with the ½-loss and lr 2γ follows the same trajectory, so p_train/p_test agree to float32 precision."""
    steps, q = 30, {**TEACHER, "steps": 30, "seed": 3}
    recorder = Recorder(("telescope",), [0, 10, 30])
    get_phenomenon("grokking_teacher").run(q, recorder)
    rows = _rows(recorder)
    ds = load_dataset("quadratic_teacher", dim=6, n_train=24, n_test=10, data_seed=3)
    x, y, x_test, _ = ds.tensors()
    model = build_model("lazy_rich", seed=3, input_dim=6, width=16, epsilon=1.0, alpha=1.0)
    lr = 2 * q["lr_scale"] * q["width"] / q["alpha"] ** 2
    ref = telescope(
        model, (x.double(), y.double()), x_test[:8].double(), OptimizerSpec("sgd", lr=lr), steps, 10, seed=0
    )
    for i, step in enumerate(ref.steps):
        if int(step) in rows["p_train"]:
            assert rows["p_train"][int(step)] == pytest.approx(ref.p_train[i, 0], rel=1e-4, abs=1e-6)
            assert rows["p_test"][int(step)] == pytest.approx(ref.p_test[i, 0], rel=1e-4, abs=1e-6)
    assert rows["p_train"][0] == 0.0 and rows["p_train"][30] > 1.0
    # the telescoping model is accurate here: its RMS error is far below the function's own change
    change = np.sqrt(np.mean((ref.real[-1] - ref.real[0]) ** 2))
    assert rows["telescope_gap_train"][30] < 1e-2 * change and rows["telescope_gap_test"][30] < 1e-2 * change
    assert rows["telescope_gap_train"][30] == pytest.approx(np.sqrt(np.mean(ref.gap[-1, :24] ** 2)), rel=1e-2)


def _mnist_binary(**extra):
    return {
        "classes": 2, "n_train": 24, "n_test": 16, "width": 6, "depth": 1, "batch_size": 8, "init_scale": 2.0,
        "lr": 0.01, "weight_decay": 0.1, "steps": 12, "eval_every": 4, "snapshot_size": 8, "seed": 1, **extra,
    }  # fmt: skip


def test_recording_the_telescope_does_not_change_the_run_and_follows_adamw():
    """Binary MNIST-1D, one output, minibatch AdamW with decoupled weight decay: the parameter method with the
    optimizer's own preconditioner. The run's outcomes and records are bit-identical with and without it."""
    phenomenon = get_phenomenon("grokking_mnist1d")
    with_tele, without = Recorder(("telescope",), [0, 6, 12]), Recorder((), [0, 6, 12])
    out_a = phenomenon.run(_mnist_binary(), with_tele)
    out_b = phenomenon.run(_mnist_binary(), without)
    np.testing.assert_equal(out_a, out_b)
    base = {(s, n): v for s, n, v in without.rows}
    assert all(base[(s, n)] == v for s, n, v in with_tele.rows if (s, n) in base)
    rows = _rows(with_tele)
    assert set(rows) >= {"p_train", "p_test", "telescope_gap_train", "telescope_gap_test"}
    assert 0 < rows["p_train"][12] < 24 + 1e-9 and np.isfinite(rows["p_test"][12])
    assert rows["telescope_gap_train"][12] < 0.05


def test_spec_refuses_the_telescope_on_a_phenomenon_without_step_hooks():
    spec = ExperimentSpec("x", "lottery_ticket", record=RecordSpec(quantities=("telescope",)))
    with pytest.raises(
        SpecError, match="\\['telescope'\\] follow every optimizer step, but phenomenon 'lottery_ticket'"
    ):
        spec.validate()
    with pytest.raises(SpecError, match="phenomena that do: \\[.*'grokking_teacher'"):
        spec.validate()
    ExperimentSpec("y", "grokking_teacher", record=RecordSpec(quantities=("telescope",))).validate()


def test_runs_the_telescope_cannot_follow_are_refused_with_the_reason():
    phenomenon = get_phenomenon("grokking_mnist1d")
    with pytest.raises(ValueError, match="records one output: the model has 3, so the phenomenon must declare"):
        phenomenon.run(_mnist_binary(classes=3), Recorder(("telescope",), [0]))
    model = torch.nn.Linear(2, 2)
    context = TrainingContext(
        model, torch.optim.SGD(model.parameters(), lr=0.1), torch.zeros(4, 2), torch.zeros(4, 2), torch.zeros(2, 2),
        "cross_entropy", 1.0,
    )  # fmt: skip
    with pytest.raises(ValueError, match="needs a squared-loss run \\(loss 'mse'\\). Got loss 'cross_entropy'"):
        TelescopeQuantity().attach(context)
    with pytest.raises(RuntimeError, match="never attached it"):
        Recorder(("telescope",), [0]).record(0, snapshot=_any_snapshot())
    with pytest.raises(ValueError, match="declared output must be in \\[0, 2\\). Got 2"):
        TelescopeQuantity().attach(dataclasses.replace(context, loss="mse", output=2))
    declared = TelescopeQuantity()
    declared.attach(dataclasses.replace(context, loss="mse", output=1))
    with pytest.raises(RuntimeError, match="attached twice"):
        declared.attach(dataclasses.replace(context, loss="mse", output=1))


def _any_snapshot() -> Snapshot:
    model = torch.nn.Linear(2, 1)
    return Snapshot(model, model, torch.zeros(2, 2), torch.zeros(2), torch.zeros(2, 2), torch.zeros(2))
