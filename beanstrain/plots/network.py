"""network.png: a dense network drawn as the TensorFlow Playground draws it.

Inputs (or the input features) on the left, one node per unit, layer by layer, the output on the
right.  Each node is a small picture of what that unit computes: its value over the input plane
(2-D sets) or a curve along the input (1-D sets), from the trained weights (`replay.Replay`).
Each link is a weight: its width grows with the weight's size and its colour is the weight's sign
and size on one diverging colour map, whose scale is shown.  A set with more inputs (gender) gets
plain nodes.  Up to `MOST_UNITS` units a layer and `MOST_LAYERS` hidden layers are drawn; a larger
network has its first units of each layer (and its first layers) drawn, and the picture says so.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from beanstrain.features import apply_features
from beanstrain.plots.figure import pyplot, save_figure

MOST_UNITS = 8  # units drawn per layer, as the Playground allows
MOST_LAYERS = 6  # hidden layers drawn
NODE_INCHES = 0.62  # a node's picture
COLUMN_INCHES = 1.75  # from one layer to the next
ROW_INCHES = 0.86  # from one node to the next
LEFT_INCHES, RIGHT_INCHES = 0.8, 1.2  # the input names; the weights' colour scale
TOP_INCHES, BOTTOM_INCHES = 1.15, 0.3  # the title and the layers' names; a margin
LINK_COLOURS = "PuOr_r"  # one diverging map for every weight: purple negative, orange positive


def layer_kernels(model) -> list[np.ndarray]:
    """Each Dense layer's kernel, in order (the biases are not links)."""
    return [layer.get_weights()[0] for layer in model.layers if type(layer).__name__ == "Dense"]


def input_names(model, inputs: int, dataset_name: str) -> list[str]:
    """The input nodes' names: the features the network computes first, else x1, x2 (or gender's three)."""
    for layer in model.layers:
        if type(layer).__name__ == "Features":
            return list(layer.names)
    if dataset_name == "gender":
        return ["weight", "height", "age"]
    return [f"x{number}" for number in range(1, inputs + 1)]


