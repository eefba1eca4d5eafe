"""Losses, optimizers, accuracy and targets: checked against the task, and against Keras's own metrics.

`compute_metrics()` gives every number `metrics.json`, the fit summary and `eval`
print, so it is checked against `model.evaluate` for every loss on every task that loss fits.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from beanstrain.data import get_dataset, list_datasets
from beanstrain.devices import load_keras
from beanstrain.errors import UsageError
from beanstrain.evaluation import compute_metrics
from beanstrain.models import build_model
from beanstrain.objectives import (
    DEFAULT_LOSS,
    LOSSES,
    OPTIMIZERS,
    accuracy_kind,
    canonical_loss,
    check_loss,
    count_correct,
    encode_targets,
    make_accuracy_metric,
    make_loss,
    make_optimizer,
)
from beanstrain.recipes import Recipe, recipe_loss
from beanstrain.tasks import BINARY, MULTICLASS, REGRESSION, TASKS

keras = load_keras()


@pytest.mark.parametrize("task", TASKS)
def test_every_task_has_a_default_loss_that_fits_it(task):
    check_loss(DEFAULT_LOSS[task], task)


@pytest.mark.parametrize("loss, task", [("binary_crossentropy", REGRESSION), ("categorical_crossentropy", BINARY),
                                        ("mae", MULTICLASS)])
def test_a_loss_that_does_not_fit_the_task_is_refused(loss, task):
    with pytest.raises(UsageError, match=f"does not fit a {task} dataset"):
        check_loss(loss, task)


def test_loss_aliases_and_unknown_names():
    assert canonical_loss("mean_squared_error") == "mse"
    with pytest.raises(UsageError, match="unknown loss 'mse2'; did you mean 'mse'"):
        canonical_loss("mse2")


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_every_loss_is_a_keras_loss(name):
    keras_name = LOSSES[name][0]
    assert type(make_loss(name)).__name__ == keras_name


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_every_optimizer_keeps_keras_defaults_unless_given_a_rate(name):
    import keras

    default = getattr(keras.optimizers, OPTIMIZERS[name])()
    assert float(make_optimizer(name, None).learning_rate) == float(default.learning_rate)
    assert float(make_optimizer(name, 0.25).learning_rate) == 0.25


@pytest.mark.parametrize("task, loss, y", [
    (BINARY, "mse", np.array([0.0, 1.0, 1.0, 0.0, 1.0])),
    (MULTICLASS, "categorical_crossentropy", np.array([2, 0, 1, 1, 2])),
    (MULTICLASS, "sparse_categorical_crossentropy", np.array([2, 0, 1, 1, 2])),
])
def test_count_correct_counts_what_keras_metrics_count(task, loss, y):
    """The oracle: Keras's own accuracy metric on the same predictions, including values on the 0.5 edge."""
    rng = np.random.default_rng(3)
    targets = encode_targets(y, task, loss, 3)
    predictions = (rng.random((5, 1)) if task == BINARY else rng.dirichlet(np.ones(3), 5)).astype(np.float32)
    if task == BINARY:
        predictions[0, 0] = 0.5
    metric = make_accuracy_metric(task, loss)
    metric.update_state(targets, predictions)
    kind = accuracy_kind(task, loss)
    assert count_correct(kind, targets, predictions) == round(float(metric.result()) * len(y))


def test_targets_take_the_form_the_loss_expects():
    labels = np.array([2, 0, 1])
    np.testing.assert_array_equal(encode_targets(labels, MULTICLASS, "categorical_crossentropy", 3), np.eye(3)[labels])
    np.testing.assert_array_equal(encode_targets(labels, MULTICLASS, "sparse_categorical_crossentropy", 3), labels)
    one_hot = np.eye(2)[[1, 0]]
    np.testing.assert_array_equal(encode_targets(one_hot, MULTICLASS, "sparse_categorical_crossentropy", 2), [1, 0])
    assert encode_targets(np.array([0.0, 1.0]), BINARY, "mse", 2).shape == (2, 1)
    assert encode_targets(labels, MULTICLASS, "mse", 3).dtype == np.float32
    assert accuracy_kind(REGRESSION, "mse") is None and make_accuracy_metric(REGRESSION, "mse") is None

# docs/fit-and-eval.md: "The loss defaults to the task's: squared error for regression, binary cross-entropy
# for two classes, categorical cross-entropy for more."
TASK_LOSS = {"regression": ("mse", "MeanSquaredError"),
             "binary": ("binary_crossentropy", "BinaryCrossentropy"),
             "multiclass": ("categorical_crossentropy", "CategoricalCrossentropy")}


@pytest.mark.parametrize("dataset", sorted(list_datasets()))
def test_the_loss_defaults_to_the_tasks(dataset):
    recipe = Recipe(name="any", dataset=dataset, model="neuron")
    assert recipe_loss(recipe) == TASK_LOSS[get_dataset(dataset).task][0]


def test_a_pair_without_a_recipe_trains_on_its_tasks_loss(fit_json, monkeypatch):
    """The resolved default is what the run records and what the saved model was compiled with
    (xor + hidden2 has no recipe, so nothing but the default names the loss)."""
    from beanstrain import outputs

    monkeypatch.setattr(outputs, "draw_pictures", lambda *args: [])  # not under test here
    run_dir = Path(fit_json("--dataset", "xor", "--model", "hidden2", "--epochs", "1", "--samples", "40")["run_dir"])
    name, keras_class = TASK_LOSS["binary"]
    assert json.loads((run_dir / "config.json").read_text())["loss"] == name
    assert type(keras.saving.load_model(run_dir / "model.keras").loss).__name__ == keras_class


def _targets(task, samples, classes, rng):
    if task == "regression":
        return rng.normal(size=samples).astype(np.float32)
    return rng.integers(0, 2 if task == "binary" else classes, samples)


LOSS_TASKS = [(loss, task) for loss, (_, tasks) in LOSSES.items() for task in tasks]


@pytest.mark.parametrize("loss, task", LOSS_TASKS, ids=[f"{loss}-{task}" for loss, task in LOSS_TASKS])
def test_figures_equal_keras_evaluate(loss, task):
    """53 samples evaluated in batches of 8: Keras weighs the last, partial batch by its size."""
    rng = np.random.default_rng(0)
    samples, classes = 53, 3
    x = rng.normal(size=(samples, 4)).astype(np.float32)
    y = encode_targets(_targets(task, samples, classes, rng), task, loss, classes)
    keras.utils.set_random_seed(0)
    model = build_model("deep8", (4,), task, classes)
    metric = make_accuracy_metric(task, loss)
    model.compile(loss=make_loss(loss), metrics=[metric] if metric else [])
    expected = model.evaluate(x, y, batch_size=8, verbose=0, return_dict=True)

    got = compute_metrics(y, model(x).numpy(), loss, accuracy_kind(task, loss))
    assert set(got) == set(expected) == ({"loss"} if task == "regression" else {"loss", "accuracy"})
    assert got["loss"] == pytest.approx(expected["loss"], rel=1e-5)
    if "accuracy" in got:
        assert got["accuracy"] == pytest.approx(expected["accuracy"], abs=1e-7)
        assert 0.0 < got["accuracy"] < 1.0  # neither all right nor all wrong, so a miscount shows
