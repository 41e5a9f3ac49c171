"""Smoothers and effective parameters against dense float64 references, closed forms and estimators' predict."""

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from theory.smoothers import PerOutputEffectiveParameters, effective_parameters


def _loop_effective_parameters(w):
    """Brute force p̂ = (n/|I|) Σ_j Σ_i ŝ_i(x_j)², one entry at a time."""
    n_inputs, n_train = w.shape
    return n_train / n_inputs * sum(w[j, i] ** 2 for j in range(n_inputs) for i in range(n_train))


def test_effective_parameters_matches_loop_and_accepts_torch():
    rng = np.random.default_rng(0)
    w = rng.normal(size=(5, 7))
    assert effective_parameters(w) == pytest.approx(_loop_effective_parameters(w), rel=1e-12)
    assert effective_parameters(torch.from_numpy(w)) == pytest.approx(_loop_effective_parameters(w), rel=1e-12)


def test_effective_parameters_of_averaging_and_interpolating_smoothers():
    n = 6
    assert effective_parameters(np.eye(n)) == pytest.approx(n)  # S = I: every point its own parameter
    assert effective_parameters(np.full((n, n), 1 / n)) == pytest.approx(1.0)  # the mean: one parameter


def test_effective_parameters_per_output():
    rng = np.random.default_rng(1)
    w = rng.normal(size=(4, 6, 3))
    result = effective_parameters(w)
    assert isinstance(result, PerOutputEffectiveParameters)
    expected = [_loop_effective_parameters(w[:, :, o]) for o in range(3)]
    np.testing.assert_allclose(result.per_output, expected, rtol=1e-12)
    assert result.mean == pytest.approx(np.mean(expected), rel=1e-12)


@given(
    arrays(
        np.float64,
        st.tuples(st.integers(1, 5), st.integers(1, 5)),
        elements=st.floats(-1e3, 1e3, allow_subnormal=False),
    )
)
def test_effective_parameters_is_nonnegative_and_scales_quadratically(w):
    p = effective_parameters(w)
    assert p >= 0
    assert effective_parameters(2 * w) == pytest.approx(4 * p, rel=1e-9, abs=1e-9)


@pytest.mark.parametrize(
    "bad, error, match",
    [
        (np.ones(3), ValueError, "2-D or 3-D"),
        (np.ones((0, 3)), ValueError, "at least one"),
        (np.array([[np.nan]]), ValueError, "finite"),
        ("abc", TypeError, "real array"),
    ],
)
def test_effective_parameters_rejects_bad_weights(bad, error, match):
    with pytest.raises(error, match=match):
        effective_parameters(bad)


# --- Smoothers: dense float64 references on tiny data -------------------------------------------------------------

