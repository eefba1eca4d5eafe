"""Sweeps: a grid of recipe settings, each point an ordinary `fit` run, recorded in one sweep folder.

    beanstrain sweep spiral-deep8 --set learning_rate=0.01,0.05,0.5 --set seed=0..4

The grid is the product of the `--set` values, in the order given:

    >>> grid = parse_grid(["learning_rate=0.05,0.5", "seed=0..1"])
    >>> grid
    {'learning_rate': [0.05, 0.5], 'seed': [0, 1]}
    >>> combinations(grid)[:2]
    [{'learning_rate': 0.05, 'seed': 0}, {'learning_rate': 0.05, 'seed': 1}]
    >>> parse_grid(["seeds=0..4"])
    Traceback (most recent call last):
    beanstrain.errors.UsageError: --set seeds=0..4: unknown recipe key 'seeds'; did you mean 'seed'?

Its folder, `OUT/sweeps/<recipe>-<time>-<n>/`, holds:

    sweep.json   the grid, each trial's settings, run folder, state, final metrics, worker (host:pid)
                 and node (Ray's id and the IP address of the machine it ran on)
    results.csv  one row per trial
    sweep.png    the final test accuracy (or loss) per setting, one point per seed, and the curves per epoch

Each trial's own run folder is an ordinary one under `OUT/<recipe>/`, so `eval`,
`predict` and `compare` work on it.  Running the trials, on Ray, is `beanstrain.ray_driver`'s.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import shlex
import sys
import time
from pathlib import Path

from beanstrain import files, runs
from beanstrain.data import get_dataset
from beanstrain.descriptions import parse_hidden
from beanstrain.errors import RunError, UsageError, did_you_mean
from beanstrain.features import parse_features
from beanstrain.plots.sweep import draw_sweep
from beanstrain.recipes import FIELDS, FILE_KEYS, Recipe, as_dict, check_recipe, check_type
from beanstrain.runs import SWEEP, SWEEPS
from beanstrain.tasks import REGRESSION

RESULTS, PICTURE = "results.csv", "sweep.png"  # beside sweep.json (runs.SWEEP) in OUT/sweeps/ (runs.SWEEPS)
# A trial's states: the run folder's own (runs.FINISHED, ...), or pending before it was handed out.
PENDING = "pending"
# Trials a sweep never runs again: diverged runs would diverge again with the same settings.
DONE = (runs.FINISHED, runs.DIVERGED)
# Keys a sweep may not vary: the name files the runs, the others only describe the recipe.
FIXED_KEYS = ("description", "course_result", "expected_accuracy")


# More trials than anyone means by accident (seed=0..999999): refused before anything is built or Ray starts.
MAX_TRIALS = 10_000


def parse_setting(text: str) -> tuple[str, list | range]:
    """`KEY=V1,V2,...` or, for an integer key, `KEY=A..B` (both ends included).

    >>> parse_setting("seed=0..3")   # a range stays a range until the grid is counted
    ('seed', range(0, 4))
    >>> parse_setting("optimizer=sgd,adam")
    ('optimizer', ['sgd', 'adam'])
    >>> parse_setting("hidden=1,2,8:8")
    ('hidden', [[1], [2], [8, 8]])
    """
    key, equals, values = (part.strip() for part in text.partition("="))
    if not equals or not key or not values:
        raise UsageError(f"--set {text}: write KEY=VALUE,VALUE,... or KEY=A..B (for example seed=0..4)")
    if key not in FILE_KEYS or key in FIXED_KEYS:
        allowed = [name for name in FILE_KEYS if name not in FIXED_KEYS]
        raise UsageError(f"--set {text}: unknown recipe key '{key}'{did_you_mean(key, allowed)}")
    annotation = FIELDS[key].type
    if ".." in values:
        first, _, last = values.partition("..")
        if not annotation.startswith("int"):
            raise UsageError(f"--set {text}: A..B ranges are for integer keys; list {key}'s values with commas")
        try:
            first_value, last_value = int(first), int(last)
        except ValueError:
            raise UsageError(f"--set {text}: a range is two integers, A..B (for example 0..4)") from None
        if last_value < first_value:
            raise UsageError(f"--set {text}: the range {first_value}..{last_value} is empty")
        return key, range(first_value, last_value + 1)
    parsed = [_parse_value(key, annotation, value.strip(), text) for value in values.split(",")]
    if len(set(map(repr, parsed))) != len(parsed):
        raise UsageError(f"--set {text}: a value is given twice")
    return key, parsed


def _parse_value(key: str, annotation: str, value: str, text: str):
    if not value:
        raise UsageError(f"--set {text}: an empty value")
    # A list-valued key's value lists its items joined by ':' (hidden=4,8:8 is a layer of 4, then two of 8).
    if key == "hidden":
        return parse_hidden(value)
    if key == "features":
        return parse_features(value.replace(":", ","))
    try:
        if annotation.startswith("int"):
            return check_type(key, int(value), f"--set {text}")
        if annotation.startswith("float"):
            number = float(value)
            if not math.isfinite(number):
                raise ValueError(value)
            return number
    except ValueError:
        described = "an integer" if annotation.startswith("int") else "a number"
        raise UsageError(f"--set {text}: '{key}' must be {described}, got {value!r}") from None
    return value


def parse_grid(settings: list[str], max_trials: int = MAX_TRIALS) -> dict[str, list]:
    """Every `--set`, in the order given; a key set twice is refused, and so is a grid of more than `max_trials`
    points, counted before any point is made.

    >>> parse_grid(["seed=0..999999", "epochs=1..1000"])
    Traceback (most recent call last):
    beanstrain.errors.UsageError: the grid has 1,000,000,000 trials (1,000,000 seed x 1,000 epochs), more than ...
    """
    grid: dict[str, list | range] = {}
    for text in settings:
        key, values = parse_setting(text)
        if key in grid:
            raise UsageError(f"--set {key} is given twice; list all its values in one --set")
        grid[key] = values
    if not grid:
        raise UsageError("give the grid with --set KEY=VALUES (for example --set seed=0..4)")
    if max_trials < 1:
        raise UsageError(f"--max-trials must be at least 1, got {max_trials}")
    count = math.prod(len(values) for values in grid.values())
    if count > max_trials:
        sizes = " x ".join(f"{len(values):,} {key}" for key, values in grid.items())
        raise UsageError(f"the grid has {count:,} trials ({sizes}), more than {max_trials:,}; check the --set "
                         f"ranges, or raise the limit with --max-trials {count} if you mean it")
    return {key: list(values) for key, values in grid.items()}


def combinations(grid: dict[str, list]) -> list[dict]:
    """Every point of the grid, the last key varying fastest."""
    return [dict(zip(grid, values)) for values in itertools.product(*grid.values())]


def trial_recipe(base: Recipe, settings: dict) -> Recipe:
    """The base recipe with one point's settings, checked as `fit` checks its flags."""
    recipe = dataclasses.replace(base, **settings)
    if (recipe.dataset, recipe.model) != (base.dataset, base.model):
        recipe = dataclasses.replace(recipe, name=f"{recipe.dataset}-{recipe.model}", expected_accuracy=None,
                                     course_result="")
    try:
        check_recipe(recipe)
    except UsageError as error:
        raise UsageError(f"the trial {describe(settings)}: {error}") from None
    return recipe


