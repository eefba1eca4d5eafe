"""The two training paths: one compiled TensorFlow loop for the whole run, and Keras `fit`.

Both train the same Keras model with the same loss and optimizer objects and
report the same per-epoch figures (the batch-size-weighted mean training loss
and accuracy seen during the epoch, as `fit` reports them, then loss and
accuracy on the held-out set at the epoch's end):

    >>> trainer = make_trainer("compiled", model, loss, optimizer, data, batch_size=10, seed=0)
    >>> history = trainer.run(start_epoch=0, epochs=5000, on_chunk=progress.update)

The compiled path runs every epoch and every step inside one `tf.function`
(XLA-compiled), called once per chunk of epochs so progress can be shown and
an interrupt honoured between chunks.  Each epoch shuffles the training set
with a permutation drawn from `(seed, epoch)` alone, so a run cut into
chunks, or stopped and resumed, takes exactly the same steps.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from beanstrain.backend import load_keras, load_tensorflow

# This module is imported only by commands that train, so TensorFlow is
# imported once here rather than inside the traced functions.
tf = load_tensorflow()
keras = load_keras()

ENGINES = ("compiled", "fit")

# A chunk of epochs should take about this long, so progress moves and an
# interrupt is honoured quickly, while the per-call overhead stays negligible.
CHUNK_SECONDS = 0.5
# Held-out sets are evaluated in slices of this many samples.
EVAL_SLICE = 2048


@dataclass
class TrainData:
    """Training arrays (targets already encoded for the loss) and an optional held-out set.

    `held_out_name` is "test" for generated sets (a fresh draw) and "val" for
    image sets (the validation split); history columns are named after it.
    """

    x: np.ndarray
    y: np.ndarray
    held_out_x: np.ndarray | None = None
    held_out_y: np.ndarray | None = None
    held_out_name: str = "test"

    @property
    def has_held_out(self) -> bool:
        return self.held_out_x is not None and len(self.held_out_x) > 0


@dataclass
class History:
    """Per-epoch figures: `columns` name each value of a row; `epochs_done` counts rows."""

    columns: list[str]
    rows: list[list[float]] = field(default_factory=list)

    @property
    def epochs_done(self) -> int:
        return len(self.rows)

    def column(self, name: str) -> list[float]:
        index = self.columns.index(name)
        return [row[index] for row in self.rows]

    def last(self) -> dict[str, float]:
        return dict(zip(self.columns, self.rows[-1])) if self.rows else {}

    def diverged_at(self) -> int | None:
        """The 1-based epoch whose loss was first NaN or infinite, if any."""
        for epoch, loss in enumerate(self.column("loss"), start=1):
            if not math.isfinite(loss):
                return epoch
        return None


def history_columns(accuracy: str | None, held_out_name: str | None) -> list[str]:
    metrics = ["loss"] + (["accuracy"] if accuracy else [])
    held_out = [f"{held_out_name}_{metric}" for metric in metrics] if held_out_name else []
    return metrics + held_out


_MASK32 = 0xFFFFFFFF


def _mix32(values):
    """A bijective 32-bit integer hash (murmur-style finaliser), held in int64 so no step overflows."""
    for _ in range(2):
        values = tf.bitwise.bitwise_xor(values, tf.bitwise.right_shift(values, 16))
        values = (values * 0x45D9F3B) & _MASK32
    return tf.bitwise.bitwise_xor(values, tf.bitwise.right_shift(values, 16))


def epoch_permutation(seed: int, epoch, size: int):
    """The order in which epoch `epoch` visits the training set: a function of (seed, epoch) only.

    Integer hashing rather than TensorFlow's random ops, because XLA's
    stateless generators do not reproduce the plain kernels: this way the
    compiled loop, Keras `fit` fed the same order, and a resumed run all see
    the same batches.  The hash is a bijection, so no two samples tie.
    """
    key = _mix32((tf.cast(seed, tf.int64) * 0x9E3779B1 + tf.cast(epoch, tf.int64) * 0x85EBCA77) & _MASK32)
    indices = tf.range(size, dtype=tf.int64)
    return tf.argsort(_mix32(tf.bitwise.bitwise_xor(indices, key)))


def count_correct(accuracy: str | None, y_true, y_pred):
    """How many predictions are right, counted as Keras's accuracy metrics count them."""
    if accuracy is None:
        return tf.constant(0.0)
    if accuracy == "binary":
        hits = tf.equal(tf.cast(y_pred > 0.5, y_true.dtype), y_true)
    elif accuracy == "sparse":
        hits = tf.equal(tf.cast(tf.argmax(y_pred, axis=-1), y_true.dtype), tf.reshape(y_true, [-1]))
    else:
        hits = tf.equal(tf.argmax(y_pred, axis=-1), tf.argmax(y_true, axis=-1))
    return tf.reduce_sum(tf.cast(hits, tf.float32))


