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


def draw_comparison(runs, metric: str, path: Path) -> str:
    """The comparison as a picture of its own, written atomically; returns the file's name."""
    plt = pyplot()
    figure, ax = plt.subplots(figsize=(7, 4.5))
    draw_curves(ax, runs, metric)
    ax.set_title(f"{metric.replace('_', ' ')} per epoch, {len(runs)} runs")
    return save_figure(figure, Path(path))
