"""Every generated dataset against its formula: shapes, dtypes, label balance, seeds."""

from __future__ import annotations

import numpy as np
import pytest

from beanstrain.data import generate, list_datasets, load_dataset
from beanstrain.tasks import MULTICLASS, REGRESSION

TOY_DATASETS = list_datasets("toy")

# The share of class 1 each formula implies, worked out independently of the
# generators: by integrating the formula over a fine grid of its inputs.
GRID = np.linspace(0, 1, 2001)[:, None]
NOISE_DRAW = np.linspace(0, 1, 2001)[None, :]


def _grid2(high):
    axis = (np.arange(2000) + 0.5) / 2000 * high
    return np.meshgrid(axis, axis)


def _beans0_share():
    return np.mean(0.7 * GRID + (0.5 - NOISE_DRAW) / 50 + 0.5 > 0.8)


def _beans3_share():
    score = 0.7 * (2 * GRID) + (0.5 - NOISE_DRAW) / 50 + 0.5
    return np.mean((score > 0.8) & (score < 1.4))


def _beans7_share():
    x0, x1 = _grid2(2.0)
    return np.mean(x0 - 0.5 * x1 - 0.1 > 0)


def _beans4_share():
    x0, x1 = _grid2(2.0)
    return np.mean((x0 - 1) ** 2 + (x1 - 0.3) ** 2 < 0.5)


EXPECTED_CLASS1_SHARE = {
    "beans0": _beans0_share(),
    "beans3": _beans3_share(),
    "beans7": _beans7_share(),
    "beans4": _beans4_share(),
    "spiral": 0.5,  # n//2 points per spiral
    "circle": 0.5,  # half the points inside 0.5R, half in the ring, no label noise by default
    "xor": 0.5,  # two of four quadrants
    "gauss": 0.5,  # half the points per cloud
    "gender": 0.5,  # the first half are class 1
}
FEATURES = {"beans1": 1, "beans2": 1, "beans0": 1, "beans3": 1, "beans7": 2, "beans4": 2, "spiral": 2,
            "circle": 2, "xor": 2, "gauss": 2, "gender": 3}


def test_every_dataset_has_an_expectation():
    # A new generator must say what its formula implies before it is tested.
    assert set(TOY_DATASETS) == set(FEATURES)
    classified = {name for name, entry in TOY_DATASETS.items() if entry.task != REGRESSION}
    assert classified == set(EXPECTED_CLASS1_SHARE)


@pytest.mark.parametrize("name", sorted(TOY_DATASETS))
def test_shape_and_dtype(name):
    x, y = generate(name, samples=100, noise=0.0, seed=0)
    assert x.dtype == np.float32 and y.dtype == np.float32
    assert x.shape == (100, FEATURES[name])
    if TOY_DATASETS[name].task == MULTICLASS:
        assert y.shape == (100, 2)
        np.testing.assert_array_equal(y.sum(axis=1), 1.0)
    else:
        assert y.shape == (100,)
    assert np.all(np.isfinite(x)) and np.all(np.isfinite(y))


# How far the grid integrals above may be from the exact shares.
GRID_ERROR = 1e-3


@pytest.mark.parametrize("samples", [1_000, 200_000])
@pytest.mark.parametrize("name", sorted(EXPECTED_CLASS1_SHARE))
def test_label_balance_matches_formula(name, samples):
    """Within five standard errors of a share of `samples` draws: at 200,000 points that is about 0.005,
    so a formula's threshold, radius or slope moved by a few hundredths fails."""
    _, y = generate(name, samples=samples, noise=0.0, seed=3)
    labels = y.argmax(axis=1) if y.ndim == 2 else y
    assert set(np.unique(labels)) == {0.0, 1.0}
    expected = EXPECTED_CLASS1_SHARE[name]
    assert abs(labels.mean() - expected) < 5 * np.sqrt(expected * (1 - expected) / samples) + GRID_ERROR


@pytest.mark.parametrize("name", sorted(TOY_DATASETS))
def test_same_seed_same_data_other_seed_other_data(name):
    first, again, other = (generate(name, 100, 0.0, seed) for seed in (5, 5, 6))
    np.testing.assert_array_equal(first[0], again[0])
    np.testing.assert_array_equal(first[1], again[1])
    assert not np.array_equal(first[0], other[0])


@pytest.mark.parametrize("name", sorted(TOY_DATASETS))
def test_test_split_is_a_fresh_draw(name):
    data = load_dataset(name, samples=60, noise=0.0, seed=1)
    assert data.x_test.shape == data.x_train.shape
    shared = {tuple(row) for row in data.x_train} & {tuple(row) for row in data.x_test}
    assert not shared


def test_one_d_inputs_are_sorted():
    for name in ("beans0", "beans1", "beans2", "beans3"):
        x, _ = generate(name, 100, 0.0, 0)
        assert np.all(np.diff(x[:, 0]) >= 0)


def test_regression_formulas():
    x, y = generate("beans1", 5000, 0.0, 0)
    residual = y - 1.2 * x[:, 0]
    assert residual.min() >= 0 and residual.max() <= 0.1 + 1e-6
    x, y = generate("beans2", 5000, 0.0, 0)
    residual = y - 0.7 * x[:, 0] - 0.5
    assert residual.min() >= -0.1 - 1e-6 and residual.max() <= 0.1 + 1e-6


def test_spiral_radius_and_classes():
    x, y = generate("spiral", 200, 0.0, 0)
    radius = np.linalg.norm(x, axis=1)
    assert radius.max() < 5.0 + 0.15
    assert y[:100].sum() == 100 and y[100:].sum() == 0


def test_circle_is_shifted_and_labelled_by_radius():
    x, y = generate("circle", 1000, 0.0, 0)
    radius = np.linalg.norm(x - 1.0, axis=1)
    np.testing.assert_array_equal(y, (radius < 0.5).astype(np.float32))
    assert not np.any((radius > 0.5) & (radius < 0.7))


def test_label_noise_flips_labels():
    _, clean = generate("beans4", 5000, 0.0, 0)
    _, noisy = generate("beans4", 5000, 0.2, 0)
    assert 0.1 < np.mean(clean != noisy) < 0.3


def test_gender_halves():
    x, y = generate("gender", 20_000, 0.0, 0)
    males, females = x[:10_000], x[10_000:]
    np.testing.assert_allclose(males.mean(axis=0) - females.mean(axis=0), [1, 1, -1], atol=0.05)
    assert y[:10_000, 1].all() and y[10_000:, 0].all()


def test_default_sample_counts():
    assert load_dataset("beans4").x_train.shape[0] == 100
    assert load_dataset("gender").x_train.shape[0] == 1000
