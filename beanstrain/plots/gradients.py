"""gradients.png: the size of each layer's gradient over training, from the run's trace.

The course's activation chapter warns that saturated sigmoids kill gradients: a deep sigmoid
stack's first layers get gradients many times smaller than its last, and learn slowly.  The
trace measures each Dense layer's kernel gradient (its L2 norm, on the first training samples)
at every snapshot, whatever engine trained the run; this draws one line per layer, first layer
darkest, on a log scale, so a vanishing gradient is seen beside a relu or tanh stack's.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from beanstrain.plots.figure import pyplot, save_figure

LINEAR_EPOCHS = 30  # runs up to this many epochs get a linear epoch axis


def plot_gradients(trace, title: str, path: Path) -> str:
    """One line per layer: its gradient's norm at each snapshot epoch; returns the file's name."""
    plt = pyplot()
    import matplotlib

    norms = np.stack(trace.gradient_norms)  # (snapshots, layers)
    epochs = np.asarray(trace.epochs, np.float64)
    layers = norms.shape[1]
    colours = matplotlib.colormaps["viridis"]
    figure, axes = plt.subplots(figsize=(7, 4.3))
    for layer, name in enumerate(trace.gradient_layers):
        values = norms[:, layer]
        shown = np.isfinite(values) & (values > 0)
        label = f"layer {layer + 1} ({name})" if layer < layers - 1 else f"output ({name})"
        axes.plot(epochs[shown], values[shown], color=colours(layer / max(1, layers - 1) * 0.9), linewidth=1.6,
                  label=label)
    axes.set_yscale("log")
    if epochs.max(initial=0) > LINEAR_EPOCHS:  # long runs change most early: a log scale spreads those epochs
        axes.set_xscale("symlog", linthresh=1)
        axes.set_xlabel("epoch (log scale after 1)")
    else:
        axes.set_xlabel("epoch")
    axes.set_xlim(left=0)
    axes.set_ylabel("size of the layer's kernel gradient")
    axes.grid(alpha=0.3, which="both")
    axes.legend(loc="best", fontsize=8, ncol=1 if layers <= 6 else 2)
    axes.set_title(title, fontsize=10)
    return save_figure(figure, Path(path))
