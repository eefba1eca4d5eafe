"""Which pictures a finished run gets, and what each is drawn from: the registry of pictures.

    >>> import tempfile, numpy as np
    >>> from beanstrain.data import load_dataset
    >>> dataset = load_dataset("beans4", samples=40, noise=0.0, seed=0)
    >>> run = RunOutputs(dataset, predict=lambda x: np.full((len(x), 1), 0.5), test_outputs=None,
    ...                  columns=["loss"], rows=[[0.3], [0.2]])
    >>> draw_run_pictures(Path(tempfile.mkdtemp()), run)
    ['data.png', 'boundary.png', 'surface.png', 'history.png']

`PICTURES` lists, for each kind of dataset, the files a finished run gets,
in order, each with the function that draws it and when it applies; a new
picture is a drawing function in this folder and an entry there.  The
drawing modules (`toy`, `images`, `history`, `units`, `levels`, `animate`)
import matplotlib when they draw (`plots.figure`), and every file is written
atomically.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from beanstrain.data.loading import Dataset
from beanstrain.objectives import encode_targets
from beanstrain.plots.animate import animate
from beanstrain.plots.gradients import plot_gradients
from beanstrain.plots.history import plot_history
from beanstrain.plots.images import plot_confusion, plot_samples, plot_test_predictions, plot_wrong
from beanstrain.plots.levels import plot_levels
from beanstrain.plots.network import plot_network
from beanstrain.plots.replay import Replay, dense_layers, hidden_unit_inputs
from beanstrain.plots.toy import plot_data, plot_decision_boundary, plot_fit_curve, plot_surface
from beanstrain.plots.units import plot_cost, plot_neurons, plot_weights, single_weight
from beanstrain.tasks import BINARY
from beanstrain.trace import Trace


@dataclass(frozen=True)
class RunOutputs:
    """What a finished run's pictures are drawn from."""

    dataset: Dataset
    predict: Callable[[np.ndarray], np.ndarray] | None  # inputs -> the network's outputs
    test_outputs: np.ndarray | None  # the network's outputs for the test set, predicted once
    columns: list[str]  # the history's columns
    rows: list[list[float]]  # one row per epoch
    model: object = None  # the trained Keras network: its units' views and its loss surface
    trace: Trace | None = None  # its weights at the snapshot epochs (`beanstrain.trace`)
    loss_name: str | None = None  # the loss it was trained on
    animation: str = "gif"  # `animate.ANIMATIONS`: the training animation's format, or "none"
    recipe: object = None  # the run's recipes.Recipe, for pictures of its settings (None: not known)

    @functools.cached_property
    def replay(self):
        """The network's outputs over one grid of inputs at every snapshot, computed once for every picture."""
        return Replay.of(self)


def _data(run: RunOutputs, path: Path) -> str:
    return plot_data(run.dataset, path)


def _fit_curve(run: RunOutputs, path: Path) -> str:
    return plot_fit_curve(run.dataset, run.predict, path)


def _boundary(run: RunOutputs, path: Path) -> str:
    return plot_decision_boundary(run.dataset, run.predict, path, unit_inputs_of(run.model))


def unit_inputs_of(model):
    """grid -> each hidden unit's input, for a network of one hidden layer (its units' lines); else None."""
    layers = dense_layers(model)
    weights = model.get_weights() if layers else None
    if layers is None or hidden_unit_inputs(layers, weights, np.zeros((1, 2))) is None:
        return None
    return lambda grid: hidden_unit_inputs(layers, weights, grid)


def _surface(run: RunOutputs, path: Path) -> str:
    return plot_surface(run.dataset, run.predict, path)


def _samples(run: RunOutputs, path: Path) -> str:
    data = run.dataset
    return plot_samples(data.x_train, data.y_train, data.class_names, path, data.name)


def _confusion(run: RunOutputs, path: Path) -> str:
    data = run.dataset
    return plot_confusion(data.y_test, run.test_outputs, data.class_names, path, data.name)


def _test_predictions(run: RunOutputs, path: Path) -> str:
    data = run.dataset
    return plot_test_predictions(data.x_test, data.y_test, run.test_outputs, data.class_names, path, data.name)


def _wrong(run: RunOutputs, path: Path) -> str:
    data = run.dataset
    return plot_wrong(data.x_test, data.y_test, run.test_outputs, data.class_names, path, data.name)


def _history(run: RunOutputs, path: Path) -> str:
    bands = run.trace if run.trace is not None and run.trace.summarize and run.trace.epochs else None
    return plot_history(run.columns, run.rows, path, f"{run.dataset.name}: training", bands, _layer_names(run))


