"""Losses, optimizers, accuracy and targets: checked against the task, and against Keras's own metrics."""

from __future__ import annotations

import numpy as np
import pytest

from beanstrain.errors import UsageError
from beanstrain.objectives import (DEFAULT_LOSS, LOSSES, OPTIMIZERS, accuracy_kind, canonical_loss, check_loss,
                                   count_correct, encode_targets, make_accuracy_metric, make_loss, make_optimizer)
from beanstrain.tasks import BINARY, MULTICLASS, REGRESSION, TASKS


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
