"""A toy network replayed in NumPy from its weights: every unit over one grid of inputs, at every snapshot.

    >>> import numpy as np
    >>> layers = [DenseLayer("sigmoid", True), DenseLayer("linear", False)]
    >>> weights = [np.array([[1.0, -1.0]]), np.zeros(2), np.array([[2.0], [2.0]])]
    >>> [output.round(3).tolist() for output in forward(layers, weights, np.array([[0.0]]))]
    [[[0.5, 0.5]], [[2.0]]]

The animation, the per-neuron views and the cost picture all need the
network's outputs over a grid of inputs; `Replay.of(run)` computes them once
for every snapshot of the trace (a few milliseconds: the toy networks have
at most a few hundred weights), so each picture only draws.  It applies to
networks made of Dense layers on sets with one or two inputs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from beanstrain.devices import load_keras
from beanstrain.features import apply_features
from beanstrain.objectives import accuracy_kind, count_correct, encode_targets, make_loss

GRID_POINTS_2D = 100  # per axis: the animation's image and the neurons' panels
GRID_POINTS_1D = 300


@dataclass(frozen=True)
class DenseLayer:
    activation: str  # a Keras activation's name
    bias: bool
    features: tuple[str, ...] = ()  # input features computed before this layer (the first), features.FEATURES


# Layers with no weights that change nothing once trained: dropout passes its input on outside training.
PASS_THROUGH = ("Dropout",)


def dense_layers(model) -> list[DenseLayer] | None:
    """The network's layers when all are Dense (the toy networks, described ones with their features and dropout
    too), else None."""
    layers, features = [], ()
    for layer in getattr(model, "layers", None) or []:
        kind = type(layer).__name__
        if kind == "Features" and not layers:
            features = tuple(layer.names)
            continue
        if kind in PASS_THROUGH:
            continue
        if kind != "Dense":
            return None
        activation = getattr(getattr(layer, "activation", None), "__name__", "linear")
        layers.append(DenseLayer(activation, bool(layer.use_bias), features if not layers else ()))
    return layers or None


def activate(name: str, values: np.ndarray) -> np.ndarray:
    if name == "linear":
        return values
    if name == "sigmoid":
        with np.errstate(over="ignore"):  # exp(-z) overflows to inf for a very negative z: the output is 0
            return 1.0 / (1.0 + np.exp(-values))
    if name == "relu":
        return np.maximum(values, 0.0)
    if name == "tanh":
        return np.tanh(values)
    if name == "softmax":
        shifted = np.exp(values - values.max(axis=-1, keepdims=True))
        return shifted / shifted.sum(axis=-1, keepdims=True)
    return np.asarray(load_keras().activations.get(name)(values))


def forward(layers: list[DenseLayer], weights: list[np.ndarray], x: np.ndarray) -> list[np.ndarray]:
    """Each layer's output for inputs `x`, given the weights in `get_weights()` order."""
    outputs, index, values = [], 0, np.asarray(x, np.float64)
    for layer in layers:
        if layer.features:
            values = apply_features(layer.features, values)
        values = values @ weights[index]
        index += 1
        if layer.bias:
            values = values + weights[index]
            index += 1
        values = activate(layer.activation, values)
        outputs.append(values)
    return outputs


# A boundary picture draws each hidden unit's line for a network of one hidden layer of at most this many units.
MOST_UNIT_LINES = 8
def hidden_unit_inputs(layers: list[DenseLayer], weights: list[np.ndarray], x: np.ndarray) -> np.ndarray | None:
    """Each hidden unit's input (before its activation) at inputs `x`, (points, units), for a network of one hidden
    layer of at most MOST_UNIT_LINES units; None for any other network.

    Where a unit's input is 0 its sigmoid is 0.5 (its tanh 0, its relu starts): on a 2-D set without features
    that is a straight line, the course's "one unit, one line"."""
    if layers is None or len(layers) != 2 or weights[0].shape[1] > MOST_UNIT_LINES:
        return None
    values = np.asarray(x, np.float64)
    if layers[0].features:
        values = apply_features(layers[0].features, values)
    inputs = values @ weights[0]
    return inputs + weights[1] if layers[0].bias else inputs


