"""Inside a toy network: what each unit computes, how every weight moved, and the cost surface it descended.

    >>> import tempfile
    >>> import numpy as np
    >>> from beanstrain.trace import Trace
    >>> trace = Trace(["dense/kernel", "dense/bias"])
    >>> trace.take({epoch: [np.full((1, 1), epoch / 10), np.full(1, -epoch / 20)] for epoch in range(11)})
    >>> plot_weights(trace, "beans1", Path(tempfile.mkdtemp()) / "weights.png")
    'weights.png'
    >>> single_weight(trace.snapshots[-1])    # w and b of a one-input neuron
    True

- `neurons.png`, the TensorFlow Playground's view: each unit's activation
  over the input plane (or along the input axis), a row of small panels per
  layer, the output last; a sigmoid or softmax output as boundary.png draws
  it (fixed 0..1 colours, the 0.5 line, the classes' colours).
- `weights.png`: every weight and bias over the epochs, a panel per layer;
  a layer with more than `MAX_LINES` weights is shown as percentile bands.
- `cost.png`, the course's cost lesson: for a one-input neuron (w and b), the
  loss over the (w, b) plane on the training data with the path the training
  took, beside the same surface in 3-D; for a network whose only weight is
  w, the loss over w with the path on the curve.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from beanstrain.objectives import make_loss
from beanstrain.plots.figure import pyplot, save_figure
from beanstrain.plots.replay import activate, dense_layers
from beanstrain.plots.toy import CLASS_COLOURS
from beanstrain.trace import PERCENTILES

MAX_LINES = 64  # a layer with more weights than this is drawn as bands
COST_POINTS = 80  # per axis of the (w, b) plane
PATH_COLOUR = "tab:red"
PROBABILITIES = ("sigmoid", "softmax")  # output activations drawn as probabilities, on boundary.png's 0..1 scale


def single_weight(weights) -> bool:
    """Whether a network's weights are one input's w, with or without one bias b: the cost pictures' networks."""
    shapes = [tuple(np.shape(weight)) for weight in weights]
    return shapes in ([(1, 1)], [(1, 1), (1,)])


def _layer_title(index: int, count: int, layer, units: int) -> str:
    kind = "output" if index == count - 1 else f"hidden layer {index + 1}"
    return f"{kind}: {units} {layer.activation} unit{'s' if units > 1 else ''}"


def plot_neurons(replay, dataset, path: Path) -> str:
    """Every unit's activation over the inputs, one row of panels per layer, with the trained weights."""
    plt = pyplot()
    columns = max(values.shape[1] for values in replay.units)
    rows = len(replay.units)
    size = (1.7, 1.55) if replay.two_inputs else (2.2, 1.5)
    # Fixed spacing: a layout engine over dozens of panels takes longer than drawing them.
    figure, panels = plt.subplots(rows, columns, figsize=(size[0] * columns + 1.2, size[1] * rows + 0.7),
                                  squeeze=False, gridspec_kw={"wspace": 0.12 if replay.two_inputs else 0.3,
                                                              "hspace": 0.3, "left": 0.09, "right": 0.9})
    for row, (layer, values) in enumerate(zip(replay.layers, replay.units)):
        low, high = float(values.min()), float(values.max())
        if high - low < 1e-9:
            low, high = low - 0.5, high + 0.5
        # The output as a probability: boundary.png's fixed 0..1 colours and its 0.5 line, not the panel's range.
        probability = row == rows - 1 and layer.activation in PROBABILITIES
        if probability:
            low, high = 0.0, 1.0
        shown = None
        for unit in range(columns):
            axes = panels[row][unit]
            if unit >= values.shape[1]:
                axes.axis("off")
                continue
            if replay.two_inputs:
                grid_x, grid_y = replay.axes
                extent = (grid_x.min(), grid_x.max(), grid_y.min(), grid_y.max())
                plane = values[:, unit].reshape(grid_x.shape)
                if probability:
                    shown = axes.imshow(plane, origin="lower", cmap=pyplot().get_cmap("RdBu_r", 10), vmin=0, vmax=1,
                                        alpha=0.75, aspect="auto", interpolation="nearest", extent=extent)
                    if plane.min() < 0.5 < plane.max():
                        axes.contour(grid_x, grid_y, plane, levels=[0.5], colors="black", linewidths=1)
                else:
                    shown = axes.imshow(plane, origin="lower", cmap="viridis", vmin=low, vmax=high, aspect="auto",
                                        interpolation="nearest", extent=extent)
                if row == rows - 1:
                    labels = dataset.y_train.argmax(axis=1) if dataset.y_train.ndim > 1 else dataset.y_train
                    labels = np.asarray(labels).round().astype(int)
                    palette = list(CLASS_COLOURS) + [f"C{index}" for index in range(2, 10)]
                    axes.scatter(*dataset.x_train.T, c=[palette[label % len(palette)] for label in labels],
                                 s=5, edgecolors="black", linewidths=0.2)
                axes.set_xlim(extent[:2])
                axes.set_ylim(extent[2:])
                axes.set_xticks([])
                axes.set_yticks([])
            else:
                axes.plot(replay.axes[0], values[:, unit], c="tab:purple", linewidth=1.5)
                if probability:
                    axes.axhline(0.5, color="black", linewidth=0.8, linestyle="--")
                axes.set_ylim(low - 0.05 * (high - low), high + 0.05 * (high - low))
                axes.tick_params(labelsize=6)
                axes.grid(alpha=0.3)
            axes.set_title(f"unit {unit + 1}", fontsize=7, pad=2)
        panels[row][0].set_ylabel(_layer_title(row, rows, layer, values.shape[1]).replace(": ", ":\n"),
                                  fontsize=7)
        if shown is not None:
            box = panels[row][values.shape[1] - 1].get_position()
            legend = figure.add_axes((box.x1 + 0.01, box.y0, 0.012, box.height))
            figure.colorbar(shown, cax=legend).ax.tick_params(labelsize=6)
    inputs = "over the input plane (x0 across, x1 up)" if replay.two_inputs else "along the input"
    figure.suptitle(f"{dataset.name}: each unit's activation {inputs}", fontsize=10)
    return save_figure(figure, path)


