"""Bad input to empirical_ntk: each case raises one clear error naming the module or argument."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.utils import prune

from theory import empirical_ntk, jacobian, ntk_operator


def mlp() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)).double()


X = torch.randn(5, 3, dtype=torch.float64)


class WritesIntoBuffer(nn.Module):
    """Adds per-sample values into a fresh unbatched tensor in place: torch.func's vmap rejects this."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(3, 2)

    def forward(self, x):
        out = torch.zeros(x.shape[0], 2, dtype=x.dtype)
        out.add_(self.lin(x))
        return out


class ModifiesLayerInput(nn.Module):
    """Scales the input of ``second`` in place after ``second`` used it: the captured activation is stale."""

    def __init__(self) -> None:
        super().__init__()
        self.first, self.second = nn.Linear(3, 4), nn.Linear(4, 2)

    def forward(self, x):
        h = self.first(x)
        y = self.second(h)
        h.mul_(2.0)
        return y


class SharedLayer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(3, 3)

    def forward(self, x):
        return self.lin(torch.tanh(self.lin(x)))


@pytest.mark.parametrize("implementation", ["auto", "structured", "jacobian", "ntk_vp"])
def test_batchnorm_in_training_mode_is_named(implementation):
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2)).double()
    with pytest.raises(ValueError, match=r"BatchNorm1d at '1' is in training mode.*f\.eval\(\)"):
        empirical_ntk(model, X, implementation=implementation)
    assert empirical_ntk(model.eval(), X, implementation=implementation).shape == (5, 5, 2, 2)


def test_batchnorm_without_running_statistics_is_named():
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4, track_running_stats=False), nn.Linear(4, 2)).eval()
    with pytest.raises(ValueError, match=r"BatchNorm1d at '1' .*no running statistics"):
        empirical_ntk(model.double(), X)


def test_dropout_in_training_mode_is_named():
    model = nn.Sequential(nn.Linear(3, 4), nn.Dropout(0.5), nn.Linear(4, 2)).double()
    with pytest.raises(ValueError, match=r"Dropout at '1' is in training mode"):
        empirical_ntk(model, X)


@pytest.mark.parametrize("implementation", ["jacobian", "ntk_vp"])
def test_in_place_operations_torch_func_rejects(implementation):
    with pytest.raises(ValueError, match=r"WritesIntoBuffer performs an in-place operation"):
        empirical_ntk(WritesIntoBuffer().double(), X, implementation=implementation)


def test_in_place_modification_of_a_layer_input_is_detected():
    with pytest.raises(ValueError, match=r"inputs of layers \['second'\] are modified in place"):
        empirical_ntk(ModifiesLayerInput().double(), X, implementation="structured")


def test_layer_called_twice_is_unsupported_by_structured_and_auto_falls_back():
    model = SharedLayer().double()
    with pytest.raises(ValueError, match=r"exactly once.*'lin': 2"):
        empirical_ntk(model, X, implementation="structured")
    expected = empirical_ntk(model, X, implementation="jacobian")
    assert torch.allclose(empirical_ntk(model, X), expected, rtol=1e-10, atol=1e-12)


def test_pruned_layer_is_unsupported_by_structured_and_auto_falls_back():
    """torch.nn.utils.prune trains weight_orig and uses weight_orig * mask: no (a aᵀ)⊙(δ δᵀ) closed form."""
    model = mlp()
    prune.l1_unstructured(model[0], "weight", amount=0.5)
    with pytest.raises(ValueError, match=r"Linear at '0'.*\['weight_orig'\]"):
        empirical_ntk(model, X, implementation="structured")
    expected = empirical_ntk(model, X, implementation="jacobian")
    assert torch.allclose(empirical_ntk(model, X), expected, rtol=1e-10, atol=1e-12)


def test_parameters_without_grad_are_named():
    model = mlp()
    model[0].weight.requires_grad_(False)
    with pytest.raises(ValueError, match=r"without grad.*\['0\.weight'\]"):
        empirical_ntk(model, X, params=["0.weight", "2.bias"])
    theta = empirical_ntk(model, X)  # the default skips frozen parameters
    assert torch.allclose(theta, empirical_ntk(model, X, params=["0.bias", "2.weight", "2.bias"]))
    for p in model.parameters():
        p.requires_grad_(False)
    with pytest.raises(ValueError, match="no parameter with requires_grad=True"):
        empirical_ntk(model, X)


def test_unknown_or_empty_parameter_selection():
    with pytest.raises(ValueError, match=r"unknown parameters \['3\.weight'\]"):
        empirical_ntk(mlp(), X, params=["3.weight"])
    with pytest.raises(ValueError, match="at least one parameter"):
        empirical_ntk(mlp(), X, params=[])
    with pytest.raises(TypeError, match="iterable of parameter names"):
        empirical_ntk(mlp(), X, params="0.weight")


def test_mismatched_x2_shape_device_and_dtype_name_x2():
    with pytest.raises(ValueError, match=r"'x2' argument must have shape \(N2, 3\).*\(5, 4\)"):
        empirical_ntk(mlp(), X, torch.zeros(5, 4, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"'x2' argument must match x1's device and dtype.*float32"):
        empirical_ntk(mlp(), X, X.float())
    with pytest.raises(ValueError, match=r"'x2' argument must match x1's device and dtype.*meta"):
        empirical_ntk(mlp(), X, X.to("meta"))
    with pytest.raises(TypeError, match="'x2' argument must be a torch.Tensor"):
        empirical_ntk(mlp(), X, X.numpy())


def test_bad_arguments_name_argument_expected_and_actual():
    with pytest.raises(ValueError, match=r"'implementation' parameter of empirical_ntk must be one of .*Got 'fast'"):
        empirical_ntk(mlp(), X, implementation="fast")
    with pytest.raises(ValueError, match=r"'block_size' parameter of empirical_ntk must be a positive int"):
        empirical_ntk(mlp(), X, block_size=0)
    with pytest.raises(ValueError, match="at most one may be True"):
        empirical_ntk(mlp(), X, trace_outputs=True, diagonal_outputs=True)
    with pytest.raises(ValueError, match=r"'dtype' argument must be a floating torch.dtype.*int64"):
        empirical_ntk(mlp(), X, dtype=torch.int64)
    with pytest.raises(TypeError, match=r"'f' argument must be a torch.nn.Module.*function"):
        empirical_ntk(lambda x: x, X)
    with pytest.raises(TypeError, match="'x1' argument must be a torch.Tensor"):
        empirical_ntk(mlp(), X.tolist())
    with pytest.raises(TypeError, match="'x' argument must be a torch.Tensor"):
        jacobian(mlp(), X.tolist())
    with pytest.raises(TypeError, match="'x' argument must be a torch.Tensor"):
        ntk_operator(mlp(), X.tolist())