def describe(settings: dict) -> str:
    """`learning_rate=0.05 seed=1`, a trial's settings as a person reads them.

    >>> describe({"learning_rate": 0.05, "seed": 1})
    'learning_rate=0.05 seed=1'
    """
    return " ".join(f"{key}={(':'.join(map(str, value)) or '0') if isinstance(value, list) else value}"
                    for key, value in settings.items())


def create_sweep(base: Recipe, source: str, grid: dict[str, list], out: Path, address: str | None,
                 parallel: int | None, command: list[str], data_path: str | None = None) -> tuple[Path, dict]:
    """Check every trial's recipe, then make a new sweep folder and write its first sweep.json."""
    trials = [{"trial": number, "settings": settings, "recipe": as_dict(trial_recipe(base, settings)),
               "state": PENDING, "run_dir": None}
              for number, settings in enumerate(combinations(grid), start=1)]
    out = runs.check_out_dir(out)
    sweep_dir = new_sweep_dir(out, base.name)
    sweep = {"recipe": base.name, "source": source, "grid": grid, "out": str(out), "address": address,
             "parallel": parallel, "data": data_path, "command": command,
             "started": time.strftime("%Y-%m-%dT%H:%M:%S"), "state": runs.RUNNING,
             "trials": trials}
    save(sweep_dir, sweep)
    return sweep_dir, sweep


def new_sweep_dir(out: Path, recipe_name: str) -> Path:
    """`out/sweeps/<recipe>-<time>-<n>`: `mkdir` is atomic, so two sweeps started at once get two folders."""
    parent = Path(out) / SWEEPS
    try:
        return runs.new_numbered_dir(parent, f"{recipe_name}-", "sweep")
    except OSError as error:
        raise RunError(f"cannot create a sweep folder under {parent}: {error.strerror or error}") from None


def load_sweep(sweep_dir: Path) -> dict:
    """A sweep's record, for `--resume`; a folder without one is refused in one line."""
    sweep_dir = Path(sweep_dir)
    if not (sweep_dir / SWEEP).is_file():
        raise UsageError(f"--resume {sweep_dir}: not a sweep folder (it has no {SWEEP})")
    sweep = files.read_json(sweep_dir / SWEEP)
    if not isinstance(sweep.get("trials"), list) or not sweep["trials"]:
        raise RunError(f"{sweep_dir / SWEEP} is damaged: it lists no trials")
    return sweep