def input_grid(dataset, points_2d: int = GRID_POINTS_2D, points_1d: int = GRID_POINTS_1D):
    """The plane (or line) the pictures show: the data's range and a margin; (axes, inputs)."""
    if dataset.x_train.shape[1] == 2:
        from beanstrain.plots.toy import _grid

        grid_x, grid_y, inputs = _grid(dataset, points_2d)
        return (grid_x, grid_y), inputs
    points = np.concatenate([dataset.x_train, dataset.x_test])[:, 0]
    margin = (points.max() - points.min()) * 0.05
    xs = np.linspace(points.min() - margin, points.max() + margin, points_1d)
    return (xs,), xs[:, None].astype(np.float32)


@dataclass
class Replay:
    layers: list[DenseLayer]
    axes: tuple  # (xs,) for one input, (grid_x, grid_y) for two
    inputs: np.ndarray  # (points, features): the grid as the network takes it
    epochs: list  # the trace's snapshot epochs, fractional inside an epoch (empty without a trace)
    outputs: np.ndarray  # (snapshots, points, output units): the output at each snapshot
    units: list[np.ndarray]  # each layer's output over the grid with the trained weights: (points, units)
    steps: list[int] | None = None  # the trace's global optimizer step of each snapshot (None: not recorded)
    losses: np.ndarray | None = None  # (snapshots,): the run's loss on the training data at each snapshot
    accuracies: np.ndarray | None = None  # (snapshots,): its accuracy there, for classifiers

    @classmethod
    def of(cls, run) -> Replay | None:
        """The replay of a finished run (`plots.RunOutputs`); None when its network or data has no such view."""
        layers = dense_layers(run.model)
        if layers is None or run.dataset.is_image or run.dataset.x_train.shape[1] not in (1, 2):
            return None
        axes, inputs = input_grid(run.dataset)
        units = forward(layers, run.model.get_weights(), inputs)
        trace = run.trace
        if trace is None or trace.summarize or not trace.epochs:
            return cls(layers, axes, inputs, [], np.zeros((0, *units[-1].shape)), units)
        outputs = np.stack([forward(layers, snapshot, inputs)[-1] for snapshot in trace.snapshots])
        losses, accuracies = snapshot_metrics(run, layers, trace.snapshots)
        return cls(layers, axes, inputs, list(trace.epochs), outputs, units, trace.steps, losses, accuracies)

    @property
    def two_inputs(self) -> bool:
        return len(self.axes) == 2


def snapshot_metrics(run, layers: list[DenseLayer], snapshots) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The run's own loss (and accuracy) on the training points at each snapshot: what each frame draws.

    One forward pass per snapshot over the training set and one call of the Keras loss over all of them."""
    dataset, loss_name = run.dataset, run.loss_name
    if loss_name is None:
        return None, None
    x = dataset.x_train
    y = np.asarray(encode_targets(dataset.y_train, dataset.task, loss_name, dataset.num_classes), np.float32)
    y = y.reshape(len(x), -1)
    predictions = np.stack([forward(layers, snapshot, x)[-1] for snapshot in snapshots]).astype(np.float32)
    count, samples = predictions.shape[:2]
    with np.errstate(all="ignore"):
        targets = np.broadcast_to(y[None], (count, *y.shape)).reshape(count * samples, -1)
        per_sample = make_loss(loss_name).call(targets, predictions.reshape(count * samples, -1))
    losses = np.asarray(per_sample, np.float64).reshape(count, samples).mean(axis=1)
    kind = accuracy_kind(dataset.task, loss_name)
    if not kind:
        return losses, None
    return losses, np.array([count_correct(kind, y, prediction) / samples for prediction in predictions])
