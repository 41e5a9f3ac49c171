"""Grokking: data sets and models against brute-force references, the gap statistic, and the quick signature."""

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from statsmodels.stats.weightstats import DescrStatsW

from empirics.data import load_dataset
from empirics.models import build_model
from empirics.phenomena import get_phenomenon
from empirics.phenomena.grokking import gap_summary, grokking_gap
from empirics.recorder import Recorder
from empirics.spec import load_spec
from theory import empirical_ntk
from theory.ntk import resolve_implementation

_OPS = {
    "add": lambda a, b, p: (a + b) % p,
    "sub": lambda a, b, p: (a - b) % p,
    "div": lambda a, b, p: next(c for c in range(p) if (c * b - a) % p == 0),
    "quad": lambda a, b, p: (a * a + a * b + b * b) % p,
}


@pytest.mark.parametrize("operation", sorted(_OPS))
def test_modular_table_is_complete_correct_and_split(operation):
    p = 11
    ds = load_dataset("modular", p=p, operation=operation, train_fraction=0.4, split_seed=3)
    x = np.concatenate([ds.x_train, ds.x_test]).astype(int)
    y = np.concatenate([ds.y_train, ds.y_test])
    pairs = {(a, b) for a in range(p) for b in range(p) if operation != "div" or b != 0}
    assert sorted(map(tuple, x)) == sorted(pairs)  # every pair exactly once across the split
    assert all(int(c) == _OPS[operation](int(a), int(b), p) for (a, b), c in zip(x, y, strict=True))
    assert ds.n_train == round(0.4 * len(pairs)) and ds.num_classes == p


def test_modular_rejects_bad_arguments():
    with pytest.raises(ValueError, match="'p' parameter of modular must be a prime. Got 12"):
        load_dataset("modular", p=12)
    with pytest.raises(ValueError, match="'operation' parameter of modular must be one of"):
        load_dataset("modular", operation="mul")
    with pytest.raises(ValueError, match="'train_fraction' parameter of modular"):
        load_dataset("modular", train_fraction=1.0)


def test_quadratic_teacher_targets():
    ds = load_dataset("quadratic_teacher", dim=6, n_train=20, n_test=5, data_seed=1)
    beta = np.random.default_rng(1).standard_normal(6)
    np.testing.assert_allclose(ds.y_train, 0.5 * (ds.x_train @ beta) ** 2)
    assert ds.task == "regression" and ds.x_test.shape == (5, 6)


def test_quadratic_mlp_equals_one_hot_network_in_float64():
    """Gromov 2023: f = W2 (W1 [onehot(a); onehot(b)])² with W1 = [U; V]ᵀ, checked by explicit one-hot matmuls."""
    p, width = 7, 13
    model = build_model("quadratic_mlp", seed=2, p=p, width=width).double()
    x = torch.tensor([[a, b] for a in range(p) for b in range(p)], dtype=torch.float64)
    one_hot = torch.cat(
        [torch.eye(p, dtype=torch.float64)[x[:, 0].long()], torch.eye(p, dtype=torch.float64)[x[:, 1].long()]], 1
    )
    w1 = torch.cat([model.embed_a.weight, model.embed_b.weight], 0).T
    reference = (one_hot @ w1.T).square() @ model.readout.weight.T
    torch.testing.assert_close(model(x), reference)


def test_quadratic_mlp_is_covered_by_the_structured_ntk():
    """Built from nn.Embedding/nn.Linear so the 97-output grokking kernels avoid the Jacobian fallback."""
    model = build_model("quadratic_mlp", seed=1, p=7, width=9).double()
    x = torch.tensor([[1, 2], [3, 4], [6, 0]])
    assert resolve_implementation(model, x, None) == "structured"
    structured = empirical_ntk(model, x, trace_outputs=True, dtype=torch.float64)
    reference = empirical_ntk(model, x, trace_outputs=True, dtype=torch.float64, implementation="jacobian")
    torch.testing.assert_close(structured, reference, rtol=1e-10, atol=1e-12)


def test_lazy_rich_net_matches_per_neuron_loop():
    model = build_model("lazy_rich", seed=0, input_dim=4, width=5, epsilon=0.3, alpha=2.5).double()
    x = torch.randn(3, 4, dtype=torch.float64)
    reference = torch.zeros(3, dtype=torch.float64)
    for j in range(5):
        h = x @ model.hidden.weight[j]
        reference += 2.5 / 5 * (h + 0.3 / 2 * h**2)
    torch.testing.assert_close(model(x), reference)


