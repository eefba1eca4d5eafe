"""Each run's page, `report.html` in its folder, and a folder's `index.html` of every run.

    beanstrain report runs/beans4-hidden2/20261124-101500-1    # (re)write one run's page
    beanstrain report --out runs --open                        # runs/index.html, in the browser

    >>> import tempfile
    >>> from beanstrain.files import write_json
    >>> run_dir = Path(tempfile.mkdtemp()) / "beans4-hidden2" / "20261124-101500-1"
    >>> run_dir.mkdir(parents=True)
    >>> write_json(run_dir / "config.json", {"state": "interrupted", "recipe": {"name": "beans4-hidden2",
    ...            "description": "<b>my</b> recipe", "dataset": "beans4", "model": "hidden2"}})
    >>> page = write_run_page(run_dir).read_text()
    >>> "&lt;b&gt;my&lt;/b&gt; recipe" in page, "beanstrain fit --resume" in page
    (True, True)

A page is one HTML file with its style inside, linking the run's own
pictures by relative paths: no network, no JavaScript, readable on a phone.
Everything taken from a run is escaped by Jinja2's autoescaping (a recipe's
description is user text).  Pictures are shown whatever their names, known
ones first in a fixed order; an `.mp4` gets a `<video>` tag.  A run ends by
writing its page (`write_page_after`), and a page that cannot be written is a
warning line, never a failed run.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar
from urllib.parse import quote

import numpy as np

from beanstrain import catalog, files, runs
from beanstrain.errors import RunError, UsageError, first_line
from beanstrain.recipes import Recipe, fit_command, keeps_file, recipe_file
from beanstrain.trace import read_trace

T = TypeVar("T")

PAGE, INDEX, TRACE = "report.html", "index.html", "trace.npz"
IMAGE_SUFFIXES, VIDEO_SUFFIXES = (".png", ".gif", ".jpg", ".jpeg", ".webp", ".svg"), (".mp4", ".webm")
# Known pictures, in the order a student reads them: the result, how it got there, then the rest.
CAPTIONS = {
    "boundary.png": "The decision boundary: the predicted probability, training points, test points marked",
    "fit.png": "The network's prediction over the training data",
    "samples.png": "Training images with their labels",
    "training.gif": "Training, as it happened",
    "training.mp4": "Training, as it happened",
    "history.png": "Loss and accuracy per epoch",
    "confusion.png": "The confusion matrix on the test set",
    "predictions.png": "Test images beside their class probabilities (predicted red, true blue)",
    "wrong.png": "The test images it got wrong with the most confidence",
    "surface.png": "The prediction surface in 3-D",
    "neurons.png": "What each neuron has learned",
    "network.png": "The network: each unit over the inputs, each weight a link by its width and colour",
    "weights.png": "The weights during training",
    "gradients.png": "How large each layer's gradient was during training",
    "cost.png": "The cost over the weights, with the path training took",
    "levels.png": "The mapping from level to weight",
    "data.png": "The training data",
}
RUN_FILES = (runs.CONFIG, runs.METRICS, runs.HISTORY, runs.EVAL, runs.MODEL, TRACE)  # linked at the page's end
THUMBNAILS = ("boundary.png", "fit.png", "samples.png", "history.png", "data.png")
WEIGHTS_SHOWN = 400  # final weights are shown for networks of at most this many numbers
WIDE_PIXELS = 900  # pictures at least this wide get a row of their own
TRACE_READ = 64 << 20  # a trace larger than this is not read for a page


def pictures(run_dir: Path, sizes: bool = True) -> list[dict]:
    """The run's pictures and videos: known names in CAPTIONS' order, then any others by name
    (with each picture's size read from its header unless `sizes` is False)."""
    found = [path for path in Path(run_dir).iterdir() if path.is_file() and not path.name.startswith(".")
             and path.suffix.lower() in IMAGE_SUFFIXES + VIDEO_SUFFIXES]
    order = list(CAPTIONS)
    found.sort(key=lambda path: (order.index(path.name) if path.name in CAPTIONS else len(order), path.name))
    shown = []
    for path in found:
        size = _size(path) if sizes else None
        shown.append({"file": path.name, "href": quote(path.name), "caption": CAPTIONS.get(path.name, path.name),
                      "video": path.suffix.lower() in VIDEO_SUFFIXES, "size": size,
                      # A wide or detailed picture takes a whole row rather than half of one.
                      "wide": bool(size) and (size[0] > 1.6 * size[1] or size[0] >= WIDE_PIXELS)})
    return shown


def _size(path: Path) -> tuple[int, int] | None:
    """A picture's width and height from its header (None for a video or a file that is not one)."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            return image.size
    except Exception:  # not an image Pillow reads: the browser may still show it
        return None


def final_weights(run_dir: Path) -> dict | None:
    """The last snapshot of the run's trace.npz for a small network: {"epoch", "arrays": [(name, shape, rows)]}.

    Read by `trace.read_trace` (no pickles).  None when there is no trace; {"note": ...} when it
    cannot be shown (damaged, a summary of an image network's weights, or too many numbers).
    """

    path = Path(run_dir) / TRACE
    if path.is_file() and path.stat().st_size > TRACE_READ:
        return _note(f"{TRACE} is too large to show here")
    try:
        trace = read_trace(run_dir)
    except RunError as error:  # a damaged or foreign file: a page still shows everything else
        return _note(f"{TRACE} could not be read: {first_line(error)}")
    if trace is None:
        return None
    if not trace.epochs:
        return _note(f"{TRACE} holds no snapshot yet")
    if trace.summarize:
        return _note(f"{TRACE} keeps percentiles of each layer's weights (see history.png), not every weight")
    finals = trace.snapshots[-1]
    size = sum(np.size(array) for array in finals)
    if size > WEIGHTS_SHOWN:
        return _note(f"the final weights are {size:,} numbers, shown here for networks of at most "
                     f"{WEIGHTS_SHOWN}; they are in {TRACE}")
    shown = [(name, "x".join(map(str, np.shape(array))) or "1",
              [[f"{value:.4g}" for value in row] for row in np.atleast_2d(np.asarray(array, np.float64))])
             for name, array in zip(trace.names, finals)]
    return {"epoch": trace.epochs[-1], "arrays": shown, "note": None}


def _note(text: str) -> dict:
    return {"epoch": None, "arrays": [], "note": text}


def reproduce_command(config: dict, run_dir: Path | None = None) -> str | None:
    """The `beanstrain fit` command that trains the run in `run_dir` (RUN_DIR when not given) again
    (`recipes.fit_words`); None when that needs the recipe file the run folder lacks (a run from before run
    folders kept one)."""
    recipe = Recipe(**config["recipe"])
    if run_dir is not None and keeps_file(recipe) and not recipe_file(run_dir, recipe).is_file():
        return None
    device = config.get("device") if isinstance(config.get("device"), dict) else {}
    devices = len(device.get("devices") or [None])
    return fit_command(recipe, Path(run_dir or "RUN_DIR"), config.get("data_path"), devices,
                       config.get("backend", "tensorflow"))


def run_context(run_dir: Path) -> dict:
    """Everything the run page shows, read from the run folder's files."""
    run_dir = Path(run_dir)
    config = files.read_json(run_dir / runs.CONFIG)
    if not isinstance(config, dict):
        raise RunError(f"{run_dir / runs.CONFIG} is not a JSON object")
    recipe = config.get("recipe") if isinstance(config.get("recipe"), dict) else {}
    metrics = _optional_json(run_dir / runs.METRICS)
    evaluation = _optional_json(run_dir / runs.EVAL)
    state = config.get("state") or "unknown"
    try:
        command = reproduce_command(config, run_dir)
    except (KeyError, TypeError, ValueError, UsageError, RunError):
        command = None  # a recipe this version no longer knows: the settings below still tell it
    versions = config.get("versions") if isinstance(config.get("versions"), dict) else {}
    return {
        "run": run_dir.name, "recipe": recipe.get("name") or run_dir.parent.name, "state": state,
        "description": recipe.get("description") or "", "course_result": recipe.get("course_result") or "",
        "command": command, "stopped": _stopped(run_dir, config, state),
        "settings": _settings(config, recipe) + _early_stopping(metrics),
        "versions": ", ".join(f"{name} {value}" for name, value in versions.items()),
        "metrics": [(split, _metric_cell(split_metrics, "loss"), _metric_cell(split_metrics, "accuracy"))
                    for split in ("train", "test") if isinstance(split_metrics := metrics.get(split), dict)],
        "per_class": _per_class(metrics, evaluation),
        "warnings": [str(line) for line in metrics.get("warnings") or [] if isinstance(metrics["warnings"], list)],
        "pictures": pictures(run_dir), "weights": final_weights(run_dir),
        "files": [{"file": name, "href": quote(name)} for name in RUN_FILES if (run_dir / name).is_file()],
    }


def _early_stopping(metrics: dict) -> list[tuple[str, object]]:
    """--patience's verdict, when the run had one: which epoch's weights the run kept, and where it stopped."""
    record = metrics.get("early_stopping")
    if not isinstance(record, dict):
        return []
    stopped = record.get("stopped_epoch")
    return [("early stopping", f"patience {record.get('patience')} on {record.get('monitor')}: "
                               + (f"stopped after epoch {stopped}" if stopped else "trained every epoch")),
            ("best epoch", f"{record.get('best_epoch')} (its weights are the model's and the figures')")]


def _settings(config: dict, recipe: dict) -> list[tuple[str, object]]:
    """What the run was trained with, as (label, value) pairs; values the run did not record are left out."""
    device = config.get("device") if isinstance(config.get("device"), dict) else {}
    parameters = config.get("parameters")
    settings = (
        ("dataset", recipe.get("dataset")), ("network", recipe.get("model")),
        ("parameters", f"{parameters:,}" if isinstance(parameters, int) else None), ("epochs", recipe.get("epochs")),
        ("batch size", config.get("batch_size")), ("optimizer", recipe.get("optimizer")),
        ("learning rate", recipe.get("learning_rate")), ("loss", config.get("loss") or recipe.get("loss")),
        ("samples", recipe.get("samples")), ("noise", recipe.get("noise")), ("seed", config.get("seed")),
        ("levels", recipe.get("levels") or None),
        ("level mapping", f"{recipe.get('level_mapping')} (A = {recipe.get('level_nonlinearity')})"
         if recipe.get("levels") else None),
        ("initial weights", _initial(recipe.get("initial_weights"))),
        ("validation split", recipe.get("validation_split") or None), ("data", config.get("data_source")),
        ("device", f"{device.get('name')} ({device.get('kind')})" if device.get("name") else None),
        ("engine", config.get("engine")), ("started", _when(config.get("started"))),
        ("ended", _when(config.get("ended"))), ("training seconds", _seconds(config.get("train_seconds"))),
    )
    return [(label, value) for label, value in settings if value not in (None, "")]


def _initial(initial) -> str | None:
    """A recipe's initial weights as the recipe file writes them ("uniform", or one entry per weight array)."""
    if initial is None:
        return None
    return initial if isinstance(initial, str) else json.dumps(initial)


def _optional_json(path: Path) -> dict:
    if not path.is_file():
        return {}
    try:
        data = files.read_json(path)
    except RunError:
        return {}
    return data if isinstance(data, dict) else {}


def _stopped(run_dir: Path, config: dict, state: str) -> dict | None:
    """What a run that did not finish says: why, and the command that goes on from here."""
    error = config.get("error")
    if state == runs.FINISHED:
        if config.get("pictures_missing"):
            return {"why": f"pictures missing: {error}", "next": runs.resume_command(run_dir), "advice": None}
        return None
    if state == runs.DIVERGED:
        return {"why": f"the loss became NaN or infinite at epoch {config.get('diverged_epoch')}",
                "next": None, "advice": "train again with a lower --learning-rate"}
    why = {runs.RUNNING: "still training, or its process was killed",
           runs.INTERRUPTED: f"interrupted{f' ({error})' if error else ''}",
           runs.FAILED: f"failed: {error or 'no reason recorded'}"}.get(state, f"state {state!r}")
    if config.get("checkpoint_epoch") is not None:
        why += f"; checkpoint after epoch {config['checkpoint_epoch']}"
    return {"why": why, "next": runs.resume_command(run_dir), "advice": None}


def _metric_cell(metrics: dict, name: str) -> str:
    value = metrics.get(name)
    return f"{value:.4f}" if isinstance(value, (int, float)) else ""


def _per_class(metrics: dict, evaluation: dict) -> list[tuple[str, str]]:
    table = metrics.get("per_class_accuracy") or evaluation.get("per_class_accuracy") or {}
    if not isinstance(table, dict):
        return []
    return [(str(name), f"{value:.4f}" if isinstance(value, (int, float)) else "none") for name, value in table.items()]


def _when(stamp) -> str | None:
    return stamp.replace("T", " ") if isinstance(stamp, str) else None


def _seconds(value) -> str | None:
    return f"{value:.2f}" if isinstance(value, (int, float)) else None


@functools.lru_cache(maxsize=1)
def _environment():
    """One Jinja2 environment per process: it compiles each template once, not once per page."""
    import jinja2

    return jinja2.Environment(loader=jinja2.PackageLoader("beanstrain", "templates"), autoescape=True,
                              undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def write_run_page(run_dir: Path) -> Path:
    """Render the run's page into `run_dir/report.html` (atomically) and return its path."""
    run_dir = Path(run_dir)
    if not (run_dir / runs.CONFIG).is_file():
        raise UsageError(f"{run_dir} is not a run folder (it has no {runs.CONFIG})")
    page = _environment().get_template("run.html").render(**run_context(run_dir))
    files.write_text(run_dir / PAGE, page)
    return run_dir / PAGE


def index_context(out: Path) -> dict:
    """One card per run folder under `out`, grouped by recipe (by name), newest first in each group."""
    out = Path(out)
    groups: dict[str, list[dict]] = {}
    for row in catalog.catalog(out):
        run_dir = Path(row.folder)
        if row.state != catalog.DAMAGED and not (run_dir / PAGE).is_file():
            try:
                write_run_page(run_dir)
            except Exception as error:  # the card says so; the other runs still get theirs
                row = catalog.RunRow(**{**row.as_json(), "problem": f"no page: {first_line(error)}"})
        relative = run_dir.relative_to(out).as_posix()
        shown = [picture for picture in pictures(run_dir, sizes=False) if not picture["video"]] \
            if run_dir.is_dir() else []
        thumbnail = next((picture for name in THUMBNAILS for picture in shown if picture["file"] == name),
                         shown[0] if shown else None)
        groups.setdefault(run_dir.parent.name, []).append({
            "run": run_dir.name, "recipe": row.recipe, "state": row.state, "problem": row.problem,
            "href": quote(f"{relative}/{PAGE}") if (run_dir / PAGE).is_file() else None,
            "thumbnail": quote(f"{relative}/{thumbnail['file']}") if thumbnail else None,
            "metric": catalog.metric_text(row), "started": _when(row.started) or ""})
    return {"folder": out.name or str(out), "groups": sorted(groups.items()),
            "count": sum(len(cards) for cards in groups.values())}


def write_index(out: Path) -> Path:
    """Render `out/index.html` (atomically: a browser never sees half a page) and return its path."""
    out = Path(out)
    if not out.is_dir():
        raise UsageError(f"--out {out} is not a folder of runs")
    page = _environment().get_template("index.html").render(**index_context(out))
    files.write_text(out / INDEX, page)
    return out / INDEX


def write_page_or_warn(run_dir: Path, stream=None, silent: bool = False) -> None:
    """A run's page at the end of the run; a failure is one warning line (none when `silent`), never the run's error."""
    try:
        if (Path(run_dir) / runs.CONFIG).is_file():
            write_run_page(run_dir)
    except (Exception, KeyboardInterrupt) as error:
        if not silent:
            print(f"warning: {PAGE} not written: {first_line(error)}", file=stream or sys.stderr, flush=True)


def write_page_after(run_dir: Path, stream, work: Callable[[], T]) -> T:
    """Do `work` (train, or redraw, a run), then write the run's page however it ended; `work`'s result or
    error is what the caller gets.

    A run that ends in an error says so in one line; a page that could not be written then (most
    often for the same reason, a full disk) adds nothing to it: `beanstrain report RUN_DIR` writes it later.
    """
    try:
        result = work()
    except BaseException:
        write_page_or_warn(run_dir, stream, silent=True)
        raise
    write_page_or_warn(run_dir, stream)
    return result
