"""Rules racing: several runs of one network on one data set, their training drawn together, frame by frame.

    beanstrain compare beans1-rosenblatt beans1-sign beans1-sgd beans1-batch beans1-minibatch --animate rules.gif
    beanstrain compare beans1-sgd beans1-minibatch beans1-batch --animate batches.mp4

For a one-input neuron (the `slope` and `neuron` lessons) every run's path is drawn on one cost
picture: the loss over w with each run's w moving down it, or the loss's contours over (w, b) with
each run's (w, b) path, and beside it w (or the loss) against the optimizer step on a log scale.  For
any other network on a 2-D data set each run gets a panel of its own with its decision boundary
moving.  Runs are labelled by what differs between them (`compare.load_runs`), each in one colour.

The frames follow the optimizer step, not the epoch or the share of training: frame f shows every run
as it was after `frame_steps(...)[f]` steps (geometrically spaced, so the first steps, where rules
differ most, get as many frames as the last thousands), and a run that has finished stays at its end.
That is the course's question: how far does each rule get in as many updates?
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from beanstrain.errors import UsageError

FRAMES = 120  # frames of movement; the last is held (animate.PAUSE_SECONDS)
RUN_COLOURS = ("tab:red", "tab:blue", "tab:green", "tab:orange", "tab:purple", "tab:brown", "tab:pink", "tab:olive")
MOST_PANELS = 6  # boundaries side by side: beyond this they are too small to read
COST_MODELS = ("slope", "neuron")  # one input, one unit: a cost picture over w, or over (w, b)


@dataclass
class Racer:
    """One run in the race: its label, the step of each snapshot and the weights there."""

    label: str
    steps: np.ndarray  # (snapshots,) global optimizer steps, increasing, the first 0
    snapshots: list  # per snapshot, the weight arrays (kernel, bias, ...)
    model: object = None
    config: dict | None = None


def frame_steps(last_step: int, frames: int = FRAMES) -> np.ndarray:
    """The optimizer step each frame shows: 0, then geometrically up to the longest run's last step.

    >>> frame_steps(1000, 5).tolist()
    [0, 1, 6, 32, 178, 1000]
    """
    if last_step <= 0:
        return np.zeros(1, np.int64)
    spaced = np.unique(np.round(np.geomspace(1, last_step, frames)).astype(np.int64))
    return np.concatenate([[0], spaced])


def shown_index(racer: Racer, step: int) -> int:
    """The racer's last snapshot taken at or before `step`."""
    return max(int(np.searchsorted(racer.steps, step, side="right")) - 1, 0)


def racers_of(compared, load_model=True) -> list[Racer]:
    """Each compared run's trace as a racer; a run without a full trace is refused in one line."""
    from beanstrain.evaluation import load_run_model
    from beanstrain.trace import read_trace

    racers = []
    for run in compared:
        trace = read_trace(run.run_dir)
        if trace is None or trace.summarize or len(trace.epochs) < 2:
            raise UsageError(f"{run.run_dir} has no weight trace to animate (an image run keeps only percentiles); "
                             "compare it without --animate")
        steps = np.asarray(trace.steps if trace.steps is not None else
                           np.asarray(trace.epochs, np.float64) * trace.steps_per_epoch, np.float64)
        model = load_run_model(run.run_dir, run.config) if load_model else None
        racers.append(Racer(race_label(run), steps, trace.snapshots, model, run.config))
    return racers


RULE_SETTINGS = ("optimizer", "learning_rate", "batch_size")  # what a race is usually about


def race_label(run) -> str:
    """The run's label, with the rule settings that differ spelled out even when the recipe names differ:
    "beans1-sgd: sgd, rate 0.1, batch 1"."""
    from beanstrain.compare import value_text

    shown = [key for key in RULE_SETTINGS if key in run.settings]
    if not shown or any(setting in run.label for setting in ("optimizer", "learning rate", "batch ")):
        return run.label
    words = {"optimizer": "{}", "learning_rate": "rate {}", "batch_size": "batch {}"}
    batch = run.config.get("batch_size")
    values = {key: value_text(run.settings[key]) for key in shown}
    if "batch_size" in values and batch and run.config.get("recipe", {}).get("batch_size") == 0:
        values["batch_size"] = f"all {batch}"
    return f"{run.label}: " + ", ".join(words[key].format(values[key]) for key in shown)


