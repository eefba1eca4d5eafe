"""The pictures of a run on a generated set, as the course shows them.

    >>> import tempfile, numpy as np
    >>> from beanstrain.data import load_dataset
    >>> dataset = load_dataset("beans3", samples=40, noise=0.0, seed=0)
    >>> plot_fit_curve(dataset, lambda x: 1 / (1 + np.exp(-x)), Path(tempfile.mkdtemp()) / "fit.png")
    'fit.png'

`predict` maps an array of inputs to the network's outputs; the pictures
are the data, the fitted curve over the scatter for 1-D sets, and the
decision boundary and the 3-D prediction surface for 2-D sets.  Which of
them a run gets is `beanstrain.plots.PICTURES`'s.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from beanstrain.data import Dataset
from beanstrain.plots.figure import pyplot, save_figure
from beanstrain.tasks import MULTICLASS, REGRESSION

GRID_POINTS = 150  # per axis, for the decision boundary
# The 3-D surface is drawn as polygons; 50 per axis look as smooth and draw several times faster.
SURFACE_POINTS = 50
CLASS_COLOURS = ("tab:blue", "tab:red")
# The units' lines' colours: none of the two classes' (blue, red), nor the boundary's black.
UNIT_COLOURS = ("tab:green", "tab:purple", "tab:orange", "tab:brown", "tab:pink", "tab:olive", "tab:cyan", "tab:gray")


def _scatter_classes(axes, points: np.ndarray, labels: np.ndarray, marker: str, label_prefix: str, **style):
    # Two classes are blue and red; a CSV of more classes takes the units' colours for the rest.
    colours = CLASS_COLOURS + UNIT_COLOURS[:max(0, int(labels.max()) - 1)] if len(labels) else CLASS_COLOURS
    for value, colour in enumerate(colours):
        chosen = labels.round() == value
        axes.scatter(points[chosen, 0], points[chosen, 1], c=colour, marker=marker,
                     label=f"{label_prefix} class {value}", **style)


def plot_data(dataset: Dataset, path: Path) -> str:
    """The training data as the course first shows it."""
    plt = pyplot()
    figure, axes = plt.subplots(figsize=(6, 4.5))
    x, y = dataset.x_train, dataset.y_train
    if x.shape[1] == 1:
        axes.scatter(x[:, 0], y, s=14, c="tab:blue", label="train")
        axes.set_xlabel("size")
        axes.set_ylabel("toxicity")
    else:
        labels = y.argmax(axis=1) if dataset.task == MULTICLASS else y
        _scatter_classes(axes, x, labels, "o", "train", s=14)
        axes.set_xlabel("x0" if dataset.name != "gender" else "weight")
        axes.set_ylabel("x1" if dataset.name != "gender" else "height")
    axes.set_title(f"{dataset.name}: {len(x)} training points")
    axes.legend(loc="best", fontsize=8)
    return save_figure(figure, path)


def plot_fit_curve(dataset: Dataset, predict, path: Path) -> str:
    """1-D sets: train and test points with the network's prediction curve on top."""
    plt = pyplot()
    figure, axes = plt.subplots(figsize=(6, 4.5))
    low = min(dataset.x_train.min(), dataset.x_test.min())
    high = max(dataset.x_train.max(), dataset.x_test.max())
    grid = np.linspace(low, high, 400, dtype=np.float32)[:, None]
    axes.scatter(dataset.x_train[:, 0], dataset.y_train, s=14, c="tab:blue", label="train")
    axes.scatter(dataset.x_test[:, 0], dataset.y_test, s=18, c="tab:orange", marker="x", label="test")
    axes.plot(grid[:, 0], predict(grid)[:, 0], c="tab:red", linewidth=2, label="prediction")
    axes.set_xlabel("size")
    axes.set_ylabel("toxicity" if dataset.task == REGRESSION else "P(toxic)")
    axes.set_title(f"{dataset.name}: fitted curve")
    axes.legend(loc="best", fontsize=8)
    return save_figure(figure, path)


def _grid(dataset: Dataset, points_per_axis: int = GRID_POINTS):
    points = np.concatenate([dataset.x_train, dataset.x_test])
    low, high = points.min(axis=0), points.max(axis=0)
    margin = (high - low) * 0.08
    xs = np.linspace(low[0] - margin[0], high[0] + margin[0], points_per_axis)
    ys = np.linspace(low[1] - margin[1], high[1] + margin[1], points_per_axis)
    grid_x, grid_y = np.meshgrid(xs, ys)
    return grid_x, grid_y, np.stack([grid_x.ravel(), grid_y.ravel()], axis=1).astype(np.float32)


