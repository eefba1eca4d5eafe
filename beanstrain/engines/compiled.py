"""The whole run as one compiled TensorFlow loop: every epoch and every step inside one `tf.function`.

    >>> import numpy as np
    >>> from beanstrain.engines import TrainData
    >>> from beanstrain.models import build_model
    >>> from beanstrain.objectives import make_loss, make_optimizer
    >>> model = build_model("hidden2", input_shape=(2,), task="binary", num_classes=2)
    >>> data = TrainData(x=np.eye(2, dtype="float32"), y=np.array([[0.0], [1.0]], "float32"))
    >>> trainer = CompiledTrainer(model, make_loss("mse"), make_optimizer("sgd", 0.5), data, batch_size=1,
    ...                           seed=0, accuracy="binary")
    >>> history = trainer.run(start_epoch=0, epochs=20)
    >>> history.columns, history.epochs_done
    (['loss', 'accuracy'], 20)

It trains the same Keras model with the same loss and optimizer objects as
Keras `fit` and reports the same per-epoch metrics (the batch-size-weighted
mean training loss and accuracy seen during the epoch, as `fit` reports
them, then loss and accuracy on the held-out set at the epoch's end).  The
function is XLA-compiled and called once per chunk of epochs, so progress
can be shown and an interrupt honoured between chunks.  Each epoch visits
the training set in `order.epoch_permutation_tf` order, drawn from
`(seed, epoch)` alone, so a run cut into chunks, or stopped and resumed,
takes exactly the same steps.
"""

from __future__ import annotations

from collections.abc import Callable

from beanstrain.devices import load_tensorflow
from beanstrain.engines.chunks import run_chunks, snapshot_slots
from beanstrain.engines.keras_state import KerasTrainer
from beanstrain.engines.order import epoch_permutation_tf
from beanstrain.engines.protocol import History, TrainData, history_columns

# Held-out sets are evaluated in slices of this many samples.
EVAL_SLICE = 2048


def count_correct(accuracy: str | None, y_true, y_pred):
    """How many predictions are right, counted as Keras's accuracy metrics count them
    (`objectives.count_correct` counts the same outside a graph)."""
    tf = load_tensorflow()
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
    tf = load_tensorflow()
    rank = len(tensor.shape)
    return tf.slice(tensor, [start] + [0] * (rank - 1), [count] + [-1] * (rank - 1))


