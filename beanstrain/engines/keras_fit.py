"""Keras's own `model.fit`, fed every epoch's batches in `order.epoch_permutation` order.

    >>> import numpy as np
    >>> from beanstrain.engines import TrainData
    >>> from beanstrain.models import build_model
    >>> from beanstrain.objectives import make_loss, make_optimizer
    >>> model = build_model("hidden2", input_shape=(2,), task="binary", num_classes=2)
    >>> data = TrainData(x=np.eye(2, dtype="float32"), y=np.array([[0.0], [1.0]], "float32"))
    >>> history = FitTrainer(model, make_loss("mse"), make_optimizer("sgd", 0.5), data, batch_size=1, seed=0,
    ...                      accuracy=None).run(start_epoch=0, epochs=3)
    >>> history.columns, history.epochs_done
    (['loss'], 3)

For networks and data where one compiled loop is not the faster way (see
`choose_engine`).  `fit`'s own shuffle draws from a random state that a
resumed run cannot restore; this order depends on (seed, epoch) alone, as
the compiled loop's does, so the two engines reach the same weights.

On TensorFlow, `fit` is fed one `tf.data` pass over the epochs it is asked
for, built without tf.data's autotuning (see `untuned`), so it returns as
soon as its last epoch ends.  On JAX and PyTorch, where no `tf.data` exists,
it is fed the same batches as NumPy arrays from a generator (`numpy_batches`),
in the same order.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from beanstrain.devices import load_keras, load_tensorflow
from beanstrain.engines.keras_state import KerasTrainer
from beanstrain.engines.order import epoch_permutation, epoch_permutation_tf
from beanstrain.engines.protocol import History, TrainData, history_columns

# The most optimizer steps one jitted call runs under JAX: each is traced into the call, so more steps
# make a longer compile for little gain once the dispatch per call is small beside the work.
SPE_STEPS = 16
# A step whose work (parameters times batch) is below this is dispatch-bound, and gains from several steps a
# call (a toy net: 2.4 times faster on 2 CPU cores); above it, as for LeNet-5 at batch 1024 on a GPU, the
# longer compile of a call of several steps cost more than the dispatches it saved (docs/backends.md).
SPE_WORK = 1_000_000


class FitTrainer(KerasTrainer):
    """Keras `model.fit`, for networks and data where one compiled loop is not the faster way.

    The weights after each epoch in `snapshot_epochs` are copied by a callback.
    """

    def __init__(self, model, loss_fn, optimizer, data: TrainData, batch_size: int, seed: int,
                 accuracy: str | None, metric=None, snapshot_epochs=(), jit_compile="auto", steps_per_execution=None):
        super().__init__(model, optimizer, snapshot_epochs)
        self.seed, self.batch_size = seed, min(batch_size, len(data.x))
        self.samples = len(data.x)
        self.steps_per_epoch = math.ceil(self.samples / self.batch_size)
        self.on_tensorflow = load_keras().backend.backend() == "tensorflow"
        if self.on_tensorflow:  # copied into tensors once, as the compiled loop does, rather than at every `run`
            tf = load_tensorflow()
            self.x, self.y = tf.constant(data.x), tf.constant(data.y)
            self.held_out = ((tf.constant(data.held_out_x), tf.constant(data.held_out_y)) if data.has_held_out
                             else None)
        else:
            self.x, self.y = data.x, data.y
            self.held_out = (data.held_out_x, data.held_out_y) if data.has_held_out else None
        self.columns = history_columns(accuracy, data.held_out_name if data.has_held_out else None)
        self.held_out_name = data.held_out_name
        model.compile(optimizer=optimizer, loss=loss_fn, metrics=[metric] if metric else [],
                      jit_compile=jit_compile, steps_per_execution=self.steps_per_execution_for(steps_per_execution))

    def steps_per_execution_for(self, asked: int | None) -> int:
        """Optimizer steps per call of the compiled step: on JAX, for a step of little work, up to SPE_STEPS steps
        (the most that divide the epoch's) in one call (Keras runs them in one jitted function, so a toy net's
        thousands of tiny steps are not each a dispatch); otherwise one, as on TensorFlow and PyTorch
        (docs/backends.md)."""
        if asked is not None:
            return asked
        tiny = self.model.count_params() * self.batch_size < SPE_WORK
        if not tiny or load_keras().backend.backend() != "jax":
            return 1
        # A divisor of the epoch's steps: a call never runs past the epoch into the next one's batches.
        return max(count for count in range(1, SPE_STEPS + 1) if self.steps_per_epoch % count == 0)

    def run(self, start_epoch: int, epochs: int, on_chunk: Callable | None = None,
            should_stop: Callable[[], bool] | None = None, history: History | None = None) -> History:
        keras = load_keras()
        history = history or History(self.columns)
        self.snapshot_initial(start_epoch)
        prefix = f"{self.held_out_name}_"
        columns = self.columns
        snapshots, wanted = self.snapshots, set(self.snapshot_epochs)

        class Snapshot(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                if epoch + 1 in wanted:
                    snapshots[epoch + 1] = [np.array(value) for value in self.model.get_weights()]

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
        batches = self.epoch_batches if self.on_tensorflow else self.numpy_batches
        self.model.fit(
            batches(start_epoch, epochs), epochs=epochs, initial_epoch=start_epoch,
            steps_per_epoch=self.steps_per_epoch, validation_data=self.held_out_batches(),
            validation_batch_size=None if self.on_tensorflow else self.batch_size,
            shuffle=False, verbose=0, callbacks=([Snapshot()] if wanted - {0} else []) + [Report()],
        )
        return history

    def numpy_batches(self, start_epoch: int, epochs: int):
        """`epoch_batches` as NumPy arrays, for the backends without `tf.data`: the same batches, in the same
        order (`order.epoch_permutation`, the NumPy twin of the order the `tf.data` pass gathers)."""
        for epoch in range(start_epoch, epochs):
            order = epoch_permutation(self.seed, epoch, self.samples)
            for start in range(0, self.samples, self.batch_size):
                picks = order[start:start + self.batch_size]
                yield self.x[picks], self.y[picks]

    def epoch_batches(self, start_epoch: int, epochs: int):
        """The batches of epochs `start_epoch` to `epochs`, each epoch in `epoch_permutation` order."""
        tf = load_tensorflow()
        x, y = self.x, self.y
        samples, seed, batch_size = self.samples, self.seed, self.batch_size

        # Plain TensorFlow ops with no Python control flow: AutoGraph's conversion would only
        # add most of a second before the first epoch.
        @tf.autograph.experimental.do_not_convert
        def one_epoch(epoch):
            order = tf.data.Dataset.from_tensor_slices(epoch_permutation_tf(seed, epoch, samples))
            return order.batch(batch_size).map(gather)

        @tf.autograph.experimental.do_not_convert
        def gather(picks):
            return tf.gather(x, picks), tf.gather(y, picks)

        # One batch ahead is enough: gathering a batch takes a small part of a training step.
        return untuned(tf.data.Dataset.range(start_epoch, epochs).flat_map(one_epoch).prefetch(1))

    def held_out_batches(self):
        """The held-out set in order, in batches of the training batch size (None when there is none)."""
        if self.held_out is None or not self.on_tensorflow:
            return self.held_out
        tf = load_tensorflow()
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
    options = load_tensorflow().data.Options()
    options.autotune.enabled = False
    return dataset.with_options(options)
