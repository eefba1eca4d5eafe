"""Losses and accuracy: the default loss of each task, and `figures()` against Keras's own `model.evaluate`.

`figures()` gives every number `metrics.json`, the fit summary and `eval`
print, so it is checked for every loss on every task that loss fits.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from beanstrain.backend import load_keras
from beanstrain.datasets import dataset_task, list_datasets
from beanstrain.evaluation import figures
from beanstrain.models import build_model
from beanstrain.objectives import (LOSSES, accuracy_kind, encode_targets, make_accuracy_metric, make_loss)
from beanstrain.recipes import Recipe, recipe_loss

keras = load_keras()

# README: "The loss defaults to the task's: squared error for regression, binary cross-entropy
# for two classes, categorical cross-entropy for more."
TASK_LOSS = {"regression": ("mse", "MeanSquaredError"),
             "binary": ("binary_crossentropy", "BinaryCrossentropy"),
             "multiclass": ("categorical_crossentropy", "CategoricalCrossentropy")}


@pytest.mark.parametrize("dataset", sorted(list_datasets()))
def test_the_loss_defaults_to_the_tasks(dataset):
    recipe = Recipe(name="any", dataset=dataset, model="neuron")
    assert recipe_loss(recipe) == TASK_LOSS[dataset_task(dataset)][0]


def test_a_pair_without_a_recipe_trains_on_its_tasks_loss(fit_json, monkeypatch):
    """The resolved default is what the run records and what the saved model was compiled with
    (xor + hidden2 has no recipe, so nothing but the default names the loss)."""
    from beanstrain import pipeline

    monkeypatch.setattr(pipeline, "draw_pictures", lambda *args: [])  # not under test here
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

    got = figures(y, model(x).numpy(), loss, accuracy_kind(task, loss))
    assert set(got) == set(expected) == ({"loss"} if task == "regression" else {"loss", "accuracy"})
    assert got["loss"] == pytest.approx(expected["loss"], rel=1e-5)
    if "accuracy" in got:
        assert got["accuracy"] == pytest.approx(expected["accuracy"], abs=1e-7)
        assert 0.0 < got["accuracy"] < 1.0  # neither all right nor all wrong, so a miscount shows