class CompiledTrainer(KerasTrainer):
    """The whole run as one compiled loop over epochs and steps, called a chunk of epochs at a time.

    The weights after each epoch in `snapshot_epochs` are copied, inside the
    loop, into a buffer made once for the whole run.
    """

    def __init__(self, model, loss_fn, optimizer, data: TrainData, batch_size: int, seed: int,
                 accuracy: str | None, metric=None, snapshot_epochs=(), jit_compile: bool = True):
        tf = load_tensorflow()
        # Compiled like `fit`'s model, so the saved file carries the optimizer and its state.
        model.compile(optimizer=optimizer, loss=loss_fn, metrics=[metric] if metric else [])
        super().__init__(model, optimizer, snapshot_epochs)
        self.loss_fn, self.seed, self.accuracy = loss_fn, seed, accuracy
        self.x, self.y = tf.constant(data.x), tf.constant(data.y)
        self.samples = len(data.x)
        self.batch_size = min(batch_size, self.samples)
        self.held_out = (tf.constant(data.held_out_x), tf.constant(data.held_out_y)) if data.has_held_out else None
        self.columns = history_columns(accuracy, data.held_out_name if data.has_held_out else None)
        optimizer.build(model.trainable_variables)
        self._buffered = [epoch for epoch in self.snapshot_epochs if epoch > 0]
        # One row per epoch asked for; each epoch's row (-1: none) is looked up in a table, and only the
        # epochs asked for copy the weights (a branch taken about 150 times in a run of thousands of epochs).
        self._snapshot_buffers = [tf.Variable(tf.zeros((len(self._buffered), *weight.shape), weight.dtype),
                                              trainable=False) for weight in model.weights] if self._buffered else []
        if self._buffered:
            self._snapshot_rows = tf.constant(snapshot_slots(self._buffered), dtype=tf.int32)
        # The loops are written with tf.while_loop already; AutoGraph's conversion
        # would only add seconds of tracing.
        self._run_chunk = tf.function(self._epochs, jit_compile=jit_compile, autograph=False)

    def _train_step(self, x_batch, y_batch):
        tf = load_tensorflow()
        with tf.GradientTape() as tape:
            y_pred = self.model(x_batch, training=True)
            loss = self.loss_fn(y_batch, y_pred) + self._penalty()
        variables = self.model.trainable_variables
        self.optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return loss, count_correct(self.accuracy, y_batch, y_pred)

    def _penalty(self):
        """The kernels' L1/L2 regularizers' loss (a described network's `--l1`, `--l2`), added as `fit` adds it."""
        losses = self.model.losses
        return load_tensorflow().add_n(losses) if losses else 0.0

    def feeds_whole_set(self) -> bool:
        """A batch of the whole training set: the mean gradient over it is the same in any order
        (up to the order of float sums), so each step takes the set as it is instead of gathering a
        permuted copy of it (60,000 MNIST images: 188 MB copied every step)."""
        return self.batch_size == self.samples

    def _train_epoch(self, epoch):
        """One pass over a fresh permutation; returns (mean loss, accuracy) as `fit` reports them."""
        tf = load_tensorflow()
        if self.feeds_whole_set():
            loss, hits = self._train_step(self.x, self.y)
            return loss, hits / self.samples
        order = epoch_permutation_tf(self.seed, epoch, self.samples)
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
        tf = load_tensorflow()
        size = int(x.shape[0])
        slice_size = min(EVAL_SLICE, size)
        full_slices, remainder = divmod(size, slice_size)

        def measure(x_part, y_part, count):
            y_pred = self.model(x_part, training=False)
            loss = self.loss_fn(y_part, y_pred) + self._penalty()
            return loss * count, count_correct(self.accuracy, y_part, y_pred)

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
        tf = load_tensorflow()
        width = len(self.columns)

        def body(offset, rows, finite):
            loss, accuracy = self._train_epoch(start_epoch + offset)
            if self._snapshot_buffers:
                with tf.control_dependencies([self._snapshot(start_epoch + offset + 1)]):
                    loss = tf.identity(loss)
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

    def _snapshot(self, epoch):
        """Copy every weight into the buffer row of `epoch` when it is an epoch asked for; returns whether it was."""
        tf = load_tensorflow()
        table = self._snapshot_rows
        slot = tf.gather(table, tf.minimum(epoch, table.shape[0] - 1))

        def copy():
            for buffer, weight in zip(self._snapshot_buffers, self.model.weights):
                buffer.scatter_nd_update(tf.reshape(slot, [1, 1]), tf.expand_dims(tf.convert_to_tensor(weight), 0))
            return tf.constant(True)

        return tf.cond(slot >= 0, copy, lambda: tf.constant(False))

    def _copy_snapshots(self, after: int, upto: int) -> None:
        slots = [(slot, epoch) for slot, epoch in enumerate(self._buffered) if after < epoch <= upto]
        if not slots:
            return
        # Each buffer is read once: one read per row would cost a TensorFlow call per weight and epoch.
        buffers = [buffer.numpy() for buffer in self._snapshot_buffers]
        for slot, epoch in slots:
            self.snapshots[epoch] = [values[slot].copy() for values in buffers]

    def run(self, start_epoch: int, epochs: int, on_chunk: Callable | None = None,
            should_stop: Callable[[], bool] | None = None, history: History | None = None) -> History:
        """Train from `start_epoch` up to `epochs`, appending to `history` (a fresh one by default)."""
        tf = load_tensorflow()
        self.snapshot_initial(start_epoch)

        def train_chunk(epoch: int, count: int, capacity: int):
            done, rows = self._run_chunk(tf.constant(epoch), tf.constant(count), capacity)
            return int(done), rows.numpy().tolist()

        return run_chunks(train_chunk, start_epoch, epochs, history or History(self.columns), on_chunk, should_stop,
                          self._copy_snapshots, most=self.most_epochs_per_chunk)