def plot_decision_boundary(dataset: Dataset, predict, path: Path, unit_inputs=None, title: str | None = None,
                           axes=None) -> str | None:
    """2-D sets: filled contour of P(class 1), the 0.5 boundary, train points and marked test points.

    Given `unit_inputs` (grid -> each hidden unit's input, `replay.hidden_unit_inputs`), each hidden unit's line
    too, where its input is 0, labelled "unit 1", "unit 2" ... Given `axes`, it draws there (one panel of
    compare's picture) and saves nothing."""
    plt = pyplot()
    grid_x, grid_y, grid = _grid(dataset)
    probability = predict(grid)[:, -1].reshape(grid_x.shape)
    own = axes is None
    if own:
        figure, axes = plt.subplots(figsize=(6, 5))
    filled = axes.contourf(grid_x, grid_y, probability, levels=np.linspace(0, 1, 11), cmap="RdBu_r", alpha=0.75)
    axes.contour(grid_x, grid_y, probability, levels=[0.5], colors="black", linewidths=1.5)
    if unit_inputs is not None:
        _draw_unit_lines(axes, grid_x, grid_y, unit_inputs(grid))
    if not own:
        _scatter_classes(axes, dataset.x_train, dataset.y_train, "o", "train", s=10, edgecolors="white",
                         linewidths=0.4)
        axes.set_title(title or dataset.name, fontsize=9)
        return None
    figure.colorbar(filled, ax=axes, label="P(class 1)")
    _scatter_classes(axes, dataset.x_train, dataset.y_train, "o", "train", s=16, edgecolors="white", linewidths=0.5)
    _scatter_classes(axes, dataset.x_test, dataset.y_test, "^", "test", s=26, edgecolors="black", linewidths=0.7)
    axes.set_xlabel("x0")
    axes.set_ylabel("x1")
    axes.set_title(title or f"{dataset.name}: decision boundary (black line: P = 0.5)")
    axes.legend(loc="upper right", fontsize=7, framealpha=0.8)
    return save_figure(figure, path)


def unit_lines(grid_x: np.ndarray, grid_y: np.ndarray, unit_inputs: np.ndarray) -> list[list[np.ndarray]]:
    """For each unit, the segments (arrays of (x0, x1) points) where its input is 0 over the grid."""
    from contourpy import contour_generator

    return [contour_generator(grid_x, grid_y, unit_inputs[:, unit].reshape(grid_x.shape)).lines(0.0)
            for unit in range(unit_inputs.shape[1])]


def _draw_unit_lines(axes, grid_x, grid_y, inputs) -> None:
    """Each hidden unit's line (input 0), dashed in its own colour, labelled at its middle, kept to the plane."""
    limits = axes.get_xlim(), axes.get_ylim()
    for unit, segments in enumerate(unit_lines(grid_x, grid_y, inputs)):
        colour = UNIT_COLOURS[unit % len(UNIT_COLOURS)]
        for number, segment in enumerate(segments):
            axes.plot(segment[:, 0], segment[:, 1], color=colour, linestyle="--", linewidth=1.6,
                      label=f"unit {unit + 1}: input 0" if number == 0 else None)
        if segments:
            longest = max(segments, key=len)
            middle = longest[len(longest) // 2]
            axes.annotate(f"{unit + 1}", middle, color="white", fontsize=7, fontweight="bold", ha="center",
                          va="center", bbox={"boxstyle": "circle,pad=0.15", "facecolor": colour, "edgecolor": "none"})
    axes.set_xlim(*limits[0])
    axes.set_ylim(*limits[1])


def plot_surface(dataset: Dataset, predict, path: Path) -> str:
    """2-D sets: the course's 3-D view, the prediction surface over the scatter of (x0, x1, y)."""
    plt = pyplot()
    grid_x, grid_y, grid = _grid(dataset, SURFACE_POINTS)
    surface = predict(grid)[:, -1].reshape(grid_x.shape)
    figure = plt.figure(figsize=(7, 5.5))
    axes = figure.add_subplot(projection="3d")
    axes.plot_surface(grid_x, grid_y, surface, cmap="viridis", alpha=0.6, linewidth=0, antialiased=True)
    colours = np.where(dataset.y_train.round() == 1, CLASS_COLOURS[1], CLASS_COLOURS[0])
    axes.scatter(dataset.x_train[:, 0], dataset.x_train[:, 1], dataset.y_train, c=colours, s=10, depthshade=False)
    axes.set_xlabel("x0")
    axes.set_ylabel("x1")
    axes.set_zlabel("prediction")
    axes.set_title(f"{dataset.name}: prediction surface")
    return save_figure(figure, path)
