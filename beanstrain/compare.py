"""Several finished runs side by side: their metrics per epoch, and what differs between them.

    beanstrain compare mnist-levels-linear mnist-levels-ltp --plot levels.png

    >>> import tempfile
    >>> from beanstrain.files import write_json
    >>> out = Path(tempfile.mkdtemp())
    >>> for rate in (0.05, 0.5):
    ...     run_dir = runs.create_run_dir(out, "beans7-neuron")
    ...     write_json(run_dir / runs.CONFIG, {"recipe": {"name": "beans7-neuron", "learning_rate": rate, "seed": 0},
    ...                                        "state": runs.FINISHED})
    ...     write_json(run_dir / runs.METRICS, {"test": {"loss": 0.1, "accuracy": 0.9}, "epochs": 2})
    ...     runs.write_history(run_dir / runs.HISTORY, ["loss", "test_accuracy"], [[0.5, 0.8], [0.25, 0.9]])
    >>> compared = load_runs([str(path) for path in sorted((out / "beans7-neuron").iterdir())], out)
    >>> [run.label for run in compared]
    ['learning rate 0.05', 'learning rate 0.5']
    >>> choose_metric(compared, None), shared_columns(compared)
    ('test_accuracy', ['loss', 'test_accuracy'])

A target is a run folder or a recipe name, which stands for that recipe's
newest finished run.  Each run is labelled by the settings that differ
between the runs: the recipe when the recipes differ, and any setting
(learning rate, mapping, seed...) that also differs between runs of one
recipe.  Only run folders are read, so comparing never imports TensorFlow;
the picture is `beanstrain.plots.compare`'s.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from beanstrain import runs
from beanstrain.data import DATASETS, get_dataset, load_dataset
from beanstrain.errors import RunError, UsageError, first_line
from beanstrain.evaluation import load_run_model, predictor
from beanstrain.files import read_json
from beanstrain.models import NETWORKS
from beanstrain.plots.pictures import unit_inputs_of
from beanstrain.tasks import REGRESSION

# Recipe fields that describe a run rather than set it: never a difference worth a label.
NOT_SETTINGS = ("name", "description", "course_result", "expected_accuracy")
# How a setting is named in a label and the table (any other: its key with spaces).
SETTING_NAMES = {"learning_rate": "learning rate", "batch_size": "batch", "level_mapping": "mapping",
                 "level_nonlinearity": "nonlinearity", "validation_split": "validation split"}
# The per-epoch metric drawn when --metric is not given: the first of these every run has.
DEFAULT_METRICS = ("test_accuracy", "val_accuracy", "test_loss", "val_loss", "accuracy", "loss")


@dataclass
class ComparedRun:
    """One finished run as compare reads it: its folder's config, metrics and history."""

    run_dir: Path
    config: dict
    metrics: dict
    columns: list[str]  # history.csv's metrics, without `epoch`
    rows: list[list[float]]  # one row per epoch
    label: str = ""  # what tells it apart from the other runs compared
    settings: dict = field(default_factory=dict)  # the settings that differ between the runs compared

    @property
    def recipe(self) -> str:
        return self.config.get("recipe", {}).get("name", self.run_dir.parent.name)

    def column(self, name: str) -> list[float]:
        index = self.columns.index(name)
        return [row[index] for row in self.rows]


def run_settings(config: dict) -> dict:
    """What a run was trained with: its resolved recipe, with the batch, loss and engine it really used."""
    settings = {key: value for key, value in config.get("recipe", {}).items() if key not in NOT_SETTINGS}
    for key in ("batch_size", "loss", "engine"):
        if config.get(key) is not None:
            settings[key] = config[key]
    # A network left as its model has it: its own hidden layers and activation, so hidden2 reads as 2 sigmoid.
    network = NETWORKS.get(settings.get("model"))
    own = network.description if network else None
    if own is not None:
        if settings.get("hidden") is None:
            settings["hidden"] = list(own.hidden)
        if settings.get("activation") is None and own.activation:
            settings["activation"] = own.activation[0] if len(set(own.activation)) == 1 else list(own.activation)
    return settings


