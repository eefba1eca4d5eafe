"""The hand-written engine: every epoch and step in NumPy, with the course's update rules.

    >>> import numpy as np
    >>> from beanstrain.engines import TrainData
    >>> from beanstrain.engines.rules import make_rule
    >>> from beanstrain.models import build_model
    >>> from beanstrain.objectives import make_loss
    >>> model = build_model("hidden2", input_shape=(2,), task="binary", num_classes=2)
    >>> data = TrainData(x=np.eye(2, dtype="float32"), y=np.array([[0.0], [1.0]], "float32"))
    >>> trainer = NumpyTrainer(model, make_loss("mse"), make_rule("sgd", 0.5), data, batch_size=1, seed=0,
    ...                        accuracy="binary")
    >>> history = trainer.run(start_epoch=0, epochs=20)
    >>> history.columns, history.epochs_done
    (['loss', 'accuracy'], 20)

It trains the Keras network's own weights, copied out as float32 arrays and
put back after every chunk of epochs, so `model.keras` is the trained
network and `eval`, `predict` and the pictures read it unchanged.  Each
epoch visits the training set in `order.epoch_permutation` order, the last
partial batch kept, and reports what the Keras engines report: the mean
training loss and accuracy of the predictions made during the epoch (each
batch's before its step), then the held-out set's at the epoch's end.

Given `snapshot_steps` (global optimizer steps, `trace.snapshot_steps`), it
takes its snapshots after those steps, inside epochs too, keyed by step:
a lesson of one bean a step that converges within its first epoch still
leaves the path each rule took.  Without them, after the `snapshot_epochs`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import numpy as np

from beanstrain.devices import load_keras
from beanstrain.engines.numpy_net import KERAS_LOSSES, Network, read_layers
from beanstrain.engines.order import epoch_permutation
from beanstrain.engines.protocol import EngineState, History, TrainData, history_columns
from beanstrain.errors import RunError, UsageError
from beanstrain.features import apply_features, model_features
from beanstrain.objectives import count_correct

# A chunk of epochs takes about this long, so progress moves and an interrupt is honoured quickly.
CHUNK_SECONDS = 0.5


class NumpyTrainer:
    """The network's weights as NumPy arrays, trained by a rule from `engines.rules`."""

    def __init__(self, model, loss_fn, optimizer, data: TrainData, batch_size: int, seed: int,
                 accuracy: str | None, metric=None, snapshot_epochs=(), snapshot_steps=None):
        if not hasattr(optimizer, "update"):
            raise UsageError("the numpy engine takes an update rule (sgd, rosenblatt or sign), "
                             f"not Keras's {type(optimizer).__name__}")
        loss = KERAS_LOSSES[type(loss_fn).__name__]
        self.network = Network(read_layers(model), loss, perceptron_error=optimizer.perceptron_error)
        self.model, self.rule, self.seed, self.accuracy = model, optimizer, seed, accuracy
        # Compiled with Keras's SGD at the rule's rate, so the saved file is a whole Keras model.
        keras = load_keras()
        model.compile(optimizer=keras.optimizers.SGD(learning_rate=optimizer.learning_rate), loss=loss_fn,
                      metrics=[metric] if metric else [])
        self.weights = [np.array(value, dtype=np.float32) for value in model.get_weights()]
        self.steps = 0
        # Input features (a described network's first layer) are computed once, as that layer computes them.
        self.features = model_features(model)
        self.x, self.y = self._inputs(data.x), np.asarray(data.y, np.float32)
        self.samples = len(self.x)
        self.batch_size = min(batch_size, self.samples)
        self.held_out = (self._inputs(data.held_out_x), np.asarray(data.held_out_y, np.float32)) \
            if data.has_held_out else None
        self.columns = history_columns(accuracy, data.held_out_name if data.has_held_out else None)
        self.snapshot_epochs = tuple(sorted({int(epoch) for epoch in snapshot_epochs}))
        self.snapshots: dict[int, list[np.ndarray]] = {}
        # Steps to snapshot after (global step numbers); None: snapshots at `snapshot_epochs` instead.
        self.snapshot_steps = None if snapshot_steps is None else frozenset(int(step) for step in snapshot_steps)
        self.most_epochs_per_chunk: int | None = None  # the protocol's: early stopping's one epoch per chunk

    def _inputs(self, x) -> np.ndarray:
        x = np.asarray(x, np.float32)
        return apply_features(self.features, x).astype(np.float32) if self.features else x

    def _train_epoch(self, epoch: int) -> list[float]:
        """One pass in the epoch's order; the epoch's mean loss (and accuracy) over its batches."""
        order = epoch_permutation(self.seed, epoch, self.samples)
        x, y = self.x[order], self.y[order]
        network, weights, rule, batch = self.network, self.weights, self.rule, self.batch_size
        logits = None  # made at the first batch: each sample's output before its activation
        wanted, step = self.snapshot_steps, self.steps
        penalty = 0.0  # the regularizers' loss at each step, weighted by its batch, as Keras's loss tracker does
        for start in range(0, self.samples, batch):
            x_batch = x[start:start + batch]
            # Dropout's masks come from (seed, step) alone, so a resumed run drops the same units.
            masks = network.dropout_masks(np.random.default_rng([self.seed, step]), len(x_batch), weights) \
                if network.has_dropout else None
            outputs, z = network.forward(weights, x_batch, masks)
            if logits is None:
                logits = np.empty((self.samples, *z.shape[1:]), np.float32)
            logits[start:start + batch] = z
            if network.penalised:
                penalty += network.penalty(weights) * len(x_batch)
            rule.update(weights, network.backward(weights, outputs,
                                                  network.output_error(y[start:start + batch], outputs[-1]), masks))
            step += 1
            if wanted is not None and step in wanted:
                self.snapshots[step] = [weight.copy() for weight in weights]
        self.steps = step
        # The activation again, elementwise or row by row: the very predictions each step made.
        return self._metrics(y, network.activate_output(logits), logits, penalty / self.samples)

    def _metrics(self, y, predictions, logits, penalty: float = 0.0) -> list[float]:
        values = [float(self.network.sample_losses(y, predictions, logits).mean()) + penalty]
        if self.accuracy:
            values.append(count_correct(self.accuracy, y, predictions) / len(y))
        return values

    def _evaluate(self) -> list[float]:
        x, y = self.held_out
        outputs, z = self.network.forward(self.weights, x)
        return self._metrics(y, outputs[-1], z, self.network.penalty(self.weights))

    def _snapshot(self, epoch: int) -> None:
        if self.snapshot_steps is not None:
            if epoch == 0 and 0 in self.snapshot_steps:
                self.snapshots[0] = [weight.copy() for weight in self.weights]
        elif epoch in self.snapshot_epochs:
            self.snapshots[epoch] = [weight.copy() for weight in self.weights]

    def run(self, start_epoch: int, epochs: int, on_chunk: Callable | None = None,
            should_stop: Callable[[], bool] | None = None, history: History | None = None) -> History:
        """Train from `start_epoch` up to `epochs`, appending to `history` (a fresh one by default)."""
        history = history or History(self.columns)
        if start_epoch == 0:
            self._snapshot(0)
        epoch, chunk, calls = start_epoch, 1, 0
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # a diverging run shows as a NaN loss
            while epoch < epochs:
                started, first, end = time.perf_counter(), epoch, min(epoch + chunk, epochs)
                while epoch < end:
                    row = self._train_epoch(epoch)
                    if self.held_out is not None:
                        row += self._evaluate()
                    history.rows.append(row)
                    epoch += 1
                    self._snapshot(epoch)
                    diverged = not math.isfinite(row[0])
                    if diverged:
                        break
                self.model.set_weights(self.weights)
                if on_chunk:
                    on_chunk(epoch, history)
                if diverged or (should_stop and should_stop()):
                    break
                # As the compiled loop does: two chunks of one epoch, so progress shows at once, then
                # chunks of about CHUNK_SECONDS, growing at most tenfold a time.
                calls += 1
                if calls > 1:
                    per_epoch = max((time.perf_counter() - started) / (epoch - first), 1e-6)
                    chunk = int(min(max(1, CHUNK_SECONDS / per_epoch), chunk * 10))
                    chunk = min(chunk, self.most_epochs_per_chunk or chunk)
        self.model.set_weights(self.weights)
        return history

    def get_state(self) -> EngineState:
        return EngineState([weight.copy() for weight in self.weights], [np.array(self.steps, dtype=np.int64)])

    def set_state(self, state: EngineState) -> None:
        """Put saved weights back; refused if they do not fit this network."""
        shapes = [weight.shape for weight in self.weights]
        if shapes != [tuple(np.shape(weight)) for weight in state.weights]:
            raise RunError(f"the checkpoint's weights {[tuple(np.shape(w)) for w in state.weights]} "
                           f"do not fit the network's {shapes}")
        if [tuple(np.shape(value)) for value in state.optimizer_variables] != [()]:
            raise RunError("the checkpoint's optimizer state does not fit the numpy engine")
        self.weights = [np.array(weight, dtype=np.float32) for weight in state.weights]
        self.steps = int(state.optimizer_variables[0])
        self.model.set_weights(self.weights)
