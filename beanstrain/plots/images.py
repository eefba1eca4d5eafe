"""The pictures of a run on MNIST or Fashion-MNIST, as the course draws them (matplotlib Agg only).

    >>> import tempfile
    >>> probabilities = np.eye(10)[[3, 3, 5]] * 0.8 + 0.02
    >>> plot_confusion(np.array([3, 5, 5]), probabilities, tuple("0123456789"),
    ...                Path(tempfile.mkdtemp()) / "confusion.png", "mnist")
    'confusion.png'

The pictures take the network's (N, 10) class probabilities for the test
images, predicted once (the run's test metrics come from the same pass)
and shared by every picture; which of them a run gets is
`beanstrain.plots.PICTURES`'s.  The course's prediction picture puts each image beside a bar
chart of its 10 probabilities, the predicted bar red and the true bar blue;
`plot_digit_predictions` draws the same for a person's own digits, which have
no true label, with the picture as given beside the 28x28 image the network saw.  Each file is written atomically.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from beanstrain.plots.figure import pyplot, save_figure

SAMPLE_GRID = 5  # the course's 5x5 grid of training samples
PAIRS_PER_ROW = 3  # image + bars pairs across one row of a prediction grid
DIGITS_PER_ROW = 2  # picture + network input + bars, across one row of `predict --plot`
PREDICTION_ROWS = 4
WRONG_SHOWN = 12
PREDICTED_COLOUR, TRUE_COLOUR, OTHER_COLOUR = "tab:red", "tab:blue", "lightgrey"


def _show_image(axes, image: np.ndarray, title: str) -> None:
    axes.imshow(np.asarray(image).reshape(28, 28), cmap="gray", vmin=0.0, vmax=1.0)
    axes.set_title(title, fontsize=8)
    axes.set_xticks([])
    axes.set_yticks([])


def _probability_bars(axes, probabilities: np.ndarray, true_class: int | None = None) -> None:
    """The 10 class probabilities as bars: the predicted bar red, the true bar blue (when known)."""
    predicted = int(np.argmax(probabilities))
    colours = [OTHER_COLOUR] * len(probabilities)
    if true_class is not None:
        colours[int(true_class)] = TRUE_COLOUR
    colours[predicted] = PREDICTED_COLOUR  # a right prediction shows red alone
    axes.bar(range(len(probabilities)), probabilities, color=colours)
    axes.set_ylim(0, 1)
    axes.set_xticks(range(len(probabilities)))
    axes.set_xticklabels([str(index) for index in range(len(probabilities))], fontsize=6)
    axes.tick_params(axis="y", labelsize=6)


def _pair_grid(count: int):
    """A figure and `count` (image axes, bar axes) pairs, PAIRS_PER_ROW to a row."""
    return _panel_grid(count, panels=2, per_row=PAIRS_PER_ROW)


def _panel_grid(count: int, panels: int, per_row: int):
    """A figure and `count` groups of `panels` side-by-side axes, `per_row` groups to a row."""
    plt = pyplot()
    grid_rows = max(1, -(-count // per_row))
    grid_columns = panels * min(count, per_row) if count else panels
    figure, axes = plt.subplots(grid_rows, grid_columns, figsize=(2.2 * grid_columns, 2.1 * grid_rows),
                                squeeze=False)
    groups = []
    for index in range(grid_rows * grid_columns // panels):
        row, column = divmod(index, grid_columns // panels)
        group = [axes[row][panels * column + panel] for panel in range(panels)]
        if index < count:
            groups.append(group)
        else:
            for unused in group:
                unused.axis("off")
    return figure, groups


def plot_samples(images: np.ndarray, labels: np.ndarray, class_names, path: Path, title: str) -> str:
    """The course's 5x5 grid of training samples, each titled with its label."""
    plt = pyplot()
    figure, axes = plt.subplots(SAMPLE_GRID, SAMPLE_GRID, figsize=(7, 7.6))
    for index, cell in enumerate(axes.ravel()):
        if index < len(images):
            _show_image(cell, images[index], class_names[int(labels[index])])
        else:
            cell.axis("off")
    figure.suptitle(f"{title}: training samples")
    return save_figure(figure, path)


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray, classes: int = 10) -> np.ndarray:
    """counts[true, predicted] over the test set."""
    counts = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(counts, (np.asarray(labels, dtype=np.int64), np.asarray(predicted, dtype=np.int64)), 1)
    return counts