from sklearn.ensemble import (  # noqa: E402
    ExtraTreesRegressor,
    GradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.kernel_ridge import KernelRidge  # noqa: E402
from sklearn.linear_model import LinearRegression, Ridge  # noqa: E402
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor  # noqa: E402

from theory.smoothers import (  # noqa: E402
    EffectiveParameters,
    GradientBoostingSmoother,
    KernelRidgeSmoother,
    LeastSquaresSmoother,
    NotFittedError,
    RandomFourierFeaturesSmoother,
    TreeSmoother,
    effective_parameters_of,
    smoother_for,
)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X, X_test = rng.normal(size=(40, 5)), rng.normal(size=(15, 5))
    y = np.sin(X[:, 0]) + X[:, 1] ** 2 + 0.1 * rng.normal(size=40)
    return X, X_test, y


def _check_against_dense(smoother, X, X_test, S_train, S_test):
    """All of the smoother's outputs against explicit dense matrices S_train (n, n) and S_test (m, n)."""
    smoother.block_size = 7  # several blocks on tiny data
    smoother.fit(X)
    np.testing.assert_allclose(smoother.weights(), S_train, atol=1e-10)
    np.testing.assert_allclose(smoother.weights(X_test), S_test, atol=1e-10)
    np.testing.assert_allclose(smoother.squared_norms(), (S_train**2).sum(1), atol=1e-10)
    np.testing.assert_allclose(smoother.squared_norms(X_test), (S_test**2).sum(1), atol=1e-10)
    np.testing.assert_allclose(smoother.diagonal(), np.diag(S_train), atol=1e-10)
    result = effective_parameters_of(smoother, X, X_test)
    assert result.p_train == pytest.approx(effective_parameters(S_train), rel=1e-9)
    assert result.p_test == pytest.approx(effective_parameters(S_test), rel=1e-9)
    assert result.trace_train == pytest.approx(np.trace(S_train), rel=1e-9)
    assert (result.n_train, result.n_test) == S_test.shape[::-1]
    return result


def test_ordinary_least_squares_is_the_hat_matrix_with_p_train_equal_to_p(data):
    X, X_test, _ = data
    inverse = np.linalg.inv(X.T @ X)
    result = _check_against_dense(LeastSquaresSmoother(), X, X_test, X @ inverse @ X.T, X_test @ inverse @ X.T)
    assert result.p_train == pytest.approx(X.shape[1]) and result.trace_train == pytest.approx(X.shape[1])


def test_min_norm_least_squares_interpolates_when_p_exceeds_n(data):
    X, X_test, _ = data
    W = np.random.default_rng(5).normal(size=(5, 60))
    features = lambda Z: np.hstack([Z, np.cos(Z @ W)])  # p = 65 > n = 40
    phi, phi_test = features(X), features(X_test)
    gram_inverse = np.linalg.inv(phi @ phi.T)  # Φ⁺ = Φᵀ(ΦΦᵀ)⁻¹ for full row rank
    result = _check_against_dense(
        LeastSquaresSmoother(features=features), X, X_test, np.eye(len(X)), phi_test @ phi.T @ gram_inverse
    )
    assert result.p_train == pytest.approx(len(X))


@pytest.mark.parametrize("ridge", [0.3, 10.0])
def test_ridge_matches_dense_formula_sklearn_and_trace_closed_form(data, ridge):
    X, X_test, y = data
    A = np.linalg.inv(X.T @ X + ridge * np.eye(X.shape[1])) @ X.T
    result = _check_against_dense(LeastSquaresSmoother(ridge=ridge), X, X_test, X @ A, X_test @ A)
    d = np.linalg.svd(X, compute_uv=False)
    assert result.trace_train == pytest.approx(np.sum(d**2 / (d**2 + ridge)), rel=1e-12)
    assert result.p_train == pytest.approx(np.sum((d**2 / (d**2 + ridge)) ** 2), rel=1e-12)
    for est in (Ridge(alpha=ridge), Ridge(alpha=ridge, fit_intercept=False), LinearRegression()):
        smoother = smoother_for(est).fit(X)
        np.testing.assert_allclose(smoother.predict(X_test, y), est.fit(X, y).predict(X_test), atol=1e-10)


def test_intercept_adds_the_mean_smoother(data):
    X, X_test, _ = data
    Xc, mean = X - X.mean(0), X.mean(0)
    A = np.linalg.inv(Xc.T @ Xc + 2.0 * np.eye(5)) @ Xc.T
    n = len(X)
    result = _check_against_dense(
        LeastSquaresSmoother(ridge=2.0, fit_intercept=True), X, X_test, Xc @ A + 1 / n, (X_test - mean) @ A + 1 / n
    )
    no_intercept = effective_parameters_of(LeastSquaresSmoother(ridge=2.0), Xc, X_test - mean)
    assert result.p_train == pytest.approx(no_intercept.p_train + 1)


def test_random_fourier_features_match_dense_min_norm_and_approximate_the_gaussian_kernel(data):
    X, X_test, _ = data
    smoother = RandomFourierFeaturesSmoother(n_frequencies=10, bandwidth=0.5, random_state=3).fit(X)
    V = smoother.frequencies_
    features = lambda Z: np.hstack([np.cos(Z @ V.T), np.sin(Z @ V.T)]) / np.sqrt(10)
    pinv = np.linalg.pinv(features(X))
    result = _check_against_dense(
        RandomFourierFeaturesSmoother(10, 0.5, random_state=3), X, X_test, features(X) @ pinv, features(X_test) @ pinv
    )
    assert result.p_train == pytest.approx(20)  # 2N = 20 < n features: the projection has rank 20
    many = RandomFourierFeaturesSmoother(n_frequencies=5000, bandwidth=0.5, random_state=0).fit(X)
    phi = many.features(X[:5])
    gaussian = np.exp(-0.25 / 2 * ((X[:5, None] - X[None, :5]) ** 2).sum(-1))
    np.testing.assert_allclose(phi @ phi.T, gaussian, atol=0.05)


def test_kernel_ridge_matches_dense_solve_and_sklearn(data):
    X, X_test, y = data
    est = KernelRidge(kernel="rbf", gamma=0.2, alpha=0.5).fit(X, y)
    k = lambda A, B: np.exp(-0.2 * ((A[:, None] - B[None]) ** 2).sum(-1))
    inverse = np.linalg.inv(k(X, X) + 0.5 * np.eye(len(X)))
    _check_against_dense(KernelRidgeSmoother(k, ridge=0.5), X, X_test, k(X, X) @ inverse, k(X_test, X) @ inverse)
    np.testing.assert_allclose(smoother_for(est).fit(X).predict(X_test, y), est.predict(X_test), atol=1e-10)
    laplace = lambda a, b, scale: np.exp(-np.abs(a - b).sum() / scale)  # a callable kernel with kernel_params
    est = KernelRidge(kernel=laplace, kernel_params={"scale": 2.0}, alpha=0.3).fit(X, y)
    np.testing.assert_allclose(smoother_for(est).fit(X).predict(X_test, y), est.predict(X_test), atol=1e-10)


def test_ridgeless_kernel_with_finite_rank_is_a_projection(data):
    X, X_test, _ = data
    linear = lambda A, B: A @ B.T  # rank 5: the min-norm kernel interpolator is OLS
    result = effective_parameters_of(KernelRidgeSmoother(linear), X, X_test)
    ols = effective_parameters_of(LeastSquaresSmoother(), X, X_test)
    assert result.p_train == pytest.approx(5) and result.p_test == pytest.approx(ols.p_test, rel=1e-8)


def test_kernel_receives_torch_inputs_unchanged(data):
    X, X_test, y = data
    seen = []

    def kernel(A, B):
        seen.append(type(A))
        return (A @ B.T + 1) ** 2

    smoother = KernelRidgeSmoother(kernel, ridge=1.0).fit(torch.from_numpy(X))
    prediction = smoother.predict(torch.from_numpy(X_test), y)
    gram = (X @ X.T + 1) ** 2
    expected = (X_test @ X.T + 1) ** 2 @ np.linalg.solve(gram + np.eye(len(X)), y)
    np.testing.assert_allclose(prediction, expected, rtol=1e-8)
    assert set(seen) == {torch.Tensor}


def _dense_tree(tree, X, Z, counts=None):
    """S[j, i] = c_i 1{leaf(x_i) = leaf(z_j)} / Σ_k c_k 1{leaf(x_k) = leaf(z_j)}, by loops."""
    counts = np.ones(len(X)) if counts is None else counts
    leaf_x, leaf_z = tree.apply(X), tree.apply(Z)
    S = np.zeros((len(Z), len(X)))
    for j in range(len(Z)):
        for i in range(len(X)):
            S[j, i] = counts[i] * (leaf_x[i] == leaf_z[j])
        S[j] /= S[j].sum()
    return S


def test_decision_tree_is_leaf_averaging_and_matches_predict(data):
    X, X_test, y = data
    tree = DecisionTreeRegressor(max_depth=3, random_state=0).fit(X, y)
    result = _check_against_dense(TreeSmoother(tree), X, X_test, _dense_tree(tree, X, X), _dense_tree(tree, X, X_test))
    assert result.p_train == pytest.approx(tree.get_n_leaves())  # Σ_leaf |leaf|·(1/|leaf|)
    np.testing.assert_allclose(TreeSmoother(tree).fit(X).predict(X_test, y), tree.predict(X_test), rtol=0, atol=1e-12)


@pytest.mark.parametrize("max_samples", [None, 0.6])
def test_forest_with_bootstrap_is_the_mean_of_weighted_tree_smoothers(data, max_samples):
    X, X_test, y = data
    forest = RandomForestRegressor(n_estimators=6, max_depth=4, max_samples=max_samples, random_state=1).fit(X, y)
    counts = [np.bincount(s, minlength=len(X)) for s in forest.estimators_samples_]
    dense = lambda Z: np.mean([_dense_tree(t, X, Z, c) for t, c in zip(forest.estimators_, counts, strict=True)], 0)
    _check_against_dense(TreeSmoother(forest), X, X_test, dense(X), dense(X_test))
    for Z in (X, X_test):
        np.testing.assert_allclose(TreeSmoother(forest).fit(X).predict(Z, y), forest.predict(Z), rtol=0, atol=1e-12)


def test_extra_trees_without_bootstrap_match_predict(data):
    X, X_test, y = data
    forest = ExtraTreesRegressor(n_estimators=5, min_samples_leaf=3, random_state=0).fit(X, y)
    np.testing.assert_allclose(TreeSmoother(forest).fit(X).predict(X_test, y), forest.predict(X_test), atol=1e-12)


@pytest.mark.parametrize("model", [DecisionTreeClassifier(max_depth=3), RandomForestClassifier(5, max_depth=3)])
def test_classifier_smoother_on_one_hot_labels_is_predict_proba(data, model):
    X, X_test, y = data
    labels = np.digitize(y, np.quantile(y, [0.33, 0.66]))
    model = model.set_params(random_state=0).fit(X, labels)
    one_hot = np.eye(3)[labels]
    np.testing.assert_allclose(TreeSmoother(model).fit(X).predict(X_test, one_hot), model.predict_proba(X_test))


@pytest.mark.parametrize("init, rate", [(None, 0.1), ("zero", 0.7)])
def test_gradient_boosting_matches_dense_recursion_and_predict(data, init, rate):
    X, X_test, y = data
    gbr = GradientBoostingRegressor(n_estimators=8, max_depth=2, learning_rate=rate, init=init, random_state=0)
    gbr.fit(X, y)
    n = len(X)
    S = np.zeros((n, n)) if init == "zero" else np.full((n, n), 1 / n)  # the mean is the smoother 11ᵀ/n
    S_test = np.zeros((len(X_test), n)) if init == "zero" else np.full((len(X_test), n), 1 / n)
    for tree in gbr.estimators_[:, 0]:
        residual = np.eye(n) - S
        S_test = S_test + rate * _dense_tree(tree, X, X_test) @ residual
        S = S + rate * _dense_tree(tree, X, X) @ residual
    smoother = GradientBoostingSmoother(gbr)
    _check_against_dense(smoother, X, X_test, S, S_test)
    np.testing.assert_allclose(smoother.predict(X_test, y), gbr.predict(X_test), rtol=0, atol=1e-12)
    np.testing.assert_allclose(smoother.predict(X, y), gbr.predict(X), rtol=0, atol=1e-12)


# --- Properties -------------------------------------------------------------------------------------------------


@given(st.floats(1e-3, 1e3), st.floats(1.01, 100.0), st.integers(0, 2**16))
def test_ridge_effective_parameters_are_nonnegative_and_decrease_in_the_ridge(ridge, factor, seed):
    rng = np.random.default_rng(seed)
    X, X_test = rng.normal(size=(12, 4)), rng.normal(size=(5, 4))
    small = effective_parameters_of(LeastSquaresSmoother(ridge=ridge), X, X_test)
    large = effective_parameters_of(LeastSquaresSmoother(ridge=ridge * factor), X, X_test)
    assert 0 <= large.p_train <= small.p_train and 0 <= large.p_test <= small.p_test
    assert 0 <= large.trace_train <= small.trace_train <= 4


# --- Scale: n = 10,000 without an n×n matrix -------------------------------------------------------------------


def test_cheap_smoothers_at_ten_thousand_training_points():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(10_000, 20))
    X[:, -1] = X[:, 0] + X[:, 1]  # rank 19
    X_test = rng.normal(size=(500, 20))
    ols = effective_parameters_of(LeastSquaresSmoother(), X, X_test)
    assert ols.p_train == pytest.approx(19) and ols.trace_train == pytest.approx(19)
    d = np.linalg.svd(X, compute_uv=False)
    ridge = effective_parameters_of(LeastSquaresSmoother(ridge=5e3), X, X_test)
    assert ridge.trace_train == pytest.approx(np.sum(d**2 / (d**2 + 5e3)), rel=1e-10)
    rff = effective_parameters_of(RandomFourierFeaturesSmoother(50, random_state=0), X, X_test)
    assert rff.p_train == pytest.approx(100)
    tree = DecisionTreeRegressor(max_leaf_nodes=64, random_state=0).fit(X, X[:, 0] - X[:, 2] ** 2)
    assert effective_parameters_of(tree, X, X_test).p_train == pytest.approx(64)
    # One boosting round of rate η on the mean: Ŝ = 11ᵀ/n + η(K − 11ᵀ/n), so tr = 1 + η(L − 1), p = 1 − η² + η²L.
    gbr = GradientBoostingRegressor(n_estimators=1, max_depth=3, learning_rate=0.5).fit(X, X[:, 0] - X[:, 2] ** 2)
    boosted = effective_parameters_of(gbr, X, X_test)
    assert boosted.trace_train == pytest.approx(1 + 0.5 * 7) and boosted.p_train == pytest.approx(1 - 0.25 + 0.25 * 8)


