"""sweep.png: the final test accuracy (or loss) of each setting, one point per seed, and the curves per epoch.

    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> trials = [{"trial": 1, "settings": {"learning_rate": 0.05, "seed": 0}, "state": "finished",
    ...            "test": {"loss": 0.2, "accuracy": 0.9}, "run_dir": None},
    ...           {"trial": 2, "settings": {"learning_rate": 0.05, "seed": 1}, "state": "diverged",
    ...            "test": None, "run_dir": None}]
    >>> draw_sweep({"recipe": "spiral-deep8", "trials": trials}, folder / "sweep.png")
    'sweep.png'

A setting is a trial's settings without its seed, so the spread of a
setting's points is what the seed alone changes.  Trials that diverged or
failed have no final metric; the left panel's caption counts them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from beanstrain.compare import ComparedRun
from beanstrain.plots.compare import draw_curves
from beanstrain.plots.figure import pyplot, save_figure
from beanstrain.runs import HISTORY, read_history

SEED = "seed"


def setting_label(settings: dict, sweep: dict) -> str:
    """`learning_rate=0.05`: the keys the grid varies, but the seed; the recipe's name when only the seed varies.

    >>> setting_label({"learning_rate": 0.05, "epochs": 50, "seed": 3},
    ...               {"recipe": "spiral-deep8",
    ...                "grid": {"learning_rate": [0.05, 0.5], "epochs": [50], "seed": [3, 4]}})
    'learning_rate=0.05'
    """
    grid = sweep.get("grid") or {key: [None, None] for key in settings}
    shown = [f"{key}={(':'.join(map(str, value)) or '0') if isinstance(value, list) else value}"
             for key, value in settings.items() if key != SEED and len(grid.get(key, ())) > 1]
    return ", ".join(shown) or sweep["recipe"]


def final_metric(trials: list[dict]) -> str:
    """accuracy when the finished trials report one, else loss (a regression set)."""
    finished = [trial["test"] for trial in trials if trial.get("test")]
    return "accuracy" if finished and all("accuracy" in test for test in finished) else "loss"


def draw_sweep(sweep: dict, path: Path) -> str:
    plt = pyplot()
    trials = sweep["trials"]
    metric = final_metric(trials)
    labels = list(dict.fromkeys(setting_label(trial["settings"], sweep) for trial in trials))
    # The colours draw_curves gives its lines (one per setting with a finished trial, in this order), so a
    # setting has one colour in both panels.
    import matplotlib

    drawn = [label for label in labels if any(trial.get("test") and setting_label(trial["settings"], sweep) == label
                                              for trial in trials)]
    palette = matplotlib.colormaps["tab10" if len(drawn) <= 10 else "tab20"]
    colours = {label: palette(index % palette.N) for index, label in enumerate(drawn)}
    figure, (final_axes, curve_axes) = plt.subplots(1, 2, figsize=(12, 4.6), gridspec_kw={"width_ratios": [1, 1.3]})
    _draw_finals(final_axes, sweep, trials, labels, colours, metric)
    _draw_curves(curve_axes, sweep, trials, labels, metric)
    figure.suptitle(f"sweep of {sweep['recipe']}: {len(trials)} trials")
    figure.tight_layout()
    return save_figure(figure, path)


def _draw_finals(axes, sweep: dict, trials: list[dict], labels: list[str], colours: dict, metric: str) -> None:
    missing = []
    for position, label in enumerate(labels):
        values = [trial["test"][metric] for trial in trials
                  if setting_label(trial["settings"], sweep) == label and trial.get("test")]
        missing += [trial for trial in trials
                    if setting_label(trial["settings"], sweep) == label and not trial.get("test")]
        if not values:
            continue
        # Seeds side by side, a little apart, so equal results stay visible as separate points.
        offsets = np.linspace(-0.12, 0.12, len(values)) if len(values) > 1 else np.zeros(1)
        axes.scatter(position + offsets, values, color=colours[label], s=28, zorder=3, edgecolor="black",
                     linewidth=0.4)
        axes.hlines(np.mean(values), position - 0.25, position + 0.25, color=colours[label], linewidth=2)
    axes.set_xticks(range(len(labels)))
    axes.set_xticklabels(labels, rotation=20 if len(labels) > 3 else 0, ha="right" if len(labels) > 3 else "center",
                         fontsize=8)
    axes.set_xlim(-0.6, len(labels) - 0.4)
    axes.set_ylabel(f"test {metric} (after the last epoch)")
    varies_seed = any(SEED in trial["settings"] for trial in trials)
    axes.set_title("one point per seed, line at the mean" if varies_seed else "one point per trial", fontsize=10)
    if metric == "accuracy":
        low = min([trial["test"][metric] for trial in trials if trial.get("test")], default=0.0)
        axes.set_ylim(max(0.0, min(low, 1.0) - 0.05), 1.02)
    if missing:
        states = sorted({trial["state"] for trial in missing})
        axes.set_xlabel(f"{len(missing)} trial{'s' * (len(missing) > 1)} without a result ({', '.join(states)})",
                        fontsize=8)
    axes.grid(axis="y", alpha=0.3)


def _draw_curves(axes, sweep: dict, trials: list[dict], labels: list[str], metric: str) -> None:
    """Each setting's held-out metric per epoch, averaged over its seeds, drawn as `beanstrain compare` draws runs."""
    curves = {}
    for trial in trials:
        if not trial.get("test") or not trial.get("run_dir"):
            continue
        try:
            columns, rows = read_history(Path(trial["run_dir"]) / HISTORY)
        except (OSError, ValueError, StopIteration):
            continue
        held = next((column for column in columns if column.endswith(f"_{metric}")), metric)
        if held in columns and rows:
            label = setting_label(trial["settings"], sweep)
            curves.setdefault((label, held), []).append(np.asarray(rows, dtype=float)[:, columns.index(held)])
    if not curves:
        axes.text(0.5, 0.5, "no finished trial to draw", ha="center", va="center", transform=axes.transAxes)
        axes.set_axis_off()
        return
    held = next(iter(curves))[1]
    runs, settings_seeds = [], []
    for label in labels:  # in the left panel's order, so each setting has the same colour in both
        seeds = curves.get((label, held))
        if not seeds:
            continue
        epochs = min(len(values) for values in seeds)
        mean = np.mean([values[:epochs] for values in seeds], axis=0)
        runs.append(ComparedRun(Path(sweep.get("recipe", "")), {}, {}, [held], [[value] for value in mean],
                                label=label + (f" (mean of {len(seeds)})" if len(seeds) > 1 else "")))
        settings_seeds.append(seeds)
    several = max(len(values) for values in curves.values()) > 1
    lines = draw_curves(axes, runs, held, linewidth=2.4 if several else 1.5)
    for line, seeds in zip(lines, settings_seeds):  # every seed thin under its setting's mean: a seed that
        if len(seeds) > 1:                            # collapsed shows, not only the mean it pulls down
            for values in seeds:
                axes.plot(np.arange(1, len(values) + 1), values, color=line.get_color(), linewidth=0.8, alpha=0.55,
                          zorder=line.get_zorder() - 0.5)
    axes.set_title(f"{held.replace('_', ' ')} per epoch" + (": each seed thin, their mean bold" if several else ""),
                   fontsize=10)