def plot_confusion(labels: np.ndarray, probabilities: np.ndarray, class_names, path: Path, title: str) -> str:
    """How often each true class (rows) was predicted as each class (columns) on the test set."""
    plt = pyplot()
    counts = confusion_matrix(labels, probabilities.argmax(axis=1), len(class_names))
    figure, axes = plt.subplots(figsize=(7.5, 6.5))
    shown = axes.imshow(counts, cmap="Blues")
    figure.colorbar(shown, ax=axes, label="test images")
    for (true, predicted), count in np.ndenumerate(counts):
        if count:
            dark = count > counts.max() / 2
            axes.text(predicted, true, str(count), ha="center", va="center", fontsize=7,
                      color="white" if dark else "black")
    ticks = range(len(class_names))
    axes.set_xticks(ticks)
    axes.set_xticklabels(class_names, rotation=45, ha="right", fontsize=8)
    axes.set_yticks(ticks)
    axes.set_yticklabels(class_names, fontsize=8)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    accuracy = float(np.trace(counts)) / max(1, counts.sum())
    axes.set_title(f"{title}: confusion matrix, test accuracy {accuracy:.4f}")
    return save_figure(figure, path)


def _plot_pairs(images, probabilities, class_names, path: Path, title: str, labels=None, captions=None) -> str:
    figure, pairs = _pair_grid(len(images))
    for index, (image_axes, bar_axes) in enumerate(pairs):
        predicted = int(np.argmax(probabilities[index]))
        true_class = None if labels is None else int(labels[index])
        if captions is not None:
            caption = captions[index]
        elif true_class is None:
            caption = f"{class_names[predicted]} ({probabilities[index][predicted]:.2f})"
        else:
            caption = f"true {class_names[true_class]}, predicted {class_names[predicted]}"
        _show_image(image_axes, images[index], caption)
        _probability_bars(bar_axes, probabilities[index], true_class)
    if not pairs:
        figure.axes[0].text(0.5, 0.5, "nothing to show", ha="center", va="center")
    figure.suptitle(title)
    figure.tight_layout()
    return save_figure(figure, path)


def plot_test_predictions(images, labels, probabilities, class_names, path: Path, title: str) -> str:
    """The first test images, each beside its probability bars (predicted red, true blue)."""
    count = min(len(images), PAIRS_PER_ROW * PREDICTION_ROWS)
    return _plot_pairs(images[:count], probabilities[:count], class_names, path,
                       f"{title}: test predictions (red: predicted, blue: true)", labels=labels[:count])


def plot_wrong(images, labels, probabilities, class_names, path: Path, title: str) -> str:
    """The test images the network got wrong with the most confidence."""
    predicted = probabilities.argmax(axis=1)
    wrong = np.flatnonzero(predicted != np.asarray(labels))
    worst = wrong[np.argsort(-probabilities[wrong, predicted[wrong]], kind="stable")][:WRONG_SHOWN]
    return _plot_pairs(images[worst], probabilities[worst], class_names, path,
                       f"{title}: {len(wrong)} of {len(images)} test images wrong; the most confident shown",
                       labels=np.asarray(labels)[worst])


def plot_digit_predictions(images, probabilities, captions: list[str], class_names, path: Path,
                           pictures=None) -> str:
    """`beanstrain predict --plot`: each person's picture, the 28x28 image the network saw, and its bars.

    `images` are the network's inputs; `pictures` (RGB thumbnails of the files as
    given, optional) go first, so a wrong guess can be traced to the picture or to
    how it was read (a crop, a speck, the wrong inversion).
    """
    if pictures is None:
        return _plot_pairs(images, probabilities, class_names, Path(path), "predictions (red: predicted)",
                           captions=captions)
    figure, groups = _panel_grid(len(images), panels=3, per_row=DIGITS_PER_ROW)
    for picture, image, row, caption, (picture_axes, image_axes, bar_axes) in zip(
            pictures, images, probabilities, captions, groups):
        picture_axes.imshow(picture)
        picture_axes.set_title(caption, fontsize=8)
        picture_axes.set_xticks([])
        picture_axes.set_yticks([])
        _show_image(image_axes, image, "the network's 28x28 input")
        _probability_bars(bar_axes, row)
    figure.suptitle("predictions: your picture, what the network saw, its probabilities (red: predicted)")
    figure.tight_layout()
    return save_figure(figure, Path(path))