def save(sweep_dir: Path, sweep: dict) -> None:
    """sweep.json and results.csv, each written atomically, after every change of a trial."""
    files.write_json(Path(sweep_dir) / SWEEP, sweep)
    keys = list(sweep["grid"])
    rows = [["trial", *keys, "state", "test_loss", "test_accuracy", "train_seconds", "run_dir", "node"]]
    for trial in sweep["trials"]:
        test = trial.get("test") or {}
        rows.append([trial["trial"], *(trial["settings"][key] for key in keys), trial["state"],
                     _cell(test.get("loss")), _cell(test.get("accuracy")), _cell(trial.get("train_seconds")),
                     trial.get("run_dir") or "", node_text(trial.get("node"))])
    files.write_csv(Path(sweep_dir) / RESULTS, rows)


def node_text(node: dict | None) -> str:
    """A trial's node in a line: its IP address and the start of Ray's id for it (two nodes may share an address).

    >>> node_text({"id": "8c1f0e2a77d94b1e", "ip": "10.0.0.7"}), node_text(None)
    ('10.0.0.7/8c1f0e2a', '')
    """
    return f"{node['ip']}/{node['id'][:8]}" if node else ""


def _cell(value) -> str:
    return "" if value is None else f"{value:.6g}"


def record_outcome(trial: dict, error: str | None = None, warnings: list[str] | None = None) -> dict:
    """Fill a trial's state and final metrics in from its run folder, the record every command trusts."""
    run_dir = Path(trial["run_dir"]) if trial.get("run_dir") else None
    config, metrics = {}, {}
    if run_dir is not None and (run_dir / runs.CONFIG).is_file():
        try:
            config = files.read_json(run_dir / runs.CONFIG)
            if config.get("state") == runs.FINISHED:
                metrics = files.read_json(run_dir / runs.METRICS)
        except RunError as damaged:
            error = error or str(damaged)
    state = config.get("state") or (runs.FAILED if error else PENDING)
    if state == runs.RUNNING:  # its process ended without saying how: killed, or its machine lost
        state = runs.FAILED
    trial.update(state=state, test=metrics.get("test"), train_seconds=metrics.get("train_seconds"),
                 error=None if state == runs.FINISHED else error or config.get("error"),
                 warnings=warnings if warnings is not None else metrics.get("warnings", []))
    if state == runs.DIVERGED:
        trial["error"] = f"diverged at epoch {config.get('diverged_epoch')}"
    if state == runs.INTERRUPTED:
        saved = config.get("checkpoint_epoch")
        trial["error"] = f"stopped after epoch {saved}, checkpoint saved" if saved else "stopped before a checkpoint"
    return trial


def sweep_state(sweep: dict) -> str:
    """finished once every trial is done or failed; interrupted while some never ran or were stopped."""
    unfinished = [trial for trial in sweep["trials"] if trial["state"] in (PENDING, runs.RUNNING, runs.INTERRUPTED)]
    return runs.INTERRUPTED if unfinished else runs.FINISHED


def gate(sweep: dict, min_accuracy: float, min_fraction: float) -> tuple[bool, str]:
    """`--min-accuracy X --min-fraction F`: at least F of the trials reach X on the test set.

    Returns whether it passed and the line that says so, naming every trial that did not reach X.
    """
    trials = sweep["trials"]
    missed = [trial for trial in trials if (trial.get("test") or {}).get("accuracy", -1.0) < min_accuracy]
    reached = len(trials) - len(missed)
    needed = math.ceil(min_fraction * len(trials) - 1e-9)
    passed = reached >= needed
    head = (f"{reached} of {len(trials)} trials reached test accuracy {min_accuracy}"
            f" ({needed} needed, --min-fraction {min_fraction:g})")
    if not missed:
        return passed, head
    named = "; ".join(f"trial {trial['trial']} ({describe(trial['settings'])}) " + (
        f"{trial['test']['accuracy']:.4f}" if trial.get("test") else trial["state"]) for trial in missed)
    return passed, f"{head}; below: {named}"


def check_gate(min_accuracy: float | None, min_fraction: float | None, recipes: list[dict]) -> None:
    """Refuse a gate that cannot be judged before any trial runs."""
    if min_accuracy is None:
        if min_fraction is not None:
            raise UsageError("--min-fraction goes with --min-accuracy")
        return
    if not 0.0 <= min_accuracy <= 1.0:
        raise UsageError(f"--min-accuracy must be between 0 and 1, got {min_accuracy}")
    for recipe in recipes:
        if get_dataset(recipe["dataset"]).task == REGRESSION:
            raise UsageError(f"--min-accuracy: {recipe['dataset']} is a regression set, which has no accuracy")


def resume_command(sweep_dir: Path) -> str:
    return f"beanstrain sweep --resume {shlex.quote(str(sweep_dir))}"


def draw(sweep_dir: Path, sweep: dict) -> str | None:
    """sweep.png from the finished trials' run folders; None when no trial finished."""
    return draw_sweep(sweep, Path(sweep_dir) / PICTURE)


def echo(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