def check_same_lesson(compared) -> str:
    """'cost' or 'boundaries': how the runs can be raced; refused when they differ in data set or network."""
    if len(compared) < 2:
        raise UsageError("--animate races two runs or more; name each run (or recipe) to race")
    recipes = [run.config.get("recipe", {}) for run in compared]
    for key, what in (("dataset", "data set"), ("model", "network"), ("hidden", "hidden layers"),
                      ("activation", "activation"), ("features", "input features")):
        values = {repr(recipe.get(key)) for recipe in recipes}
        if len(values) > 1:
            listed = ", ".join(f"{run.label or run.run_dir.name}: {recipe.get(key)}"
                               for run, recipe in zip(compared, recipes))
            raise UsageError(f"--animate races runs of one network on one data set; their {what} differs "
                             f"({listed})")
    if recipes[0].get("model") in COST_MODELS and not recipes[0].get("hidden"):
        return "cost"
    from beanstrain.data import DATASETS

    entry = DATASETS.get(recipes[0].get("dataset"))
    if entry is None or entry.kind != "toy" or entry.inputs != 2 or entry.task == "regression":
        raise UsageError(f"--animate draws a cost picture for the slope and neuron lessons, or boundaries on a "
                         f"2-D classified set; {recipes[0].get('dataset')} with {recipes[0].get('model')} is neither")
    if len(compared) > MOST_PANELS:
        raise UsageError(f"--animate draws at most {MOST_PANELS} boundaries side by side; race fewer runs")
    return "boundaries"


def _training_data(config: dict):
    """The run's training points and targets as its loss takes them."""
    from beanstrain.data import load_dataset
    from beanstrain.objectives import encode_targets

    recipe = config["recipe"]
    dataset = load_dataset(recipe["dataset"], recipe.get("samples"), recipe.get("noise", 0.0), recipe.get("seed", 0))
    targets = encode_targets(dataset.y_train, dataset.task, config["loss"], dataset.num_classes)
    return dataset, np.asarray(dataset.x_train, np.float64), np.asarray(targets, np.float32)


def _frame_image(figure):
    from PIL import Image

    figure.canvas.draw()
    return Image.fromarray(np.asarray(figure.canvas.buffer_rgba())[:, :, :3].copy())