def setting_text(key: str, value) -> str:
    """'learning rate 0.05'; a rate left to Keras reads 'learning rate default'; a list 'hidden 8,8'."""
    return f"{SETTING_NAMES.get(key, key.replace('_', ' '))} {value_text(value)}"


def value_text(value) -> str:
    """A setting's value as its flag takes it: None is 'default' (Keras's, or the model's own), [8, 8] is '8,8'."""
    if value is None:
        return "default"
    if isinstance(value, list):
        return ",".join(map(str, value)) or "0"
    return str(value)


# Beyond this many runs compare's picture keeps to the curves: the boundary panels would be too small to read.
MOST_BOUNDARIES = 6


def shared_boundaries(compared: list[ComparedRun]):
    """(dataset, [(predict, unit_inputs)] per run) when every run trained on the same 2-D classified data (same
    set, samples, noise and seed), so their boundaries can be drawn side by side; None otherwise."""
    recipes = [run.config.get("recipe", {}) for run in compared]
    draws = {tuple(recipe.get(key) for key in ("dataset", "samples", "noise", "seed")) for recipe in recipes}
    if len(draws) != 1 or len(compared) > MOST_BOUNDARIES:
        return None
    dataset_name = recipes[0].get("dataset", "")
    entry = get_dataset(dataset_name) if dataset_name in DATASETS else None
    if entry is None or entry.kind != "toy" or entry.inputs != 2 or entry.task == REGRESSION:
        return None
    dataset = load_dataset(dataset_name, recipes[0].get("samples"), recipes[0].get("noise", 0.0),
                           recipes[0].get("seed", 0))
    panels = []
    for run, recipe in zip(compared, recipes):
        model = load_run_model(run.run_dir, run.config)
        panels.append((predictor(model, recipe.get("model", "")), unit_inputs_of(model)))
    return dataset, panels


def load_runs(targets: list[str], out: Path) -> list[ComparedRun]:
    """The finished runs named (run folders, or recipe names for their newest finished run), labelled."""
    run_dirs = [_find_run(target, Path(out)) for target in targets]
    seen = {}
    for target, run_dir in zip(targets, run_dirs):
        if run_dir.resolve() in seen:
            raise UsageError(f"{seen[run_dir.resolve()]} and {target} are the same run ({run_dir}); name each run once")
        seen[run_dir.resolve()] = target
    compared = [_read_run(run_dir) for run_dir in run_dirs]
    _label(compared)
    return compared


def train_missing(targets: list[str], out: Path) -> None:
    """Train, with its own settings, each recipe named that has no finished run under `out` yet."""
    from beanstrain.recipes import list_recipes, resolve_recipe
    from beanstrain.training import fit_run

    known = list_recipes()
    for target in targets:
        if _is_name(target) and target in known and not runs.finished_runs(out, target):
            fit_run(resolve_recipe(target), out=Path(out), animation="none")


def _find_run(target: str, out: Path) -> Path:
    path = Path(target)
    if (path / runs.CONFIG).is_file():
        runs.require_finished(path, read_json(path / runs.CONFIG))
        return path
    if path.is_dir():
        raise RunError(f"{path} is not a run folder (it has no {runs.CONFIG})")
    finished = runs.finished_runs(out, target) if _is_name(target) else []
    if finished:
        return finished[-1][0]
    recipes = sorted({run_dir.parent.name for run_dir, _ in runs.finished_runs(out)})
    having = f"recipes with finished runs: {', '.join(recipes)}" if recipes else "no recipe has one there yet"
    raise RunError(f"{target} is neither a run folder nor a recipe with a finished run under {out}; {having}")


def _is_name(target: str) -> bool:
    """A recipe name, not a path: runs live in out/<name>/, so a name has no separator."""
    return bool(target) and "/" not in target and "\\" not in target and target not in (".", "..")


def _read_run(run_dir: Path) -> ComparedRun:
    config = read_json(run_dir / runs.CONFIG)
    metrics = read_json(run_dir / runs.METRICS)
    if not isinstance(config.get("recipe"), dict) or not isinstance(metrics, dict):
        raise RunError(f"{run_dir} is damaged: its {runs.CONFIG} has no recipe or its {runs.METRICS} no metrics")
    try:
        columns, rows = runs.read_history(run_dir / runs.HISTORY)
    except (OSError, ValueError, StopIteration) as error:
        raise RunError(f"{run_dir / runs.HISTORY} cannot be read: {first_line(error)}") from None
    if any(len(row) != len(columns) for row in rows):
        raise RunError(f"{run_dir / runs.HISTORY} is damaged: a row does not have one value per column")
    return ComparedRun(run_dir, config, metrics, columns, rows)