def plot_network(model, replay, dataset, path: Path) -> str:
    """The network with each unit's picture and each weight's link; returns the file's name."""
    plt = pyplot()
    from matplotlib.collections import LineCollection
    from matplotlib.colors import Normalize

    kernels = layer_kernels(model)
    names = input_names(model, dataset.x_train.shape[1], dataset.name)
    widths = [len(names), *(kernel.shape[1] for kernel in kernels)]
    hidden_drawn = min(len(widths) - 2, MOST_LAYERS)  # a network of 8 hidden layers shows its first 6
    shown_layers = [*range(hidden_drawn + 1), len(widths) - 1]  # inputs, the first hidden layers, the output
    shown = [min(widths[layer], MOST_UNITS) for layer in shown_layers]
    cut = any(widths[layer] > MOST_UNITS for layer in shown_layers) or hidden_drawn < len(widths) - 2

    columns, rows = len(shown_layers), max(shown)
    figure_width = LEFT_INCHES + (columns - 1) * COLUMN_INCHES + NODE_INCHES + RIGHT_INCHES
    figure_height = TOP_INCHES + (rows - 1) * ROW_INCHES + NODE_INCHES + BOTTOM_INCHES
    figure = plt.figure(figsize=(figure_width, figure_height))

    def centre(column: int, row: int, count: int) -> tuple[float, float]:
        """A node's centre in figure fractions: columns spread across, each layer's nodes centred vertically."""
        x = (LEFT_INCHES + column * COLUMN_INCHES + NODE_INCHES / 2) / figure_width
        top = TOP_INCHES + (rows - count) * ROW_INCHES / 2
        y = 1 - (top + row * ROW_INCHES + NODE_INCHES / 2) / figure_height
        return x, y

    # The links first, on one axes under the nodes: kernel[i, j] links unit i below to unit j above.
    links = figure.add_axes((0, 0, 1, 1), zorder=0)
    links.set_xlim(0, 1)
    links.set_ylim(0, 1)
    links.axis("off")
    pairs = list(zip(shown_layers, shown_layers[1:]))
    largest = max(float(np.abs(kernels[above - 1]).max()) for _, above in pairs) or 1.0
    norm = Normalize(-largest, largest)
    colour_map = plt.get_cmap(LINK_COLOURS)
    segments, colours, line_widths = [], [], []
    for column, (below, above) in enumerate(pairs):
        kernel = kernels[above - 1]
        if above - below > 1:  # layers left out between: no weights to draw, a mark that some are missing
            (x_below, _), (x_above, _) = centre(column, 0, 1), centre(column + 1, 0, 1)
            links.text((x_below + x_above) / 2, 0.5, f"· · ·\n{above - below - 1} more\nlayer"
                       + "s" * (above - below > 2), ha="center", va="center", fontsize=8, color="dimgray")
            continue
        for i in range(shown[column]):
            for j in range(shown[column + 1]):
                weight = float(kernel[i, j])
                segments.append([centre(column, i, shown[column]), centre(column + 1, j, shown[column + 1])])
                colours.append(colour_map(norm(weight)))
                line_widths.append(0.4 + 4.0 * abs(weight) / largest)
    links.add_collection(LineCollection(segments, colors=colours, linewidths=line_widths, zorder=0))

    pictures = _unit_pictures(replay) if replay is not None else None
    for column, layer in enumerate(shown_layers):
        for row in range(shown[column]):
            x, y = centre(column, row, shown[column])
            node = figure.add_axes((x - NODE_INCHES / 2 / figure_width, y - NODE_INCHES / 2 / figure_height,
                                    NODE_INCHES / figure_width, NODE_INCHES / figure_height), zorder=2)
            _draw_node(node, replay, None if pictures is None else pictures[layer][:, row], layer == len(widths) - 1)
            if layer == 0:
                node.text(-0.12, 0.5, names[row], transform=node.transAxes, ha="right", va="center", fontsize=8)
        label = "inputs" if layer == 0 else "output" if layer == len(widths) - 1 else f"hidden {layer}"
        top_x, top_y = centre(column, 0, shown[column])
        figure.text(top_x, top_y + (NODE_INCHES / 2 + 0.12) / figure_height,
                    f"{label}\n{widths[layer]} unit{'s' * (widths[layer] != 1)}" if layer else label,
                    ha="center", va="bottom", fontsize=8)

    scale_height = min(0.7, 2.4 / figure_height)
    scale = figure.add_axes((1 - 0.75 / figure_width, (1 - scale_height) / 2 - 0.05, 0.12 / figure_width,
                             scale_height), zorder=3)
    from matplotlib.cm import ScalarMappable

    figure.colorbar(ScalarMappable(norm=norm, cmap=colour_map), cax=scale)
    scale.tick_params(labelsize=7)
    scale.set_title("weight", fontsize=7)
    title = f"{dataset.name}: the network"
    if replay is not None:
        title += f", each unit over the input {'plane' if replay.two_inputs else 'axis'}"
    if cut:
        title += f"\n(too large to draw whole: the first {MOST_UNITS} units of each layer"
        title += f" and the first {MOST_LAYERS} hidden layers)" if hidden_drawn < len(widths) - 2 else ")"
    figure.text(0.5, 1 - 0.12 / figure_height, title, ha="center", va="top", fontsize=9)
    if pictures is not None:
        figure.text(0.5, 0.1 / figure_height, "each unit: blue low, red high (sigmoids and the output on 0..1, "
                    "others centred on 0); each link: a weight", ha="center", va="bottom", fontsize=7, color="dimgray")
    return save_figure(figure, Path(path))


def _unit_pictures(replay) -> list[np.ndarray]:
    """Each layer's values over the grid, the inputs (or their features) first: (points, units) each."""
    inputs = np.asarray(replay.inputs, np.float64)
    if replay.layers[0].features:
        inputs = apply_features(replay.layers[0].features, inputs)
    return [inputs, *replay.units]


def _draw_node(node, replay, values, is_output: bool) -> None:
    """A unit's picture: its values as an image over the plane, or a curve along the input; a plain disc without."""
    node.set_xticks([])
    node.set_yticks([])
    if values is None:
        from matplotlib.patches import Circle

        node.add_patch(Circle((0.5, 0.5), 0.4, color="tab:gray"))
        node.set_xlim(0, 1)
        node.set_ylim(0, 1)
        node.axis("off")
        return
    if replay.two_inputs:
        grid_x = replay.axes[0]
        low, high = float(values.min()), float(values.max())
        if is_output or (low >= 0 and high <= 1):
            low, high = 0.0, 1.0  # probabilities and sigmoids: boundary.png's fixed scale
        else:
            largest = max(abs(low), abs(high)) or 1.0
            low, high = -largest, largest
        node.imshow(values.reshape(grid_x.shape), origin="lower", cmap="RdBu_r", vmin=low, vmax=high,
                    interpolation="bilinear", aspect="auto")
    else:
        node.plot(replay.axes[0], values, color="tab:red" if is_output else "black", linewidth=1.2)
        node.set_facecolor("#f4f4f4")
    for spine in node.spines.values():
        spine.set_linewidth(1.4 if is_output else 0.8)
