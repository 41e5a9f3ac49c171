"""A tiny deterministic toy phenomenon and quantities for the runner, store and sweep tests.

Specs load this file as a plugin (``plugins = [TOY_PLUGIN]``), so spawned pool workers, Ray workers and
``unitheory run`` subprocesses register the same phenomenon.
"""

from __future__ import annotations

import copy
import os
import time
from pathlib import Path

import pytest
import torch
from threadpoolctl import threadpool_info

from empirics.phenomena import Phenomenon, Snapshot, register
from empirics.quantities import quantity
from empirics.spec import ExperimentSpec, RecordSpec

TOY_PLUGIN = str(Path(__file__).resolve())


@register
class ToyRegression(Phenomenon):
    """Full-batch GD of a 3-``width``-1 tanh MLP on a seeded linear teacher (MSE). ``sleep_s`` slows each recorded
    step, ``crash_marker`` kills the first attempt, ``execution_log`` gets a line as an execution starts and ends."""

    name = "toy_regression"
    parameters = {
        "steps": 20, "width": 4, "lr": 0.1, "n": 32, "noise": 0.1,
        "sleep_s": 0.0, "crash_marker": "", "execution_log": "",
    }  # fmt: skip
    outcomes = ("final_train_loss", "final_test_loss")

    def run(self, params, recorder):
        gen = torch.Generator().manual_seed(10_000 + params["seed"])
        x = torch.randn(2 * params["n"], 3, generator=gen, dtype=torch.float64)
        y = x @ torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64) + params["noise"] * torch.randn(
            2 * params["n"], generator=gen, dtype=torch.float64
        )
        x_tr, y_tr, x_te, y_te = x[: params["n"]], y[: params["n"]], x[params["n"] :], y[params["n"] :]
        model = torch.nn.Sequential(
            torch.nn.Linear(3, params["width"]), torch.nn.Tanh(), torch.nn.Linear(params["width"], 1)
        )
        model = model.double()
        init = [p.detach().clone() for p in model.parameters()]
        init_model = copy.deepcopy(model)
        optimizer = torch.optim.SGD(model.parameters(), lr=params["lr"])
        _log_execution(params, "start")
        if params["crash_marker"] and not os.path.exists(params["crash_marker"]):
            Path(params["crash_marker"]).touch()
            os._exit(1)  # the worker dies on its first attempt: a retry must redo this run
        for step in range(params["steps"] + 1):
            with torch.no_grad():
                test_loss = float(((model(x_te).squeeze(-1) - y_te) ** 2).mean())
            train_loss = ((model(x_tr).squeeze(-1) - y_tr) ** 2).mean()
            if recorder.due(step):
                snapshot = Snapshot(model, init_model, x_tr, y_tr, x_te, y_te, task="regression")
                recorder.record(step, snapshot, train_loss=train_loss.item(), test_loss=test_loss)
                time.sleep(params["sleep_s"])
            if step < params["steps"]:
                optimizer.zero_grad()
                train_loss.backward()
                optimizer.step()
        _log_execution(params, "end")
        recorder.save_array("init_first_weight", init[0].numpy())
        recorder.save_array("first_weight", model[0].weight.detach().numpy())
        return {"final_train_loss": train_loss.item(), "final_test_loss": test_loss}


def _log_execution(params, event: str) -> None:
    """A line per started and per finished execution: a run executed twice shows twice."""
    if params["execution_log"]:
        with open(params["execution_log"], "a") as log:
            log.write(f"{event} {params['width']} {params['seed']} {os.getpid()}\n")


@quantity("toy_weight_norm")
def toy_weight_norm(snapshot: Snapshot) -> dict[str, float]:
    return {"weight_norm": float(sum(p.detach().pow(2).sum() for p in snapshot.model.parameters()).sqrt())}


@quantity("toy_threads")
def toy_threads(snapshot: Snapshot) -> dict[str, float]:
    """The torch and BLAS thread counts a run sees: they must not depend on the backend."""
    blas = [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]
    return {"torch_threads": float(torch.get_num_threads()), "blas_threads": float(max(blas))}


@quantity("toy_velocity")
class ToyVelocity:
    """Stateful: distance of the parameters from those at the previous recorded step (0 at the first)."""

    def __init__(self) -> None:
        self.previous = None

    def __call__(self, snapshot: Snapshot) -> dict[str, float]:
        flat = torch.cat([p.detach().reshape(-1) for p in snapshot.model.parameters()])
        value = 0.0 if self.previous is None else float((flat - self.previous).norm())
        self.previous = flat.clone()
        return {"velocity": value}


def make_toy_spec(**overrides) -> ExperimentSpec:
    """A 2 widths x 2 seeds sweep of the toy phenomenon (4 runs of a few milliseconds)."""
    fields = {
        "name": "toy",
        "phenomenon": "toy_regression",
        "seeds": (0, 1),
        "params": {"steps": 20},
        "sweep": {"width": (2, 5)},
        "record": RecordSpec(quantities=("toy_weight_norm", "toy_velocity", "toy_threads"), count=6),
        "plugins": (TOY_PLUGIN,),
        **overrides,
    }
    return ExperimentSpec(**fields)


TOY_TOML = f"""
name = "toy"
phenomenon = "toy_regression"
description = "toy sweep for the infrastructure tests"
seeds = [0, 1]
plugins = ["{TOY_PLUGIN}"]
[params]
steps = 20
[sweep]
width = [2, 5]
[record]
quantities = ["toy_weight_norm", "toy_velocity", "toy_threads"]
schedule = "log"
count = 6
[quick]
seeds = [0]
params = {{ steps = 5 }}
sweep = {{ width = [3] }}
record = {{ count = 3 }}
"""


@pytest.fixture
def toy_toml(tmp_path) -> Path:
    path = tmp_path / "toy.toml"
    path.write_text(TOY_TOML)
    return path


@pytest.fixture
def toy_spec():
    """The factory :func:`make_toy_spec` (keyword overrides of ExperimentSpec fields)."""
    return make_toy_spec