def _label(compared: list[ComparedRun]) -> None:
    """Set each run's `settings` (all that differ) and `label` (what a reader needs to tell it apart).

    The recipe name leads the label when the recipes differ; a setting that differs only from one
    recipe to another is then left out of the label (the recipe says it), and one that differs
    between runs of the same recipe is kept.  Runs that differ in nothing are told apart by folder.
    """
    all_settings = [run_settings(run.config) for run in compared]
    keys = list(dict.fromkeys(key for settings in all_settings for key in settings))
    differing = [key for key in keys if _varies(settings.get(key) for settings in all_settings)]
    by_recipe: dict[str, list[dict]] = {}
    for run, settings in zip(compared, all_settings):
        by_recipe.setdefault(run.recipe, []).append(settings)
    recipes_differ = len(by_recipe) > 1
    labelled = [key for key in differing if not recipes_differ
                or any(_varies(settings.get(key) for settings in group) for group in by_recipe.values())]
    for run, settings in zip(compared, all_settings):
        run.settings = {key: settings.get(key) for key in differing}
        parts = [run.recipe] if recipes_differ else []
        run.label = ", ".join(parts + [setting_text(key, settings.get(key)) for key in labelled])
    labels = [run.label for run in compared]
    for run in compared:
        if not run.label or labels.count(run.label) > 1:
            run.label = ", ".join(filter(None, [run.label, run.run_dir.name]))


def _varies(values) -> bool:
    return len({repr(value) for value in values}) > 1


def shared_columns(compared: list[ComparedRun]) -> list[str]:
    """The history columns every run has, in the first run's order."""
    return [column for column in compared[0].columns if all(column in run.columns for run in compared[1:])]


def choose_metric(compared: list[ComparedRun], metric: str | None) -> str:
    """The per-epoch metric to draw: `metric` when every run has it, else a one-line error naming those they share."""
    shared = shared_columns(compared)
    if metric is None:
        for candidate in DEFAULT_METRICS:
            if candidate in shared:
                return candidate
        raise RunError("the runs share no per-epoch metric; compare runs that trained at least one epoch")
    if metric not in shared:
        missing = [str(run.run_dir) for run in compared if metric not in run.columns]
        raise UsageError(f"--metric {metric} is not in the history of {', '.join(missing)}; "
                         f"every run has: {', '.join(shared) or 'nothing in common'}")
    return metric


def table_rows(compared: list[ComparedRun]) -> list[dict]:
    """One row per run: what `--json` prints, and the text table's cells."""
    return [{"run_dir": str(run.run_dir), "label": run.label, "recipe": run.recipe, "settings": run.settings,
             "train": run.metrics.get("train", {}), "test": run.metrics.get("test", {}),
             "epochs": run.metrics.get("epochs", len(run.rows)), "train_seconds": run.metrics.get("train_seconds")}
            for run in compared]


def table_text(compared: list[ComparedRun]) -> list[str]:
    """The table as aligned lines: run, recipe, the settings that differ, final metrics, epochs, seconds."""
    rows = table_rows(compared)
    keys = list(rows[0]["settings"])
    header = ["run", "recipe", *(SETTING_NAMES.get(key, key.replace("_", " ")) for key in keys),
              "train loss", "train acc", "test loss", "test acc", "epochs", "seconds"]
    lines = [header]
    for row in rows:
        metrics = [_number(row[split].get(name)) for split in ("train", "test") for name in ("loss", "accuracy")]
        lines.append([row["run_dir"], row["recipe"],
                      *(value_text(row["settings"][key]) for key in keys),
                      *metrics, str(row["epochs"]), _number(row["train_seconds"], "{:.1f}")])
    widths = [max(len(line[column]) for line in lines) for column in range(len(header))]
    return ["  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip() for line in lines]


def _number(value, pattern: str = "{:.4f}") -> str:
    return "-" if value is None else pattern.format(value)
