"""The compiled loop against Keras's own `fit` and `evaluate`, and real training outcomes."""

from __future__ import annotations

import numpy as np
import pytest

from beanstrain.data import generate
from beanstrain.engines import TrainData, chunks
from beanstrain.engines.compiled import CompiledTrainer
from beanstrain.engines.order import epoch_permutation
from beanstrain.objectives import encode_targets, make_accuracy_metric, make_loss, make_optimizer


@pytest.mark.parametrize(
    "dataset, model, loss, optimizer, rate, batch",
    [
        ("beans4", "hidden2", "mse", "sgd", 0.05, 10),  # the course's recipe
        ("spiral", "deep8", "binary_crossentropy", "adam", 0.01, 7),  # partial last batch, optimizer state
        ("gender", "softmax2", "categorical_crossentropy", "rmsprop", None, 16),
    ],
)
def test_compiled_loop_matches_keras_fit(twins, dataset, model, loss, optimizer, rate, batch):
    """Same initial weights, same batch order: the weights, losses and accuracies agree after several epochs."""
    x, y = generate(dataset, 60, 0.0, seed=1)
    task = "multiclass" if y.ndim == 2 else "binary"
    targets = encode_targets(y, task, loss, 2)
    compiled_model, fit_model = twins(model, x.shape[1:], task, 2)
    trainer = CompiledTrainer(compiled_model, make_loss(loss), make_optimizer(optimizer, rate),
                              TrainData(x, targets), batch_size=batch, seed=11,
                              accuracy="binary" if task == "binary" else "categorical")
    history = trainer.run(0, 6)

    fit_model.compile(optimizer=make_optimizer(optimizer, rate), loss=make_loss(loss),
                      metrics=[make_accuracy_metric(task, loss)])
    fit_losses, fit_accuracies = [], []
    for epoch in range(6):
        order = epoch_permutation(11, epoch, len(x))
        logs = fit_model.fit(x[order], targets[order], batch_size=batch, epochs=1, shuffle=False, verbose=0)
        fit_losses.append(logs.history["loss"][0])
        fit_accuracies.append(logs.history["accuracy"][0])

    for compiled_weight, fit_weight in zip(compiled_model.get_weights(), fit_model.get_weights()):
        np.testing.assert_allclose(compiled_weight, fit_weight, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(history.column("loss"), fit_losses, rtol=1e-4)
    # Counted over every sample of the epoch, the last partial batch's included.
    np.testing.assert_allclose(history.column("accuracy"), fit_accuracies, atol=1e-6)
    assert not np.allclose(compiled_model.get_weights()[0], twins(model, x.shape[1:], task, 2)[0].get_weights()[0])


def test_history_has_one_finite_row_per_epoch(twins):
    x, y = generate("beans4", 50, 0.0, seed=0)
    xt, yt = generate("beans4", 50, 0.0, seed=0, stream=1)
    model, _ = twins("hidden2", (2,), "binary", 2)
    data = TrainData(x, encode_targets(y, "binary", "mse", 2), xt, encode_targets(yt, "binary", "mse", 2))
    history = CompiledTrainer(model, make_loss("mse"), make_optimizer("sgd", 0.05), data, 10, 0, "binary").run(0, 37)
    assert history.epochs_done == 37
    assert history.columns == ["loss", "accuracy", "test_loss", "test_accuracy"]
    values = np.array(history.rows)
    assert values.shape == (37, 4) and np.all(np.isfinite(values))
    # The held-out figures are Keras's own evaluation of the final weights.
    model.compile(loss=make_loss("mse"), metrics=[make_accuracy_metric("binary", "mse")])
    loss, accuracy = model.evaluate(xt, data.held_out_y, verbose=0)
    np.testing.assert_allclose(values[-1, 2:], [loss, accuracy], rtol=1e-5)


def test_divergence_in_a_later_chunk_stops_at_that_epoch(twins, monkeypatch):
    """SGD just past its stable rate: the loss grows for a few dozen epochs, then overflows inside the
    fourth chunk (epochs 13 to 112); the loop stops at that epoch, not at the chunk's end."""
    monkeypatch.setattr(chunks, "CHUNK_SECONDS", 1e9)  # chunks of 1, 1, 10, 100... whatever the machine's pace
    x, y = generate("beans1", 100, 0.0, seed=0)
    model, _ = twins("neuron", (1,), "regression", 2)
    trainer = CompiledTrainer(model, make_loss("mse"), make_optimizer("sgd", 0.8),
                              TrainData(x, encode_targets(y, "regression", "mse", 2)), 10, 0, None)
    chunk_ends = []
    history = trainer.run(0, 500, on_chunk=lambda epoch, history: chunk_ends.append(epoch))
    diverged = history.diverged_at()
    assert chunk_ends[:3] == [1, 2, 12] and 12 + 1 < diverged < 112
    assert history.epochs_done == diverged and chunk_ends[-1] == diverged
    losses = history.column("loss")
    assert np.all(np.isfinite(losses[:-1])) and losses[diverged - 2] > 100 * losses[0]


def test_compiled_loop_gives_the_same_run_with_and_without_xla(twins):
    x, y = generate("spiral", 60, 0.0, seed=2)
    xt, yt = generate("spiral", 60, 0.0, seed=2, stream=1)
    data = TrainData(x, encode_targets(y, "binary", "mse", 2), xt, encode_targets(yt, "binary", "mse", 2))
    histories, weights = [], []
    for jit_compile in (True, False):
        model, _ = twins("deep8", (2,), "binary", 2)
        trainer = CompiledTrainer(model, make_loss("mse"), make_optimizer("sgd", 0.05), data, 7, 0, "binary",
                                  jit_compile=jit_compile)
        histories.append(np.array(trainer.run(0, 12).rows))
        weights.append(model.get_weights())
    np.testing.assert_allclose(histories[0], histories[1], rtol=1e-4, atol=1e-6)
    for with_xla, without_xla in zip(*weights):
        np.testing.assert_allclose(with_xla, without_xla, rtol=1e-4, atol=1e-5)


def whole_set_data(samples=96):
    """mnist-tape in small: 784-vectors of [0, 1] pixels, digit labels for the sparse cross-entropy."""
    rng = np.random.default_rng(4)
    return rng.random((samples, 784), dtype=np.float32), rng.integers(0, 10, samples).astype(np.float32)


def test_a_whole_set_batch_equals_the_courses_gradient_tape_loop_and_keras_fit(twins):
    """One step per epoch over the whole set: the weights and losses of the course's hand-written
    `tf.GradientTape` loop, and of Keras `fit` with one batch an epoch."""
    from beanstrain.devices import load_tensorflow

    tf = load_tensorflow()
    x, y = whole_set_data()
    loss_name, steps = "sparse_categorical_crossentropy", 6
    compiled_model, tape_model = twins("mlp-sigmoid", (784,), "multiclass", 10)
    fit_model, _ = twins("mlp-sigmoid", (784,), "multiclass", 10)
    trainer = CompiledTrainer(compiled_model, make_loss(loss_name), make_optimizer("adam", None), TrainData(x, y),
                              batch_size=len(x), seed=0, accuracy="sparse")
    assert trainer.feeds_whole_set()
    history = trainer.run(0, steps)

    loss_fn, optimizer, tape_losses = make_loss(loss_name), make_optimizer("adam", None), []
    for _ in range(steps):
        with tf.GradientTape() as tape:
            loss = loss_fn(y, tape_model(x, training=True))
        gradients = tape.gradient(loss, tape_model.trainable_variables)
        optimizer.apply_gradients(zip(gradients, tape_model.trainable_variables))
        tape_losses.append(float(loss))

    fit_model.compile(optimizer=make_optimizer("adam", None), loss=make_loss(loss_name),
                      metrics=[make_accuracy_metric("multiclass", loss_name)])
    logs = fit_model.fit(x, y, batch_size=len(x), epochs=steps, shuffle=False, verbose=0).history

    np.testing.assert_allclose(history.column("loss"), tape_losses, rtol=1e-5)
    np.testing.assert_allclose(history.column("loss"), logs["loss"], rtol=1e-5)
    np.testing.assert_allclose(history.column("accuracy"), logs["accuracy"], atol=1e-6)
    for compiled_weight, tape_weight, fit_weight in zip(*(model.get_weights()
                                                          for model in (compiled_model, tape_model, fit_model))):
        np.testing.assert_allclose(compiled_weight, tape_weight, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(compiled_weight, fit_weight, rtol=1e-4, atol=1e-6)
    assert tape_losses[-1] < tape_losses[0]  # Adam moved the weights


def gather_ops(trainer) -> int:
    """The gathers in the compiled loop's graph, the while loops' bodies included."""
    from beanstrain.devices import load_tensorflow

    tf = load_tensorflow()
    graph = trainer._run_chunk.get_concrete_function(tf.constant(0), tf.constant(1), 1).graph.as_graph_def()
    nodes = [*graph.node, *(node for function in graph.library.function for node in function.node_def)]
    return sum(node.op in ("GatherV2", "ResourceGather") for node in nodes)


def test_a_whole_set_batch_is_fed_without_gathering_a_copy(twins):
    """A batch smaller than the set gathers each step's samples from the set; a whole-set batch
    takes the set as it is (measured: benchmarks/full_batch.py)."""
    x, y = whole_set_data(40)
    counts = {}
    for batch in (len(x), len(x) // 2):
        model, _ = twins("mlp-sigmoid", (784,), "multiclass", 10)
        trainer = CompiledTrainer(model, make_loss("sparse_categorical_crossentropy"), make_optimizer("adam", None),
                                  TrainData(x, y), batch_size=batch, seed=0, accuracy="sparse")
        counts[batch] = gather_ops(trainer)
    assert counts == {len(x): 0, len(x) // 2: 2}  # x and y, per step
