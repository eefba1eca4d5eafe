"""The compiled engine's twin on JAX: the whole run as one `jax.jit`-compiled loop, called in chunks of epochs.

    >>> import numpy as np
    >>> from beanstrain.engines import TrainData
    >>> from beanstrain.models import build_model
    >>> from beanstrain.objectives import make_loss, make_optimizer
    >>> model = build_model("hidden2", input_shape=(2,), task="binary", num_classes=2)
    >>> data = TrainData(x=np.eye(2, dtype="float32"), y=np.array([[0.0], [1.0]], "float32"))
    >>> trainer = JaxCompiledTrainer(model, make_loss("mse"), make_optimizer("sgd", 0.5), data, batch_size=1,
    ...                              seed=0, accuracy="binary")         # doctest: +SKIP
    >>> trainer.run(start_epoch=0, epochs=20).epochs_done                # doctest: +SKIP
    20

(Skipped here: the doctests run on TensorFlow; tests/test_backends.py runs it on JAX against `fit`.)

It has the TensorFlow loop's semantics (`engines/compiled.py`): each epoch visits the training set in
`order.epoch_permutation` order, drawn from `(seed, epoch)` alone (here as `jnp` ops, tested equal to
NumPy's), in batches of the batch size with the last partial batch kept; it reports the batch-size-
weighted mean training loss and accuracy, as `fit` does, then the held-out set's at the epoch's end.
Epochs run in `lax.while_loop`, the full batches of an epoch in `lax.scan`, through Keras's stateless
API (`model.stateless_call`, `optimizer.stateless_apply`), so one compiled call trains a chunk of epochs
and the Keras variables are written back between chunks.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from beanstrain.devices import load_keras
from beanstrain.engines.chunks import run_chunks, snapshot_slots
from beanstrain.engines.keras_state import KerasTrainer
from beanstrain.engines.order import EPOCH_MULTIPLIER, MIX_MULTIPLIER, SEED_MULTIPLIER
from beanstrain.engines.protocol import History, TrainData, history_columns

# As in the TensorFlow loop, held-out sets are measured this many samples at a time.
EVAL_SLICE = 2048


def epoch_permutation_jax(seed, epoch, size: int):
    """`order.epoch_permutation` as `jnp` ops (uint32 arithmetic wraps as the mask does): `epoch` may be traced."""
    import jax.numpy as jnp

    def mix(values):
        for _ in range(2):
            values = values ^ (values >> 16)
            values = values * jnp.uint32(MIX_MULTIPLIER)
        return values ^ (values >> 16)

    key = mix(jnp.uint32(seed & 0xFFFFFFFF) * jnp.uint32(SEED_MULTIPLIER)
              + jnp.asarray(epoch).astype(jnp.uint32) * jnp.uint32(EPOCH_MULTIPLIER))
    return jnp.argsort(mix(jnp.arange(size, dtype=jnp.uint32) ^ key))


def count_correct_jax(accuracy: str | None, y_true, y_pred):
    """`objectives.count_correct` as `jnp` ops, for the compiled loop."""
    import jax.numpy as jnp

    if accuracy is None:
        return jnp.float32(0.0)
    if accuracy == "binary":
        hits = (y_pred > 0.5).astype(y_true.dtype) == y_true
    elif accuracy == "sparse":
        hits = jnp.argmax(y_pred, axis=-1).astype(y_true.dtype) == y_true.reshape(-1)
    else:
        hits = jnp.argmax(y_pred, axis=-1) == jnp.argmax(y_true, axis=-1)
    return hits.sum().astype(jnp.float32)


class JaxCompiledTrainer(KerasTrainer):
    """The whole run as one jitted loop over epochs and steps, called a chunk of epochs at a time."""

    def __init__(self, model, loss_fn, optimizer, data: TrainData, batch_size: int, seed: int,
                 accuracy: str | None, metric=None, snapshot_epochs=()):
        import jax
        import jax.numpy as jnp

        # Compiled like `fit`'s model, so the saved file carries the optimizer and its state.
        model.compile(optimizer=optimizer, loss=loss_fn, metrics=[metric] if metric else [])
        super().__init__(model, optimizer, snapshot_epochs)
        self.loss_fn, self.seed, self.accuracy = loss_fn, seed, accuracy
        self.x, self.y = jnp.asarray(data.x), jnp.asarray(data.y)
        self.samples = len(data.x)
        self.batch_size = min(batch_size, self.samples)
        self.held_out = (jnp.asarray(data.held_out_x), jnp.asarray(data.held_out_y)) if data.has_held_out else None
        self.columns = history_columns(accuracy, data.held_out_name if data.has_held_out else None)
        optimizer.build(model.trainable_variables)
        self._buffered = [epoch for epoch in self.snapshot_epochs if epoch > 0]
        self._snapshot_rows = jnp.asarray(snapshot_slots(self._buffered), dtype=jnp.int32)
        self._buffers = [jnp.zeros((len(self._buffered), *weight.shape), weight.dtype) for weight in model.weights] \
            if self._buffered else []
        self._run_chunk = jax.jit(self._epochs, static_argnums=(6,))

    # --- inside the compiled loop ----------------------------------------------------------------------------

    def _train_step(self, state, x_batch, y_batch):
        import jax

        trainable, non_trainable, optimizer_vars = state

        def loss_of(trainable_values):
            y_pred, new_non_trainable = self.model.stateless_call(trainable_values, non_trainable, x_batch,
                                                                  training=True)
            return self.loss_fn(y_batch, y_pred), (y_pred, new_non_trainable)

        (loss, (y_pred, non_trainable)), grads = jax.value_and_grad(loss_of, has_aux=True)(trainable)
        trainable, optimizer_vars = self.optimizer.stateless_apply(optimizer_vars, grads, trainable)
        return (trainable, non_trainable, optimizer_vars), loss, count_correct_jax(self.accuracy, y_batch, y_pred)

    def _train_epoch(self, state, epoch, x, y):
        import jax
        import jax.numpy as jnp

        order = epoch_permutation_jax(self.seed, epoch, self.samples)
        batch = self.batch_size
        full_batches, remainder = divmod(self.samples, batch)

        def step(carry, picks):
            state, loss_sum, correct = carry
            state, loss, hits = self._train_step(state, x[picks], y[picks])
            return (state, loss_sum + loss * batch, correct + hits), None

        start = (state, jnp.float32(0.0), jnp.float32(0.0))
        (state, loss_sum, correct), _ = jax.lax.scan(step, start, order[:full_batches * batch].reshape(-1, batch))
        if remainder:  # the last partial batch is kept, as `fit` keeps it
            picks = order[full_batches * batch:]
            state, loss, hits = self._train_step(state, x[picks], y[picks])
            loss_sum, correct = loss_sum + loss * remainder, correct + hits
        return state, loss_sum / self.samples, correct / self.samples

    def _evaluate(self, state, x, y):
        import jax
        import jax.numpy as jnp

        trainable, non_trainable, _ = state
        size = int(x.shape[0])
        slice_size = min(EVAL_SLICE, size)
        full_slices, remainder = divmod(size, slice_size)

        def measure(x_part, y_part):
            y_pred, _ = self.model.stateless_call(trainable, non_trainable, x_part, training=False)
            return self.loss_fn(y_part, y_pred) * x_part.shape[0], count_correct_jax(self.accuracy, y_part, y_pred)

        def step(carry, index):
            loss, hits = measure(jax.lax.dynamic_slice_in_dim(x, index * slice_size, slice_size),
                                 jax.lax.dynamic_slice_in_dim(y, index * slice_size, slice_size))
            return (carry[0] + loss, carry[1] + hits), None

        (loss_sum, correct), _ = jax.lax.scan(step, (jnp.float32(0.0), jnp.float32(0.0)), jnp.arange(full_slices))
        if remainder:
            loss, hits = measure(x[full_slices * slice_size:], y[full_slices * slice_size:])
            loss_sum, correct = loss_sum + loss, correct + hits
        return loss_sum / size, correct / size

    def _epochs(self, state, buffers, data, start_epoch, count, rows_table, capacity: int):
        """Train `count` epochs from `start_epoch`, stopping after an epoch whose loss is not finite.

        The arrays come in as arguments (`data`: training and held-out), not captured: a captured array
        would be compiled into the program as a constant."""
        x, y, held_out = data
        import jax
        import jax.numpy as jnp

        width = len(self.columns)

        def body(carry):
            offset, rows, finite, state, buffers = carry
            epoch = start_epoch + offset
            state, loss, accuracy = self._train_epoch(state, epoch, x, y)
            if buffers:
                slot = rows_table[jnp.minimum(epoch + 1, rows_table.shape[0] - 1)]
                weights = list(state[0]) + list(state[1])
                buffers = [jnp.where(slot >= 0, buffer.at[jnp.maximum(slot, 0)].set(value), buffer)
                           for buffer, value in zip(buffers, self._in_model_order(weights))]
            values = [loss] + ([accuracy] if self.accuracy else [])
            if held_out is not None:
                held_loss, held_accuracy = self._evaluate(state, *held_out)
                values += [held_loss] + ([held_accuracy] if self.accuracy else [])
            rows = rows.at[offset].set(jnp.stack([jnp.asarray(value, jnp.float32) for value in values]))
            return offset + 1, rows, jnp.isfinite(loss), state, buffers

        carry = (jnp.int32(0), jnp.zeros((capacity, width), jnp.float32), jnp.bool_(True), state, buffers)
        done, rows, _, state, buffers = jax.lax.while_loop(lambda c: (c[0] < count) & c[2], body, carry)
        return done, rows, state, buffers

    def _in_model_order(self, values: list) -> list:
        """Trainable then non-trainable values, put in `model.weights` order (the buffers' order)."""
        by_id = dict(zip([id(v) for v in self.model.trainable_variables + self.model.non_trainable_variables],
                         values))
        return [by_id[id(variable)] for variable in self.model.weights]

    # --- between chunks --------------------------------------------------------------------------------------

    def _state(self):
        return ([variable.value for variable in self.model.trainable_variables],
                [variable.value for variable in self.model.non_trainable_variables],
                [variable.value for variable in self.optimizer.variables])

    def _write_back(self, state) -> None:
        trainable, non_trainable, optimizer_vars = state
        for variable, value in zip(self.model.trainable_variables, trainable):
            variable.assign(value)
        for variable, value in zip(self.model.non_trainable_variables, non_trainable):
            variable.assign(value)
        for variable, value in zip(self.optimizer.variables, optimizer_vars):
            variable.assign(value)

    def _copy_snapshots(self, after: int, upto: int) -> None:
        slots = [(slot, epoch) for slot, epoch in enumerate(self._buffered) if after < epoch <= upto]
        if not slots:
            return
        buffers = [np.asarray(buffer) for buffer in self._buffers]
        for slot, epoch in slots:
            self.snapshots[epoch] = [values[slot].copy() for values in buffers]

    def run(self, start_epoch: int, epochs: int, on_chunk: Callable | None = None,
            should_stop: Callable[[], bool] | None = None, history: History | None = None) -> History:
        """Train from `start_epoch` up to `epochs`, appending to `history` (a fresh one by default)."""
        load_keras()
        self.snapshot_initial(start_epoch)
        state = [self._state()]  # the chunks' state, written back into the Keras variables after each

        def train_chunk(epoch: int, count: int, capacity: int):
            done, rows, state[0], self._buffers = self._run_chunk(
                state[0], self._buffers, (self.x, self.y, self.held_out), epoch, count, self._snapshot_rows, capacity)
            return int(done), np.asarray(rows).tolist()

        def after_chunk(first: int, last: int) -> None:
            self._write_back(state[0])
            self._copy_snapshots(first, last)

        return run_chunks(train_chunk, start_epoch, epochs, history or History(self.columns), on_chunk, should_stop,
                          after_chunk, most=self.most_epochs_per_chunk)
