"""Several runs' metric per epoch on one axis, each line labelled by what sets the run apart.

    >>> import tempfile
    >>> from beanstrain.compare import ComparedRun
    >>> compared = [ComparedRun(Path(f"runs/beans7-neuron/{seed}"), {}, {}, ["loss", "test_accuracy"],
    ...                         [[0.5, 0.7 + seed / 10], [0.25, 0.9]], label=f"seed {seed}") for seed in (0, 1)]
    >>> draw_comparison(compared, "test_accuracy", Path(tempfile.mkdtemp()) / "compare.png")
    'compare.png'

`draw_curves` draws on an axis it is given, so a larger figure (a sweep's)
can hold the comparison as one of its panels; `draw_comparison` is the
whole picture `beanstrain compare --plot` saves.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from beanstrain.plots.figure import pyplot, save_figure
from beanstrain.plots.toy import plot_decision_boundary

# Beyond this many runs the legend goes below the axis, where it cannot hide a line.
LEGEND_INSIDE = 4


def draw_curves(ax, runs, metric: str, linewidth: float = 1.5) -> list:
    """One line per run: `metric` (a history column every run has) per epoch, labelled with the run's label;
    returns the lines drawn."""
    pyplot()  # Agg, before anything else of matplotlib's is touched
    import matplotlib

    colours = matplotlib.colormaps["tab10" if len(runs) <= 10 else "tab20"]
    from matplotlib.ticker import MaxNLocator

    values, lines = [], []
    for index, run in enumerate(runs):
        column = np.asarray(run.column(metric), dtype=float)
        values.append(column)
        epochs = np.arange(1, len(column) + 1)
        lines += ax.plot(epochs, column, label=run.label or str(run.run_dir), color=colours(index % colours.N),
                         marker="o" if len(column) <= 30 else None, markersize=3, linewidth=linewidth)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers
    if "loss" in metric and values and all(np.all(column > 0) for column in values):
        ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel(metric.replace("_", " "))
    ax.grid(alpha=0.3)
    if len(runs) <= LEGEND_INSIDE:
        ax.legend(loc="best", fontsize=8)
    else:
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=2, fontsize=8)
    return lines


def draw_comparison(runs, metric: str, path: Path, boundaries=None) -> str:
    """The comparison as a picture of its own, written atomically; returns the file's name.

    Given `boundaries` (`compare.shared_boundaries`: runs on one 2-D data set), a row of panels above the
    curves: each run's decision boundary with its hidden units' lines, titled by what sets the run apart."""
    plt = pyplot()
    if not boundaries:
        figure, ax = plt.subplots(figsize=(7, 4.5))
    else:
        dataset, panels = boundaries
        figure = plt.figure(figsize=(max(7.0, 3.3 * len(panels)), 7.8), layout="constrained")
        grid = figure.add_gridspec(2, len(panels), height_ratios=(1.1, 1))
        for column, (run, (predict, unit_inputs)) in enumerate(zip(runs, panels)):
            panel = figure.add_subplot(grid[0, column])
            plot_decision_boundary(dataset, predict, None, unit_inputs, title=run.label or run.run_dir.name,
                                   axes=panel)
            panel.set_aspect("equal", adjustable="box")
            panel.set_xlabel("x0", fontsize=8)
            if column == 0:
                panel.set_ylabel("x1", fontsize=8)
            panel.tick_params(labelsize=7)
            if unit_inputs is not None:
                panel.legend(*_unit_legend(panel), loc="upper right", fontsize=6, framealpha=0.8)
        ax = figure.add_subplot(grid[1, :])
    draw_curves(ax, runs, metric)
    ax.set_title(f"{metric.replace('_', ' ')} per epoch, {len(runs)} runs")
    return save_figure(figure, Path(path))


def _unit_legend(panel):
    """Only the units' lines in a panel's legend (the points' colours are the usual classes)."""
    handles, labels = panel.get_legend_handles_labels()
    kept = [(handle, label) for handle, label in zip(handles, labels) if label.startswith("unit")]
    return [handle for handle, _ in kept], [label for _, label in kept]