def _rows(tensor, start, count: int):
    """`tensor[start:start + count]` with a static size, which XLA needs."""
    rank = len(tensor.shape)
    return tf.slice(tensor, [start] + [0] * (rank - 1), [count] + [-1] * (rank - 1))


class CompiledTrainer:
    """The whole run as one compiled loop over epochs and steps, called a chunk of epochs at a time."""

    engine = "compiled"

    def __init__(self, model, loss_fn, optimizer, data: TrainData, batch_size: int, seed: int,
                 accuracy: str | None, jit_compile: bool = True):
        self.model, self.loss_fn, self.optimizer = model, loss_fn, optimizer
        self.seed, self.accuracy = seed, accuracy
        self.x, self.y = tf.constant(data.x), tf.constant(data.y)
        self.samples = len(data.x)
        self.batch_size = min(batch_size, self.samples)
        self.held_out = (tf.constant(data.held_out_x), tf.constant(data.held_out_y)) if data.has_held_out else None
        self.columns = history_columns(accuracy, data.held_out_name if data.has_held_out else None)
        optimizer.build(model.trainable_variables)
        # The loops are written with tf.while_loop already; AutoGraph's conversion
        # would only add seconds of tracing.
        self._run_chunk = tf.function(self._epochs, jit_compile=jit_compile, autograph=False)

    def _train_step(self, x_batch, y_batch):
        with tf.GradientTape() as tape:
            y_pred = self.model(x_batch, training=True)
            loss = self.loss_fn(y_batch, y_pred)
        variables = self.model.trainable_variables
        self.optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return loss, count_correct(self.accuracy, y_batch, y_pred)

    def _train_epoch(self, epoch):
        """One pass over a fresh permutation; returns (mean loss, accuracy) as `fit` reports them."""
        order = epoch_permutation(self.seed, epoch, self.samples)
        batch = self.batch_size
        full_batches, remainder = divmod(self.samples, batch)

        def step(index, loss_sum, correct):
            picks = tf.slice(order, [index * batch], [batch])
            loss, hits = self._train_step(tf.gather(self.x, picks), tf.gather(self.y, picks))
            return index + 1, loss_sum + loss * batch, correct + hits

        _, loss_sum, correct = tf.while_loop(
            lambda index, *_: index < full_batches, step, (tf.constant(0), tf.constant(0.0), tf.constant(0.0))
        )
        if remainder:
            # The last partial batch is kept, as `fit` keeps it.
            picks = order[full_batches * batch:]
            loss, hits = self._train_step(tf.gather(self.x, picks), tf.gather(self.y, picks))
            loss_sum, correct = loss_sum + loss * remainder, correct + hits
        return loss_sum / self.samples, correct / self.samples

    def _evaluate(self, x, y):
        """Mean loss and accuracy over a held-out set, in fixed slices so memory stays bounded."""
        size = int(x.shape[0])
        slice_size = min(EVAL_SLICE, size)
        full_slices, remainder = divmod(size, slice_size)

        def measure(x_part, y_part, count):
            y_pred = self.model(x_part, training=False)
            return self.loss_fn(y_part, y_pred) * count, count_correct(self.accuracy, y_part, y_pred)

        if size <= slice_size:
            # Toy sets fit one slice: no loop, a smaller program to compile.
            loss_sum, correct = measure(x, y, size)
            return loss_sum / size, correct / size

        def step(index, loss_sum, correct):
            start = index * slice_size
            loss, hits = measure(_rows(x, start, slice_size), _rows(y, start, slice_size), slice_size)
            return index + 1, loss_sum + loss, correct + hits

        _, loss_sum, correct = tf.while_loop(
            lambda index, *_: index < full_slices, step, (tf.constant(0), tf.constant(0.0), tf.constant(0.0))
        )
        if remainder:
            loss, hits = measure(x[full_slices * slice_size:], y[full_slices * slice_size:], remainder)
            loss_sum, correct = loss_sum + loss, correct + hits
        return loss_sum / size, correct / size

    def _epochs(self, start_epoch, count, capacity: int):
        """Train `count` epochs from `start_epoch`; stops early after an epoch whose loss is not finite.

        Returns (epochs run, rows) with rows of shape (capacity, columns).
        """
        width = len(self.columns)

        def body(offset, rows, finite):
            loss, accuracy = self._train_epoch(start_epoch + offset)
            values = [loss] + ([accuracy] if self.accuracy else [])
            if self.held_out is not None:
                held_loss, held_accuracy = self._evaluate(*self.held_out)
                values += [held_loss] + ([held_accuracy] if self.accuracy else [])
            rows = tf.tensor_scatter_nd_update(rows, [[offset]], [tf.stack(values)])
            return offset + 1, rows, tf.math.is_finite(loss)

        done, rows, _ = tf.while_loop(
            lambda offset, rows, finite: tf.logical_and(offset < count, finite),
            body,
            (tf.constant(0), tf.zeros([capacity, width]), tf.constant(True)),
        )
        return done, rows

    def run(self, start_epoch: int, epochs: int, on_chunk: Callable | None = None,
            should_stop: Callable[[], bool] | None = None, history: History | None = None) -> History:
        """Train from `start_epoch` up to `epochs`, appending to `history` (a fresh one by default)."""
        history = history or History(self.columns)
        capacity = max(1, min(epochs - start_epoch, 100_000))
        chunk, epoch, calls = 1, start_epoch, 0
        while epoch < epochs:
            count = min(chunk, epochs - epoch)
            started = time.perf_counter()
            done, rows = self._run_chunk(tf.constant(epoch), tf.constant(count), capacity)
            elapsed = time.perf_counter() - started
            done = int(done)
            new_rows = rows.numpy()[:done].tolist()
            history.rows.extend(new_rows)
            epoch += done
            calls += 1
            if on_chunk:
                on_chunk(epoch, history)
            if done < count or history.diverged_at() or (should_stop and should_stop()):
                break
            # The first call includes compiling and says nothing about the pace: the
            # second runs one epoch too, and chunks are sized from then on, so a run
            # of slow epochs still reports every epoch.
            if calls > 1:
                per_epoch = max(elapsed / done, 1e-6)
                chunk = int(min(max(1, CHUNK_SECONDS / per_epoch), chunk * 10, capacity))
        return history


