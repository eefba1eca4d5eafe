"""Loss and accuracy per epoch, the picture every run gets once it has trained an epoch.

An image run's picture also shows its layers' weights over the epochs, from
the percentiles its trace keeps (`beanstrain.trace`).

    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> plot_history(["loss", "test_loss"], [[0.5, 0.6], [0.25, 0.4]], folder / "history.png", "beans1: training")
    'history.png'
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from beanstrain.plots.figure import pyplot, save_figure


def plot_history(columns: list[str], rows: list[list[float]], path: Path, title: str, weight_trace=None,
                 layer_names=()) -> str:
    """Loss (and accuracy, when the task has one) per epoch, train and held-out; with `weight_trace` (a
    summarized `trace.Trace`), each layer's weights as a median and a 5-95 percentile band beside them."""
    plt = pyplot()
    values = np.asarray(rows, dtype=float).reshape(len(rows), len(columns))
    epochs = np.arange(1, len(rows) + 1)
    metrics = [name for name in ("loss", "accuracy") if name in columns]
    panels = len(metrics) + (weight_trace is not None)
    figure, all_axes = plt.subplots(1, panels, figsize=(5.5 * panels, 4), squeeze=False)
    if weight_trace is not None:
        from beanstrain.plots.units import summary_bands

        summary_bands(all_axes[0][-1], weight_trace, list(layer_names))
    for axes, metric in zip(all_axes[0], metrics):
        for index, column in enumerate(columns):
            if column == metric or column.endswith(f"_{metric}"):
                label = "train" if column == metric else column.split("_")[0]
                axes.plot(epochs, values[:, index], label=label)
        if metric == "loss" and np.all(values[:, columns.index("loss")] > 0):
            axes.set_yscale("log")
        axes.set_xlabel("epoch")
        axes.set_ylabel(metric)
        axes.legend(loc="best", fontsize=8)
        axes.grid(alpha=0.3)
    figure.suptitle(title)
    return save_figure(figure, path)