def plot_weights(trace, dataset_name: str, path: Path) -> str:
    """Every weight and bias of each layer over the epochs (bands for large layers), log-scaled epochs."""
    plt = pyplot()
    groups = _layer_groups(trace.names, [])
    groups = [(f"hidden layer {number + 1}" if number < len(groups) - 1 else "output", indices)
              for number, (_, indices) in enumerate(groups)]
    columns = min(len(groups), 2)
    figure_rows = -(-len(groups) // columns)
    figure, panels = plt.subplots(figure_rows, columns, figsize=(5.2 * columns, 3.4 * figure_rows), squeeze=False,
                                  gridspec_kw={"hspace": 0.45, "wspace": 0.2})
    epochs = np.asarray(trace.epochs)
    for axes, (layer, indices) in zip(panels.flat, groups):
        values = [trace.weight(index).reshape(len(epochs), -1) for index in indices]
        count = sum(value.shape[1] for value in values)
        if count > MAX_LINES:
            _bands(axes, epochs, np.concatenate(values, axis=1))
        else:
            for index, value in zip(indices, values):
                is_bias = trace.names[index].endswith("bias")
                for column in range(value.shape[1]):
                    axes.plot(epochs, value[:, column], linewidth=1.2, linestyle="--" if is_bias else "-",
                              label=_weight_label(trace.names[index], trace.snapshots[0][index].shape, column)
                              if count <= 12 else None)
            if count <= 12:
                axes.legend(fontsize=6, loc="best", ncol=2)
        # Linear up to the first snapshot after the start (an epoch, or a step's fraction of one), log beyond.
        axes.set_xscale("symlog", linthresh=min(1.0, float(epochs[1])) if len(epochs) > 1 else 1.0)
        axes.set_xlim(0, max(float(epochs[1]) if len(epochs) > 1 else 1.0, float(epochs[-1])))
        biases = sum(value.shape[1] for index, value in zip(indices, values) if trace.names[index].endswith("bias"))
        axes.set_title(_weights_title(layer, count - biases, biases), fontsize=9)
        axes.set_xlabel("epoch (log scale)")
        axes.grid(alpha=0.3)
    for axes in panels.flat[len(groups):]:
        axes.axis("off")
    figure.suptitle(f"{dataset_name}: weights during training", fontsize=10)
    return save_figure(figure, path)


def _weights_title(layer: str, weights: int, biases: int) -> str:
    """The panel's title: how many weights and biases the layer has, each word singular or plural as it counts.

    >>> _weights_title("output", 1, 0), _weights_title("output", 1, 1)
    ('output: 1 weight', 'output: 1 weight, 1 bias (dashed)')
    >>> _weights_title("hidden layer 1", 900, 30)
    'hidden layer 1: 900 weights, 30 biases (percentile bands)'
    """
    text = f"{layer}: {weights} weight{'' if weights == 1 else 's'}"
    if biases:
        text += f", {biases} bias{'' if biases == 1 else 'es'}"
    if weights + biases > MAX_LINES:
        return text + " (percentile bands)"
    return text + (" (dashed)" if biases else "")


def _layer_groups(names: list[str], layer_names: list[str]) -> list[tuple[str, list[int]]]:
    """Weight indices per layer, in order: `dense/kernel`, `dense/bias` -> ("dense", [0, 1])."""
    groups: dict[str, list[int]] = {}
    for index, name in enumerate(names):
        groups.setdefault(name.rsplit("/", 1)[0], []).append(index)
    labels = layer_names if len(layer_names) == len(groups) else list(groups)
    return list(zip(labels, groups.values()))


def _weight_label(name: str, shape: tuple, column: int) -> str:
    """`w[i,j]`: from input i to unit j; `b[j]`: unit j's bias (no index for a layer of one)."""
    if name.endswith("bias"):
        return "b" if shape[-1] == 1 else f"b[{column}]"
    if shape[-1] == 1:
        return "w" if shape[0] == 1 else f"w[{column}]"
    return "w[{},{}]".format(*np.unravel_index(column, shape))


def _bands(axes, epochs, values) -> None:
    """The spread of many weights: 5-95 and 25-75 percentile bands and the median."""
    low, quarter, median, upper, high = np.percentile(values, [5, 25, 50, 75, 95], axis=1)
    axes.fill_between(epochs, low, high, alpha=0.2, color="tab:blue", label="5-95%")
    axes.fill_between(epochs, quarter, upper, alpha=0.35, color="tab:blue", label="25-75%")
    axes.plot(epochs, median, color="tab:blue", linewidth=1.2, label="median")
    axes.legend(fontsize=6, loc="best")


def summary_bands(axes, trace, layer_names: list[str]) -> None:
    """An image run's weights: for each layer's kernel, its median and 5-95 band over the epochs."""
    epochs = np.asarray(trace.epochs)
    low, middle, high = (PERCENTILES.index(value) for value in (5, 50, 95))
    groups = _layer_groups(trace.names, layer_names)
    colours = pyplot().get_cmap("tab10")
    for number, (layer, indices) in enumerate(groups):
        kernel = trace.weight(indices[0])
        colour = colours(number % 10)
        # Light fills with their edges drawn: overlapping bands stay tellable apart.
        axes.fill_between(epochs, kernel[:, low], kernel[:, high], color=colour, alpha=0.1)
        for edge in (low, high):
            axes.plot(epochs, kernel[:, edge], color=colour, linewidth=0.8, linestyle="--")
        axes.plot(epochs, kernel[:, middle], color=colour, linewidth=1.5, label=layer)
    axes.set_xlabel("epoch")
    axes.set_ylabel("weights")
    axes.set_title("each layer's weights: median (line), 5% and 95% (dashed)", fontsize=9)
    axes.legend(fontsize=7, loc="best")
    axes.grid(alpha=0.3)


def loss_over_weights(model, x: np.ndarray, y: np.ndarray, loss_name: str, w: np.ndarray,
                      b: np.ndarray | None) -> np.ndarray:
    """The run's loss on (x, y) for a one-input neuron with each weight `w` (and bias `b`), same shape as `w`.

    The network's own output activation and the run's own Keras loss give the values, so the point the
    training ended at has the loss the trained network has.
    """
    activation = dense_layers(model)[-1].activation
    flat_w = np.asarray(w, np.float64).reshape(-1, 1, 1)
    flat_b = 0.0 if b is None else np.asarray(b, np.float64).reshape(-1, 1, 1)
    outputs = activate(activation, flat_w * np.asarray(x, np.float64)[None] + flat_b)  # (points, samples, 1)
    targets = np.broadcast_to(np.asarray(y, np.float32).reshape(1, len(x), -1), outputs.shape)
    per_sample = make_loss(loss_name).call(targets, outputs.astype(np.float32))
    return np.asarray(per_sample).mean(axis=1).reshape(np.shape(w))


def _span(path: np.ndarray) -> np.ndarray:
    low, high = float(path.min()), float(path.max())
    margin = max((high - low) * 0.6, 1.0)
    return np.linspace(low - margin, high + margin, COST_POINTS)


def plot_cost(run, x: np.ndarray, y: np.ndarray, path: Path) -> str:
    """The loss over the neuron's weights on the training data, with the path its training took."""
    plt = pyplot()
    trace, model, name = run.trace, run.model, run.dataset.name
    path_w = trace.weight(0).reshape(-1)
    has_bias = len(trace.names) == 2
    if not has_bias:
        ws = _span(path_w)
        curve = loss_over_weights(model, x, y, run.loss_name, ws, None)
        steps = loss_over_weights(model, x, y, run.loss_name, path_w, None)
        figure, (axes, walk) = plt.subplots(1, 2, figsize=(11, 4.5), gridspec_kw={"width_ratios": (1.1, 1)})
        axes.plot(ws, curve, color="tab:blue", linewidth=2, label="loss")
        axes.plot(path_w, steps, "o-", color=PATH_COLOUR, markersize=3, linewidth=1, label="training path")
        _ends(axes, path_w, steps)
        axes.set_xlabel("w")
        axes.set_ylabel(f"loss ({run.loss_name})")
        axes.set_title(f"{name}: the loss over w, and the steps training took", fontsize=10)
        axes.legend(fontsize=8)
        axes.grid(alpha=0.3)
        _walk(walk, trace, path_w)
        rule = _rule(run.recipe)
        if rule:
            figure.suptitle(rule, fontsize=10)
        return save_figure(figure, path)
    path_b = trace.weight(1).reshape(-1)
    grid_w, grid_b = np.meshgrid(_span(path_w), _span(path_b))
    surface = loss_over_weights(model, x, y, run.loss_name, grid_w, grid_b)
    steps = loss_over_weights(model, x, y, run.loss_name, path_w, path_b)
    figure = plt.figure(figsize=(12, 5))
    axes = figure.add_subplot(1, 2, 1)
    filled = axes.contourf(grid_w, grid_b, surface, levels=25, cmap="viridis")
    axes.contour(grid_w, grid_b, surface, levels=12, colors="white", linewidths=0.4, alpha=0.5)
    figure.colorbar(filled, ax=axes, label=f"loss ({run.loss_name})")
    axes.plot(path_w, path_b, "o-", color=PATH_COLOUR, markersize=2.5, linewidth=1, label="training path")
    _ends(axes, path_w, path_b)
    axes.set_xlabel("w (weight)")
    axes.set_ylabel("b (bias)")
    axes.set_title(f"{name}: the loss over (w, b), and the path training took", fontsize=10)
    axes.legend(fontsize=8, loc="best")
    view = figure.add_subplot(1, 2, 2, projection="3d")
    view.plot_surface(grid_w, grid_b, surface, cmap="viridis", alpha=0.7, linewidth=0, rstride=2, cstride=2)
    view.plot(path_w, path_b, steps, color=PATH_COLOUR, linewidth=2, zorder=10)
    view.scatter([path_w[0], path_w[-1]], [path_b[0], path_b[-1]], [steps[0], steps[-1]],
                 c=["black", PATH_COLOUR], s=30, depthshade=False)
    view.set_xlabel("w")
    view.set_ylabel("b")
    view.set_zlabel("loss")
    view.set_title("the same surface in 3-D", fontsize=10)
    return save_figure(figure, path)


def _rule(recipe) -> str | None:
    """The update rule and its settings in a few words: what tells the lessons' pictures apart."""
    if recipe is None or not getattr(recipe, "optimizer", None):
        return None
    rate = f" {recipe.learning_rate:g}" if recipe.learning_rate is not None else ""
    batch = "the whole set" if recipe.batch_size == 0 else f"{recipe.batch_size}"
    return f"{recipe.name}: {recipe.optimizer}{rate}, batch {batch}"


def _walk(axes, trace, path_w: np.ndarray) -> None:
    """w against the optimizer step, up to a little after it settles: each rule's pace towards the best w."""
    steps = np.asarray(trace.steps if trace.steps is not None else trace.epochs, np.float64)
    unit = "optimizer step" if trace.steps is not None else "epoch"
    reach = np.abs(path_w[-1] - path_w[0])
    far = np.nonzero(np.abs(path_w - path_w[-1]) > 0.02 * max(reach, 1e-12))[0]
    settled = steps[min(far[-1] + 1, len(steps) - 1)] if len(far) else steps[-1]
    shown = steps <= max(2 * settled, steps[min(2, len(steps) - 1)])
    axes.plot(steps[shown], path_w[shown], "o-", color=PATH_COLOUR, markersize=3, linewidth=1)
    axes.axhline(path_w[-1], color="grey", linewidth=0.8, linestyle="--", label=f"final w = {path_w[-1]:.4f}")
    axes.set_xlabel(unit)
    axes.set_ylabel("w")
    axes.set_title(f"w over the first {steps[shown][-1]:,.0f} {unit}s (of {steps[-1]:,.0f})", fontsize=10)
    axes.legend(fontsize=8, loc="lower right")
    axes.grid(alpha=0.3)


def _ends(axes, first: np.ndarray, second: np.ndarray) -> None:
    axes.scatter([first[0]], [second[0]], marker="s", s=60, c="black", zorder=5, label="start (epoch 0)")
    axes.scatter([first[-1]], [second[-1]], marker="*", s=160, c=PATH_COLOUR, edgecolors="black", zorder=5,
                 label="end")