def test_lazy_rich_net_keeps_its_draws_and_is_covered_by_the_structured_ntk():
    """θ is the seed's first N(0, 1) draw (as when it was a raw parameter), held by an nn.Linear so that the
    telescoped teacher's per-step kernels take the structured path instead of the Jacobian fallback."""
    model = build_model("lazy_rich", seed=7, input_dim=6, width=9, epsilon=0.5, alpha=3.0).double()
    torch.manual_seed(7)
    torch.testing.assert_close(model.hidden.weight, torch.randn(9, 6).double(), rtol=0, atol=0)
    x = torch.randn(5, 6, dtype=torch.float64)
    assert resolve_implementation(model, x, None) == "structured"
    structured = empirical_ntk(model, x, dtype=torch.float64)
    reference = empirical_ntk(model, x, dtype=torch.float64, implementation="jacobian")
    torch.testing.assert_close(structured, reference, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", ["embedding_mlp", "modular_transformer"])
def test_modular_models_are_seeded_and_scale_init(name):
    x = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    a, b = build_model(name, seed=5, p=7), build_model(name, seed=5, p=7)
    torch.testing.assert_close(a(x), b(x))
    assert a(x).shape == (2, 7)
    big = build_model(name, seed=5, p=7, init_scale=3.0)
    norm = lambda m: sum(float(q.detach().square().sum()) for q in m.parameters()) ** 0.5
    assert norm(big) == pytest.approx(3.0 * norm(a), rel=1e-5)


def test_grokking_gap_first_crossings():
    steps = [0, 5, 10, 15, 20]
    assert grokking_gap(steps, [0.2, 0.99, 1.0, 1.0, 1.0], [0.0, 0.1, 0.2, 0.96, 0.99]) == (5.0, 15.0, 10.0)
    t_train, t_test, gap = grokking_gap(steps, [0.2, 0.5, 1.0, 1.0, 1.0], [0.0] * 5)
    assert t_train == 10.0 and np.isnan(t_test) and np.isnan(gap)


@given(st.lists(st.floats(0, 1e4, allow_subnormal=False), min_size=2, max_size=12))
def test_gap_summary_matches_statsmodels(gaps):
    result = gap_summary([*gaps, float("nan")])
    assert result.n_seeds == len(gaps) + 1 and result.n_grokked == len(gaps)
    assert result.statistic == pytest.approx(np.mean(gaps))
    if np.std(gaps) > 1e-6 * max(1.0, np.mean(gaps)):
        reference = DescrStatsW(np.asarray(gaps))
        np.testing.assert_allclose(result.conf_int(0.1), reference.tconfint_mean(alpha=0.1), rtol=1e-9, atol=1e-9)
        assert result.pvalue == pytest.approx(reference.ttest_mean(0.0, alternative="larger")[1])
    statistic, pvalue = result
    assert statistic == result.statistic and "seeds grokked" in result.summary()


def test_quick_spec_signature_weight_decay_speeds_up_grokking():
    """Gromov's one-hot MLP, p = 97, fraction 0.5 (REFERENCE §8): with wd 5 train accuracy reaches 99% first and
    test accuracy 95% later; without weight decay it still groks in this model (as Gromov 2023 reports),
    but later. Each run records the standard scalars and the controls."""
    spec = load_spec("grokking-modular", quick=True)
    phenomenon = get_phenomenon(spec.phenomenon)
    gaps, rows = {}, {}
    for config in spec.runs():
        recorder = Recorder(config.quantities, config.schedule)
        out = phenomenon.run(config.params, recorder)
        recorder.finalize(config.seed)
        gaps[config.params["weight_decay"]] = out
        rows[config.params["weight_decay"]] = {name for _, name, _ in recorder.rows}
    with_wd, without = gaps[5.0], gaps[0.0]
    assert 0 < with_wd["step_train_fit"] < with_wd["step_test_fit"]
    assert with_wd["test_error"] < 0.05 and with_wd["train_error"] == 0.0
    assert without["grokking_gap"] > with_wd["grokking_gap"]
    expected = {"train_loss", "test_loss", "train_error", "test_error", "weight_norm", "prime_count", "param_count"}
    assert expected <= rows[5.0] and "random_measure" in rows[5.0]


def test_norm_drop_is_the_fall_below_the_running_peak_of_the_weight_norm():
    from empirics.phenomena.grokking import NormDrop

    layer = torch.nn.Linear(3, 1, bias=False)
    drop, values = NormDrop(), []
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[3.0, 4.0, 0.0]]))  # norm 5
        for factor in (1.0, 2.0, 0.5, 1.5):  # norms 5, 10, 5, 7.5
            layer.weight.mul_(factor)
            values.append(drop(layer)["weight_norm_drop"])
    assert values == pytest.approx([0.0, 0.0, 0.5, 0.25])


def test_one_output_classifiers_regress_the_0_1_label_and_threshold_at_one_half():
    from empirics.phenomena._train import error_rate, loss_value

    out, y = torch.tensor([[0.2], [0.7], [0.55]]), torch.tensor([0, 0, 1])
    assert error_rate(out, y) == pytest.approx(1 / 3)
    assert float(loss_value("mse", out, y)) == pytest.approx(((0.2**2) + 0.7**2 + 0.45**2) / 3)
    with pytest.raises(ValueError, match="must be 'mse' for a one-output classifier"):
        loss_value("cross_entropy", out, y)


def test_binary_mnist1d_run_has_one_output_and_records_the_norm_drop():
    params = {"classes": 2, "n_train": 40, "n_test": 30, "width": 8, "depth": 1, "batch_size": 20, "steps": 6}
    recorder = Recorder((), [0, 3, 6])
    out = get_phenomenon("grokking_mnist1d").run({**params, "eval_every": 3, "seed": 0}, recorder)
    names = {name for _, name, _ in recorder.rows}
    assert {"weight_norm", "weight_norm_drop", "train_error", "test_error"} <= names
    assert 0.0 <= out["test_error"] <= 1.0
    with pytest.raises(ValueError, match="'classes' parameter of grokking_mnist1d must be an integer in \\[2, 10\\]"):
        get_phenomenon("grokking_mnist1d").run({**params, "classes": 1, "seed": 0}, Recorder())
