"""What the two Keras engines share: their state as NumPy arrays, and weight snapshots.

    >>> import numpy as np
    >>> from beanstrain.engines import TrainData
    >>> from beanstrain.engines.build import make_trainer
    >>> from beanstrain.models import build_model
    >>> from beanstrain.objectives import make_loss, make_optimizer
    >>> model = build_model("hidden2", input_shape=(2,), task="binary", num_classes=2)
    >>> data = TrainData(x=np.zeros((4, 2), "float32"), y=np.ones((4, 1), "float32"))
    >>> trainer = make_trainer("fit", model, make_loss("mse"), make_optimizer("sgd", 0.1), data, batch_size=2,
    ...                        seed=0, accuracy=None, snapshot_epochs=(0, 1))
    >>> history = trainer.run(start_epoch=0, epochs=3)
    >>> [weights.shape for weights in trainer.get_state().weights]
    [(2, 2), (2,), (2, 1), (1,)]
    >>> sorted(trainer.snapshots)     # before training, and after the first epoch
    [0, 1]
"""

from __future__ import annotations

import numpy as np

from beanstrain.devices import to_numpy
from beanstrain.engines.protocol import EngineState
from beanstrain.errors import RunError


class KerasTrainer:
    """A Keras model and its optimizer: `get_state`, `set_state` and the snapshot bookkeeping."""

    def __init__(self, model, optimizer, snapshot_epochs=()):
        self.model, self.optimizer = model, optimizer
        self.snapshot_epochs = tuple(sorted({int(epoch) for epoch in snapshot_epochs}))
        self.snapshots: dict[int, list[np.ndarray]] = {}
        self.most_epochs_per_chunk: int | None = None  # the protocol's: early stopping's one epoch per chunk

    def random_states(self) -> list:
        """The dropout layers' seed generators' states: a checkpoint keeps them after the optimizer's variables,
        so a resumed run drops the same units an uninterrupted one would."""
        return [layer.seed_generator.state for layer in self.model.layers if hasattr(layer, "seed_generator")]

    def get_state(self) -> EngineState:
        return EngineState([np.array(value) for value in self.model.get_weights()],
                           [to_numpy(variable) for variable in [*self.optimizer.variables, *self.random_states()]])

    def set_state(self, state: EngineState) -> None:
        """Put saved weights and optimizer variables back; refused if they do not fit this network."""
        model, optimizer = self.model, self.optimizer
        shapes = [tuple(weight.shape) for weight in model.get_weights()]
        if shapes != [tuple(weight.shape) for weight in state.weights]:
            raise RunError(f"the checkpoint's weights {[tuple(w.shape) for w in state.weights]} "
                           f"do not fit the network's {shapes}")
        if not optimizer.built:
            optimizer.build(model.trainable_variables)
        variables = [*optimizer.variables, *self.random_states()]
        if [tuple(variable.shape) for variable in variables] != [tuple(value.shape) for value in
                                                                state.optimizer_variables]:
            raise RunError("the checkpoint's optimizer state does not fit this optimizer")
        model.set_weights(state.weights)
        for variable, value in zip(variables, state.optimizer_variables):
            variable.assign(value)

    def snapshot_initial(self, start_epoch: int) -> None:
        """Epoch 0's snapshot is the weights before training, taken when a run starts there."""
        if start_epoch == 0 and 0 in self.snapshot_epochs:
            self.snapshots[0] = [np.array(value) for value in self.model.get_weights()]