class FitTrainer:
    """Keras `model.fit`, for networks and data where one compiled loop is not the faster way.

    `fit` is fed one `tf.data` pass over epochs `start_epoch` to `epochs`, each
    epoch in `epoch_permutation` order, built without tf.data's autotuning (see
    `untuned`), so `fit` returns as soon as its last epoch ends.
    """

    engine = "fit"

    def __init__(self, model, loss_fn, optimizer, data: TrainData, batch_size: int, seed: int,
                 accuracy: str | None, metric=None, jit_compile="auto"):
        self.model, self.seed, self.batch_size = model, seed, min(batch_size, len(data.x))
        self.samples = len(data.x)
        self.steps_per_epoch = math.ceil(self.samples / self.batch_size)
        # Copied into tensors once, as the compiled loop does, rather than at every `run`.
        self.x, self.y = tf.constant(data.x), tf.constant(data.y)
        self.held_out = (tf.constant(data.held_out_x), tf.constant(data.held_out_y)) if data.has_held_out else None
        self.columns = history_columns(accuracy, data.held_out_name if data.has_held_out else None)
        self.held_out_name = data.held_out_name
        model.compile(optimizer=optimizer, loss=loss_fn, metrics=[metric] if metric else [],
                      jit_compile=jit_compile)

    def run(self, start_epoch: int, epochs: int, on_chunk: Callable | None = None,
            should_stop: Callable[[], bool] | None = None, history: History | None = None) -> History:
        history = history or History(self.columns)
        prefix = f"{self.held_out_name}_"
        columns = self.columns

        class Report(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                logs = {key.replace("val_", prefix): value for key, value in (logs or {}).items()}
                history.rows.append([float(logs.get(column, math.nan)) for column in columns])
                if on_chunk:
                    on_chunk(epoch + 1, history)
                if history.diverged_at() or (should_stop and should_stop()):
                    self.model.stop_training = True

        if start_epoch >= epochs:
            return history
        self.model.fit(
            self.epoch_batches(start_epoch, epochs), epochs=epochs, initial_epoch=start_epoch,
            steps_per_epoch=self.steps_per_epoch, validation_data=self.held_out_batches(),
            shuffle=False, verbose=0, callbacks=[Report()],
        )
        return history

    def epoch_batches(self, start_epoch: int, epochs: int):
        """The batches of epochs `start_epoch` to `epochs`, each epoch in `epoch_permutation` order.

        `fit`'s own shuffle draws from a random state that a resumed run cannot
        restore; this order depends on (seed, epoch) alone, as the compiled loop's does.
        """
        x, y = self.x, self.y
        samples, seed, batch_size = self.samples, self.seed, self.batch_size

        # Plain TensorFlow ops with no Python control flow: AutoGraph's conversion would only
        # add most of a second before the first epoch.
        @tf.autograph.experimental.do_not_convert
        def one_epoch(epoch):
            order = tf.data.Dataset.from_tensor_slices(epoch_permutation(seed, epoch, samples))
            return order.batch(batch_size).map(gather)

        @tf.autograph.experimental.do_not_convert
        def gather(picks):
            return tf.gather(x, picks), tf.gather(y, picks)

        # One batch ahead is enough: gathering a batch takes a small part of a training step.
        return untuned(tf.data.Dataset.range(start_epoch, epochs).flat_map(one_epoch).prefetch(1))

    def held_out_batches(self):
        """The held-out set in order, in batches of the training batch size (None when there is none)."""
        if self.held_out is None:
            return None
        return untuned(tf.data.Dataset.from_tensor_slices(self.held_out).batch(self.batch_size))


def untuned(dataset):
    """`dataset` without tf.data's autotuning.

    Autotuning runs a tuning thread beside each iterator, and the iterator's
    destructor waits for it (a native stack shows `~RootDataset::Iterator`
    waiting while the thread sits in a timed wait in `Model::OptimizeLoop`).
    `fit` drops its iterator when it returns, so that wait came after the last
    epoch: 0 to 9.7 seconds over 3 epochs of LeNet-5 on 2 cores, longest under
    load.  Nothing here needs tuning: the buffer sizes are fixed.
    """
    options = tf.data.Options()
    options.autotune.enabled = False
    return dataset.with_options(options)


def make_trainer(engine: str, model, loss_fn, optimizer, data: TrainData, batch_size: int, seed: int,
                 accuracy: str | None, metric=None):
    """A trainer for `engine` ("compiled" or "fit"); the model is compiled with the same objects either way,
    so the saved file carries the optimizer and its state."""
    if engine == "compiled":
        model.compile(optimizer=optimizer, loss=loss_fn, metrics=[metric] if metric else [])
        return CompiledTrainer(model, loss_fn, optimizer, data, batch_size, seed, accuracy)
    return FitTrainer(model, loss_fn, optimizer, data, batch_size, seed, accuracy, metric)


# A run shorter than this many optimizer steps ends before compiling the loop
# (about a second for a toy net, four for an MNIST MLP on two cores) pays off.
COMPILED_MIN_STEPS = 500


def choose_engine(requested: str, network_engine: str, steps: int) -> str:
    """The README's rule: the compiled loop for runs long enough to repay compiling it, unless the
    network's own measurements favour `fit` (`models.Network.engine`).

        >>> choose_engine("auto", "compiled", steps=5000 * 10)   # beans4-hidden2 at course settings
        'compiled'
        >>> choose_engine("auto", "compiled", steps=59)          # one epoch of 60,000 images, batch 1024
        'fit'
        >>> choose_engine("auto", "fit", steps=50 * 59)          # lenet5: XLA's CPU convolutions are slow
        'fit'
    """
    if requested != "auto":
        return requested
    return "fit" if network_engine == "fit" or steps < COMPILED_MIN_STEPS else "compiled"