def cost_frames(racers: list[Racer], first_config: dict, drawn: list | None = None):
    """The cost picture's frames: the loss over w (or over (w, b)) with every run's path so far, and each run's
    w (or loss) against the optimizer step.  `drawn`, when given, gets each frame's (step, [each run's point
    on the cost picture: (w, loss) or (w, b)])."""
    from beanstrain.plots.figure import pyplot
    from beanstrain.plots.units import loss_over_weights

    plt = pyplot()
    dataset, x, y = _training_data(first_config)
    model, loss_name = racers[0].model, first_config["loss"]
    paths_w = [np.array([snapshot[0].reshape(-1)[0] for snapshot in racer.snapshots], np.float64) for racer in racers]
    has_bias = len(racers[0].snapshots[0]) == 2
    paths_b = [np.array([snapshot[1].reshape(-1)[0] for snapshot in racer.snapshots], np.float64)
               for racer in racers] if has_bias else None
    every_w = np.concatenate(paths_w)
    span_w = _span(every_w)
    last = int(max(racer.steps[-1] for racer in racers))
    steps = frame_steps(last)
    figure, (cost, pace) = plt.subplots(1, 2, figsize=(10, 4.2), dpi=80, gridspec_kw={"width_ratios": (1.15, 1)})
    on_curve = []  # per racer: the loss at each snapshot's weights, on the picture's data
    if has_bias:
        span_b = _span(np.concatenate(paths_b))
        grid_w, grid_b = np.meshgrid(span_w, span_b)
        surface = loss_over_weights(model, x, y, loss_name, grid_w, grid_b)
        filled = cost.contourf(grid_w, grid_b, surface, levels=25, cmap="viridis")
        cost.contour(grid_w, grid_b, surface, levels=12, colors="white", linewidths=0.4, alpha=0.5)
        figure.colorbar(filled, ax=cost, label=f"loss ({loss_name})")
        cost.set_xlabel("w (weight)")
        cost.set_ylabel("b (bias)")
        cost.set_title(f"{dataset.name}: the loss over (w, b), each run's path", fontsize=10)
        for path_w, path_b in zip(paths_w, paths_b):
            on_curve.append(loss_over_weights(model, x, y, loss_name, path_w, path_b))
    else:
        curve = loss_over_weights(model, x, y, loss_name, span_w, None)
        cost.plot(span_w, curve, color="black", linewidth=1.5, label="loss")
        cost.set_xlabel("w")
        cost.set_ylabel(f"loss ({loss_name})")
        cost.set_title(f"{dataset.name}: the loss over w, each run's w on it", fontsize=10)
        for path_w in paths_w:
            on_curve.append(loss_over_weights(model, x, y, loss_name, path_w, None))
        cost.set_ylim(0, float(np.max(curve)) * 1.05)
    cost.set_xlim(span_w[0], span_w[-1])
    trails, heads, pace_lines = [], [], []
    for number, racer in enumerate(racers):
        colour = RUN_COLOURS[number % len(RUN_COLOURS)]
        (trail,) = cost.plot([], [], "-", color=colour, linewidth=1.2, alpha=0.9)
        (head,) = cost.plot([], [], "o", color=colour, markersize=7, markeredgecolor="black", label=racer.label)
        (line,) = pace.plot([], [], "-", color=colour, linewidth=1.5, label=racer.label)
        trails.append(trail)
        heads.append(head)
        pace_lines.append(line)
    cost.legend(fontsize=7, loc="upper right" if not has_bias else "best", handles=heads)
    pace_values = [np.log10(np.maximum(values, 1e-12)) for values in on_curve] if has_bias else paths_w
    pace.set_xscale("symlog", linthresh=1)
    pace.set_xlim(0, max(last, 1))
    low = min(float(np.min(values)) for values in pace_values)
    high = max(float(np.max(values)) for values in pace_values)
    pace.set_ylim(low - 0.05 * (high - low + 1e-9), high + 0.05 * (high - low + 1e-9))
    pace.set_xlabel("optimizer step")
    pace.set_ylabel("log10 loss" if has_bias else "w")
    pace.set_title("each run against the optimizer step", fontsize=10)
    pace.grid(alpha=0.3)
    figure.tight_layout(rect=(0, 0, 1, 0.93))
    heading = figure.text(0.5, 0.97, "", ha="center", va="top", fontsize=11)
    try:
        for step in steps:
            for number, racer in enumerate(racers):
                index = shown_index(racer, step)
                ys = paths_b[number] if has_bias else on_curve[number]
                trails[number].set_data(paths_w[number][:index + 1], ys[:index + 1])
                heads[number].set_data([paths_w[number][index]], [ys[index]])
                pace_lines[number].set_data(racer.steps[:index + 1], pace_values[number][:index + 1])
            heading.set_text(f"after {int(step):,} optimizer step{'s' if step != 1 else ''}")
            if drawn is not None:
                drawn.append((int(step), [tuple(float(value[0]) for value in head.get_data()) for head in heads]))
            yield _frame_image(figure)
    finally:
        plt.close(figure)