# --- Validation -------------------------------------------------------------------------------------------------


def test_errors_name_the_argument_expected_and_actual(data):
    X, X_test, y = data
    with pytest.raises(NotFittedError, match="fit"):
        LeastSquaresSmoother().weights(X)
    with pytest.raises(ValueError, match=r"'ridge' parameter of LeastSquaresSmoother must be .*Got -1"):
        LeastSquaresSmoother(ridge=-1)
    with pytest.raises(ValueError, match=r"rows of shape \(5,\).*Got \(3,\)"):
        LeastSquaresSmoother().fit(X).weights(X_test[:, :3])
    with pytest.raises(ValueError, match=r"shape \(40, 40\).*Got \(40, 2\)"):
        KernelRidgeSmoother(lambda A, B: np.ones((len(A), 2))).fit(X)
    with pytest.raises(ValueError, match="subsample=1.0"):
        GradientBoostingSmoother(GradientBoostingRegressor(n_estimators=2, subsample=0.5).fit(X, y))
    with pytest.raises(ValueError, match="mean-valued criterion"):
        TreeSmoother(DecisionTreeRegressor(criterion="absolute_error", max_depth=2).fit(X, y))
    with pytest.raises(ValueError, match="training inputs"):
        TreeSmoother(RandomForestRegressor(2).fit(X, y)).fit(X_test)
    with pytest.raises(TypeError, match="Got SVR"):
        from sklearn.svm import SVR

        smoother_for(SVR())
    with pytest.raises(ValueError, match="'y' argument must have n_train = 40 rows"):
        LeastSquaresSmoother().fit(X).predict(X_test, y[:3])
    assert isinstance(effective_parameters_of(LeastSquaresSmoother(), X, X_test), EffectiveParameters)


