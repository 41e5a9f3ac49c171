"""Data sets: exact regeneration of published MNIST-1D, seeded label noise, the .npz cache."""

import mnist1d.data
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from empirics.data import DATASETS, Dataset, add_label_noise, load_dataset, resolve_dataset_args


def test_mnist1d_matches_make_dataset():
    # reference: mnist1d.data.make_dataset with num_samples = n_train + n_test and train_split = n_train / that
    # (the defaults 4000/1000 are then the published data; a 400/100 split keeps the test cheap)
    args = mnist1d.data.get_dataset_args()
    args.num_samples, args.train_split = 500, 0.8
    ref = mnist1d.data.make_dataset(args)
    ds = load_dataset("mnist1d", n_train=400, n_test=100)
    np.testing.assert_array_equal(ds.x_train, ref["x"])
    np.testing.assert_array_equal(ds.y_train, ref["y"])
    np.testing.assert_array_equal(ds.x_test, ref["x_test"])
    np.testing.assert_array_equal(ds.y_test, ref["y_test"])
    assert ds.num_classes == 10 and ds.input_dim == 40


def test_mnist1d_leaves_global_rng_untouched():
    state = np.random.get_state()[1].copy()
    load_dataset("mnist1d", n_train=20, n_test=10)
    np.testing.assert_array_equal(np.random.get_state()[1], state)


def test_binary_variant_relabels_and_sizes():
    ds = load_dataset("mnist1d", n_train=60, n_test=40, classes=(7, 3))
    full = load_dataset("mnist1d", n_train=400, n_test=100)  # the same pool of 10·ceil(100/2) examples
    assert ds.x_train.shape == (60, 40) and ds.x_test.shape == (40, 40)
    assert set(np.unique(ds.y_train)) == {0, 1} and ds.num_classes == 2
    # class 7 -> 0 and 3 -> 1: every binary train example equals a full-data example of the same digit
    index = {row.tobytes(): label for row, label in zip(full.x_train, full.y_train, strict=True)}
    matched = [
        (index[row.tobytes()], y) for row, y in zip(ds.x_train, ds.y_train, strict=True) if row.tobytes() in index
    ]
    assert len(matched) == 60
    assert all((digit, y) in {(7, 0), (3, 1)} for digit, y in matched)


@given(
    n=st.integers(1, 200),
    fraction=st.floats(0, 1, allow_subnormal=False),
    k=st.integers(2, 12),
    seed=st.integers(0, 2**31),
)
def test_label_noise_flips_exactly_a_fraction_to_other_classes(n, fraction, k, seed):
    y = np.random.default_rng(seed).integers(0, k, size=n)
    noisy = add_label_noise(y, fraction, k, seed=seed)
    assert (noisy != y).sum() == round(fraction * n)
    assert noisy.min() >= 0 and noisy.max() < k
    np.testing.assert_array_equal(noisy, add_label_noise(y, fraction, k, seed=seed))


def test_label_noise_targets_are_uniform_over_other_classes():
    y = np.zeros(30000, dtype=int)
    counts = np.bincount(add_label_noise(y, 1.0, 4, seed=0), minlength=4)
    assert counts[0] == 0
    np.testing.assert_allclose(counts[1:] / 30000, 1 / 3, atol=0.01)


def test_mnist1d_noise_only_on_train_and_kept_as_clean_copy():
    ds = load_dataset("mnist1d", n_train=400, n_test=100, label_noise=0.2, noise_seed=3)
    clean = load_dataset("mnist1d", n_train=400, n_test=100)
    np.testing.assert_array_equal(ds.y_train_clean, clean.y_train)
    np.testing.assert_array_equal(ds.y_test, clean.y_test)
    assert (ds.y_train != clean.y_train).mean() == pytest.approx(0.2)


def test_cache_round_trips_by_argument_hash(tmp_path):
    a = load_dataset("mnist1d", cache_dir=tmp_path, n_train=50, n_test=20, label_noise=0.1)
    files = list(tmp_path.glob("mnist1d-*.npz"))
    assert len(files) == 1
    with np.load(files[0], allow_pickle=False) as f:  # no pickled objects inside
        assert set(f.files) >= {"meta", "x_train", "y_train"}
    b = load_dataset("mnist1d", cache_dir=tmp_path, n_train=50, n_test=20, label_noise=0.1)
    np.testing.assert_array_equal(a.x_train, b.x_train)
    np.testing.assert_array_equal(a.y_train, b.y_train)
    np.testing.assert_array_equal(a.y_train_clean, b.y_train_clean)
    assert (b.name, b.task, b.num_classes) == (a.name, a.task, a.num_classes)
    # the cache is read, not regenerated: a tampered file is what comes back
    with np.load(files[0], allow_pickle=False) as f:
        arrays = dict(f)
    arrays["x_train"] = np.zeros_like(arrays["x_train"])
    np.savez(files[0], **arrays)
    assert not load_dataset("mnist1d", cache_dir=tmp_path, n_train=50, n_test=20, label_noise=0.1).x_train.any()
    load_dataset("mnist1d", cache_dir=tmp_path, n_train=50, n_test=20, label_noise=0.2)
    assert len(list(tmp_path.glob("mnist1d-*.npz"))) == 2


def test_digits_is_centred_and_split_without_overlap():
    ds = load_dataset("digits", n_train=500, n_test=300)
    np.testing.assert_allclose(ds.x_train.mean(axis=0), 0, atol=1e-12)
    assert ds.x_test.shape == (300, 64)
    assert not {r.tobytes() for r in ds.x_train} & {r.tobytes() for r in ds.x_test}


def test_tensors_and_one_hot():
    ds = load_dataset("digits", n_train=10, n_test=5)
    x, y, _, _ = ds.tensors()
    assert x.shape == (10, 64) and str(y.dtype) == "torch.int64"
    np.testing.assert_array_equal(ds.one_hot().argmax(1), ds.y_train)
    assert isinstance(ds, Dataset)


@pytest.mark.parametrize(
    ("name", "kwargs", "match"),
    [
        ("nope", {}, "'name' parameter of load_dataset"),
        ("mnist1d", {"width": 3}, r"Unknown argument\(s\) \['width'\]"),
        ("mnist1d", {"n_train": 0}, "'n_train' parameter of mnist1d must be a positive int"),
        ("mnist1d", {"label_noise": 1.5}, r"'label_noise' parameter of mnist1d must be a real number in \[0.0, 1.0\]"),
        ("mnist1d", {"classes": (1,)}, "'classes' parameter of mnist1d"),
        ("digits", {"n_train": 1700, "n_test": 200}, "too many"),
    ],
)
def test_bad_arguments_are_named(name, kwargs, match):
    with pytest.raises(ValueError, match=match):
        load_dataset(name, **kwargs)


def test_registry_lists_builtins_and_resolves_defaults():
    args = resolve_dataset_args("mnist1d", n_train=10)
    assert args["n_test"] == 1000 and args["label_noise"] == 0.0
    assert {"mnist1d", "digits"} <= set(DATASETS)
