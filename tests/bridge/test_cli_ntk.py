"""``unitheory ntk``: prints a spectrum summary that matches the API on the same model and inputs."""

from __future__ import annotations

import mnist1d.data
import numpy as np
import pytest
import torch

from bridge.cli import main
from empirics.models import build_model
from theory import empirical_ntk


def run(capsys, *argv: str) -> dict[str, str]:
    assert main(["ntk", *argv]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    return {line[:17].strip(): line[17:].strip() for line in lines}


def expected_kernel(model_name: str, n: int, seed: int, width: int, **options) -> torch.Tensor:
    """The same model and inputs built by hand: MNIST-1D rows drawn by seed, model by seed, float64."""
    data_args = mnist1d.data.get_dataset_args()
    data_args.num_samples = int(np.ceil(2 * n / 0.8))
    pool = mnist1d.data.make_dataset(data_args)["x"]
    x = torch.as_tensor(pool[np.random.default_rng(seed).choice(len(pool), size=n, replace=False)])
    if model_name == "mlp":
        model = build_model("mlp", input_dim=40, output_dim=10, width=width, depth=2, seed=seed)
    else:
        model = build_model("conv1d", channels=width, seed=seed)
    return empirical_ntk(model.double(), x, **options)


def test_mlp_full_kernel_summary_matches_the_api(capsys):
    out = run(capsys, "--model", "mlp", "--n", "6", "--seed", "3", "--width", "8", "--implementation", "jacobian")
    theta = expected_kernel("mlp", 6, 3, 8).permute(0, 2, 1, 3).reshape(60, 60)
    eigs = np.linalg.eigvalsh(theta.numpy())
    assert out["kernel"] == "(6, 6, 10, 10) (full outputs)"
    assert out["implementation"] == "jacobian (requested jacobian)"
    assert float(out["trace"]) == pytest.approx(float(theta.trace()), rel=1e-5)
    assert float(out["lambda_max"]) == pytest.approx(eigs.max(), rel=1e-5)
    assert float(out["effective_dim"].split()[0]) == pytest.approx(np.sum(eigs / (eigs + eigs.mean())), rel=1e-5)


def test_conv1d_traced_kernel_reports_auto_choice_and_condition_number(capsys):
    out = run(capsys, "--model", "conv1d", "--n", "5", "--seed", "1", "--width", "4", "--trace-outputs")
    theta = expected_kernel("conv1d", 5, 1, 4, trace_outputs=True)
    eigs = np.linalg.eigvalsh(theta.numpy())
    assert out["implementation"] == "structured (requested auto)"
    assert float(out["condition_number"]) == pytest.approx(eigs.max() / eigs.min(), rel=1e-4)
    assert "kernel" in out["seconds"] and "eigh" in out["seconds"]


def test_bad_arguments_exit_with_a_named_error(capsys):
    assert main(["ntk", "--n", "0"]) == 2
    assert "'n' parameter of unitheory ntk must be a positive int" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["ntk", "--model", "resnet"])


@pytest.mark.parametrize("device", ["cpu"] + ["cuda"] * torch.cuda.is_available())
def test_device_option_runs_the_kernel_there(capsys, device):
    out = run(
        capsys, "--model", "mlp", "--n", "5", "--seed", "2", "--width", "6", "--trace-outputs", "--device", device
    )
    theta = expected_kernel("mlp", 5, 2, 6, trace_outputs=True)
    assert out["model"].endswith(device)
    assert float(out["trace"]) == pytest.approx(float(theta.trace()), rel=1e-5)  # printed with 6 digits


def test_unavailable_device_is_named(capsys):
    assert main(["ntk", "--n", "4", "--device", "tpu"]) == 2
    assert "'device' parameter of unitheory ntk must be an available torch device" in capsys.readouterr().err