def test_kernel_ridge_with_the_empirical_ntk_equals_ridge_on_autograd_jacobian_features():
    from theory import empirical_ntk

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1)).double()
    X, X_test = torch.randn(12, 3, dtype=torch.float64), torch.randn(5, 3, dtype=torch.float64)

    def jacobian_features(Z):
        rows = []
        for z in torch.as_tensor(Z):
            grads = torch.autograd.grad(model(z[None]).sum(), list(model.parameters()))
            rows.append(torch.cat([g.reshape(-1) for g in grads]))
        return torch.stack(rows).numpy()

    ntk = KernelRidgeSmoother(lambda A, B: empirical_ntk(model, A, B, trace_outputs=True), ridge=0.1).fit(X)
    reference = LeastSquaresSmoother(ridge=0.1, features=jacobian_features).fit(X.numpy())
    np.testing.assert_allclose(ntk.weights(X_test), reference.weights(X_test.numpy()), atol=1e-10)
    np.testing.assert_allclose(ntk.squared_norms(), reference.squared_norms(), atol=1e-10)
    np.testing.assert_allclose(ntk.diagonal(), reference.diagonal(), atol=1e-10)


@pytest.mark.parametrize(
    "make",
    [
        lambda X, y: LeastSquaresSmoother(ridge=0.5, fit_intercept=True),
        lambda X, y: RandomFourierFeaturesSmoother(30, random_state=0),
        lambda X, y: KernelRidgeSmoother(lambda A, B: np.exp(-((A[:, None] - B[None]) ** 2).sum(-1)), ridge=0.1),
        lambda X, y: TreeSmoother(RandomForestRegressor(4, max_depth=3, random_state=0).fit(X, y)),
        lambda X, y: GradientBoostingSmoother(GradientBoostingRegressor(n_estimators=5, random_state=0).fit(X, y)),
    ],
)
def test_predict_with_several_outputs_is_weights_times_labels(data, make):
    X, X_test, y = data
    labels = np.column_stack([y, np.cos(y), -2 * y])
    smoother = make(X, y)
    smoother.block_size = 6
    smoother.fit(X)
    np.testing.assert_allclose(smoother.predict(X_test, labels), smoother.weights(X_test) @ labels, atol=1e-10)
    np.testing.assert_allclose(smoother.predict(X_test, y), smoother.weights(X_test) @ y, atol=1e-10)


def test_base_class_defaults_for_a_subclass_that_only_gives_weights(data):
    """A k-nearest-neighbour averager implements only _fit and _weights; the rest comes from Smoother."""
    from theory.smoothers import Smoother

    class NearestNeighbours(Smoother):
        block_size = 4

        def _fit(self, X):
            self.X_ = X

        def _weights(self, X):
            distances = ((X[:, None] - self.X_[None]) ** 2).sum(-1)
            nearest = np.argsort(distances, axis=1)[:, :3]
            w = np.zeros((len(X), len(self.X_)))
            np.put_along_axis(w, nearest, 1 / 3, axis=1)
            return w

    X, X_test, y = data
    knn = NearestNeighbours()
    S, S_test = knn.fit(X)._weights(X), knn._weights(X_test)
    result = _check_against_dense(knn, X, X_test, S, S_test)
    assert result.trace_train == pytest.approx(len(X) / 3)  # each point is its own nearest neighbour
    assert result.p_train == pytest.approx(len(X) / 3)
    np.testing.assert_allclose(knn.predict(X_test, y), S_test @ y)