def boundary_frames(racers: list[Racer], first_config: dict):
    """Each run's decision boundary in a panel of its own, all at the same optimizer step."""
    from beanstrain.plots.figure import pyplot
    from beanstrain.plots.replay import dense_layers, forward, input_grid
    from beanstrain.plots.toy import CLASS_COLOURS

    plt = pyplot()
    dataset, x, _ = _training_data(first_config)
    (grid_x, grid_y), inputs = input_grid(dataset)
    layers = [dense_layers(racer.model) for racer in racers]
    if any(layer is None for layer in layers):
        raise UsageError("--animate replays networks of Dense layers only")
    last = int(max(racer.steps[-1] for racer in racers))
    steps = frame_steps(last)
    columns = min(len(racers), 3)
    rows = -(-len(racers) // columns)
    figure, grid = plt.subplots(rows, columns, figsize=(3.4 * columns, 3.3 * rows + 0.4), dpi=80, squeeze=False)
    labels = dataset.y_train.argmax(axis=1) if dataset.y_train.ndim > 1 else np.asarray(dataset.y_train).round()
    images, boundaries = [], []
    extent = (grid_x.min(), grid_x.max(), grid_y.min(), grid_y.max())
    for number, (axes, racer) in enumerate(zip(grid.flat, racers)):
        image = axes.imshow(np.zeros(grid_x.shape), origin="lower", extent=extent, cmap="RdBu_r", vmin=0, vmax=1,
                            alpha=0.75, aspect="auto", interpolation="bilinear")
        for value, colour in enumerate(CLASS_COLOURS):
            chosen = labels.reshape(-1) == value
            axes.scatter(x[chosen, 0], x[chosen, 1], c=colour, s=8, edgecolors="black", linewidths=0.3)
        axes.set_title(racer.label, fontsize=8, color=RUN_COLOURS[number % len(RUN_COLOURS)])
        axes.set_xticks([])
        axes.set_yticks([])
        images.append(image)
        boundaries.append(None)
    for axes in list(grid.flat)[len(racers):]:
        axes.axis("off")
    figure.tight_layout(rect=(0, 0, 1, 1 - 0.4 / (3.3 * rows + 0.4)))
    heading = figure.text(0.5, 0.995, "", ha="center", va="top", fontsize=11)
    try:
        for step in steps:
            for number, (axes, racer) in enumerate(zip(grid.flat, racers)):
                weights = racer.snapshots[shown_index(racer, step)]
                probability = forward(layers[number], weights, inputs)[-1][:, -1].reshape(grid_x.shape)
                images[number].set_data(probability)
                if boundaries[number] is not None:
                    boundaries[number].remove()
                    boundaries[number] = None
                if probability.min() < 0.5 < probability.max():
                    boundaries[number] = axes.contour(grid_x, grid_y, probability, levels=[0.5], colors="black",
                                                      linewidths=1.2)
            heading.set_text(f"after {int(step):,} optimizer step{'s' if step != 1 else ''}")
            yield _frame_image(figure)
    finally:
        plt.close(figure)


def _span(values: np.ndarray) -> np.ndarray:
    low, high = float(np.min(values)), float(np.max(values))
    margin = max((high - low) * 0.25, 0.5)
    return np.linspace(low - margin, high + margin, 200)


ANIMATION_SUFFIXES = {".gif": "gif", ".mp4": "mp4"}


def check_animate_file(path: Path) -> str:
    """The animation's format from its file name, refused in one line before any run is read."""
    from beanstrain.plots.animate import check_animation

    kind = ANIMATION_SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise UsageError(f"--animate {path}: give a file ending in .gif or .mp4, such as race.gif")
    if path.is_dir():
        raise UsageError(f"--animate {path} is a folder; give a file name such as race.gif")
    if not path.parent.is_dir():
        raise UsageError(f"--animate {path}: folder {path.parent} does not exist")
    check_animation(kind)
    return kind


def write_race(compared, path: Path) -> str:
    """The race of the compared runs, as a GIF or an MP4 (by `path`'s suffix); what kind of picture it drew."""
    from beanstrain.plots.animate import write_frames

    kind = check_animate_file(path)
    how = check_same_lesson(compared)
    racers = racers_of(compared)
    frames = (cost_frames if how == "cost" else boundary_frames)(racers, compared[0].config)
    write_frames(frames, path, kind)
    return how
