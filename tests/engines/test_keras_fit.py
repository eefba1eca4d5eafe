"""The fit engine: what `model.fit` is fed, and that it stops and resumes exactly.

`fit` once held seconds after its last epoch: its input pipeline was
autotuned, and dropping an autotuned iterator waits for the tuning thread.
These tests check the pipelines `fit` gets (bounded, one pass per epoch in
`epoch_permutation` order, no autotuning) and that a run cut in two equals
one run, with Keras's own evaluation as the oracle for the held-out figures.
"""

from __future__ import annotations

import numpy as np
import pytest

from beanstrain.data import generate
from beanstrain.devices import load_keras
from beanstrain.engines import TrainData
from beanstrain.engines.build import make_trainer
from beanstrain.engines.keras_fit import FitTrainer
from beanstrain.engines.order import epoch_permutation
from beanstrain.models import build_model
from beanstrain.objectives import encode_targets, make_accuracy_metric, make_loss, make_optimizer

keras = load_keras()

SEED, BATCH = 4, 7


def spiral_data(held_out: bool) -> TrainData:
    x, y = generate("spiral", 50, 0.0, seed=3)  # 50 samples, batch 7: seven full batches and one of 1
    targets = encode_targets(y, "binary", "binary_crossentropy", 2)
    if not held_out:
        return TrainData(x, targets)
    held_x, held_y = generate("spiral", 20, 0.0, seed=3, stream=1)
    return TrainData(x, targets, held_x, encode_targets(held_y, "binary", "binary_crossentropy", 2), "val")


def fit_trainer(data: TrainData, weights=None) -> FitTrainer:
    keras.utils.set_random_seed(0)
    model = build_model("deep8", (2,), "binary", 2)
    if weights is not None:
        model.set_weights(weights)
    return make_trainer("fit", model, make_loss("binary_crossentropy"), make_optimizer("adam", 0.01), data, BATCH,
                        SEED, "binary", make_accuracy_metric("binary", "binary_crossentropy"))


def test_fit_is_fed_one_bounded_untuned_pass_per_epoch(monkeypatch):
    data = spiral_data(held_out=True)
    trainer = fit_trainer(data)
    calls = []
    fit = trainer.model.fit

    def spy(dataset, **kwargs):
        calls.append((dataset, kwargs))
        return fit(dataset, **kwargs)

    monkeypatch.setattr(trainer.model, "fit", spy)
    trainer.run(start_epoch=2, epochs=5)

    (dataset, kwargs), = calls
    assert kwargs["initial_epoch"] == 2 and kwargs["epochs"] == 5 and kwargs["steps_per_epoch"] == 8
    # No autotuning, so no tuning thread for the iterator's destructor to wait for.
    assert dataset.options().autotune.enabled is False
    assert kwargs["validation_data"].options().autotune.enabled is False

    # Exactly epochs 2, 3 and 4, each a whole pass in its own order, then the end.
    batches = [(x.numpy(), y.numpy()) for x, y in dataset]
    assert [len(x) for x, _ in batches] == [7] * 7 + [1] + [7] * 7 + [1] + [7] * 7 + [1]
    for index, epoch in enumerate(range(2, 5)):
        order = epoch_permutation(SEED, epoch, 50)
        epoch_x = np.concatenate([x for x, _ in batches[index * 8:(index + 1) * 8]])
        epoch_y = np.concatenate([y for _, y in batches[index * 8:(index + 1) * 8]])
        np.testing.assert_array_equal(epoch_x, data.x[order])
        np.testing.assert_array_equal(epoch_y, data.y[order])

    held_x, held_y = zip(*[(x.numpy(), y.numpy()) for x, y in kwargs["validation_data"]])
    np.testing.assert_array_equal(np.concatenate(held_x), data.held_out_x)
    np.testing.assert_array_equal(np.concatenate(held_y), data.held_out_y)


def test_nothing_to_train_calls_no_fit(monkeypatch):
    trainer = fit_trainer(spiral_data(held_out=False))
    monkeypatch.setattr(trainer.model, "fit", lambda *args, **kwargs: pytest.fail("fit was called"))
    assert trainer.run(start_epoch=3, epochs=3).epochs_done == 0


def test_a_run_cut_in_two_equals_one_run_and_reports_keras_evaluation():
    data = spiral_data(held_out=True)
    whole = fit_trainer(data)
    start = whole.model.get_weights()
    history = whole.run(0, 6)

    first_half = fit_trainer(data, start)
    split_history = first_half.run(0, 3)
    # The second half continues in a fresh trainer, as a resumed run does, with the weights and
    # optimizer state carried over.
    second_half = fit_trainer(data, first_half.model.get_weights())
    second_half.model.optimizer.build(second_half.model.trainable_variables)
    for mine, theirs in zip(second_half.model.optimizer.variables, first_half.model.optimizer.variables, strict=True):
        mine.assign(theirs)
    second_half.run(3, 6, history=split_history)

    for mine, theirs in zip(whole.model.get_weights(), second_half.model.get_weights(), strict=True):
        np.testing.assert_allclose(mine, theirs, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(np.array(history.rows), np.array(split_history.rows), rtol=1e-5, atol=1e-7)
    assert history.columns == ["loss", "accuracy", "val_loss", "val_accuracy"] and history.epochs_done == 6
    loss, accuracy = whole.model.evaluate(data.held_out_x, data.held_out_y, verbose=0)
    np.testing.assert_allclose(history.rows[-1][2:], [loss, accuracy], rtol=1e-5)


def test_should_stop_ends_fit_after_the_current_epoch():
    trainer = fit_trainer(spiral_data(held_out=False))
    seen = []
    history = trainer.run(0, 50, on_chunk=lambda epoch, history: seen.append(epoch),
                          should_stop=lambda: len(seen) >= 2)
    assert seen == [1, 2] and history.epochs_done == 2