def _layer_names(run: RunOutputs) -> list[str]:
    """The names of the network's layers that hold weights, for the pictures' labels."""
    return [layer.name for layer in getattr(run.model, "layers", []) if layer.weights]


def _animation(run: RunOutputs, path: Path) -> str:
    return animate(run, path)


def _neurons(run: RunOutputs, path: Path) -> str:
    return plot_neurons(run.replay, run.dataset, path)


def _network(run: RunOutputs, path: Path) -> str:
    return plot_network(run.model, run.replay, run.dataset, path)


def _gradients(run: RunOutputs, path: Path) -> str:
    return plot_gradients(run.trace, f"{run.dataset.name}: the size of each layer's gradient", path)


def _measured_gradients(run: RunOutputs) -> bool:
    """A trace that measured each layer's gradient at two snapshots or more (dense networks)."""
    return run.trace is not None and len(run.trace.gradient_norms) > 1


def _weights(run: RunOutputs, path: Path) -> str:
    return plot_weights(run.trace, run.dataset.name, path)


def _cost(run: RunOutputs, path: Path) -> str:
    data = run.dataset
    return plot_cost(run, data.x_train, encode_targets(data.y_train, data.task, run.loss_name, data.num_classes),
                     path)


def _levels(run: RunOutputs, path: Path) -> str:
    recipe = run.recipe
    return plot_levels(recipe.levels, recipe.level_mapping, recipe.level_nonlinearity, path,
                       f"{run.dataset.name}, {recipe.model}")


def _always(run: RunOutputs) -> bool:
    return True


def _one_feature(run: RunOutputs) -> bool:
    return run.dataset.x_train.shape[1] == 1


def _two_features_classified(run: RunOutputs) -> bool:
    """Two inputs and two classes: the pictures of P(class 1) over the plane (a CSV of 3 classes has no such)."""
    return run.dataset.x_train.shape[1] == 2 and run.dataset.task == BINARY


def _trained_epochs(run: RunOutputs) -> bool:
    return bool(run.rows)


def _on_levels(run: RunOutputs) -> bool:
    return bool(getattr(run.recipe, "levels", 0))


def _traced(run: RunOutputs) -> bool:
    """A trace of every weight (not a summary) with the initial weights and at least one epoch after them."""
    return run.trace is not None and not run.trace.summarize and len(run.trace.epochs) > 1


def _animated_as(animation: str):
    def applies(run: RunOutputs) -> bool:
        drawable = _one_feature(run) or _two_features_classified(run)
        return run.animation == animation and drawable and _traced(run) and run.replay is not None
    return applies


def _dense_network(run: RunOutputs) -> bool:
    """A network of dense layers (the generated sets' networks, described ones too)."""
    return dense_layers(run.model) is not None


def _hidden_units(run: RunOutputs) -> bool:
    return run.replay is not None and len(run.replay.layers) > 1


def _single_weight(run: RunOutputs) -> bool:
    """A one-input neuron (w and b) or a network whose only weight is w, on a one-input set."""
    return (_traced(run) and _one_feature(run) and run.loss_name is not None and run.replay is not None
            and single_weight(run.trace.snapshots[-1]))


@dataclass(frozen=True)
class Picture:
    file: str
    draw: Callable[[RunOutputs, Path], str]
    applies: Callable[[RunOutputs], bool] = _always


PICTURES: dict[str, tuple[Picture, ...]] = {
    "toy": (
        Picture("data.png", _data),
        Picture("fit.png", _fit_curve, _one_feature),
        Picture("boundary.png", _boundary, _two_features_classified),
        Picture("surface.png", _surface, _two_features_classified),
        Picture("history.png", _history, _trained_epochs),
        Picture("training.gif", _animation, _animated_as("gif")),
        Picture("training.mp4", _animation, _animated_as("mp4")),
        Picture("neurons.png", _neurons, _hidden_units),
        Picture("network.png", _network, _dense_network),
        Picture("weights.png", _weights, _traced),
        Picture("gradients.png", _gradients, _measured_gradients),
        Picture("cost.png", _cost, _single_weight),
    ),
    "image": (
        Picture("samples.png", _samples),
        Picture("confusion.png", _confusion),
        Picture("predictions.png", _test_predictions),
        Picture("wrong.png", _wrong),
        Picture("history.png", _history, _trained_epochs),
        Picture("gradients.png", _gradients, _measured_gradients),
        Picture("levels.png", _levels, _on_levels),
    ),
}


def draw_run_pictures(run_dir: Path, run: RunOutputs) -> list[str]:
    """Every picture the run's kind of dataset gets, into its folder; returns the file names written."""
    pictures = PICTURES["image" if run.dataset.is_image else "toy"]
    return [picture.draw(run, Path(run_dir) / picture.file) for picture in pictures if picture.applies(run)]
