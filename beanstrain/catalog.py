"""The runs under a folder as rows of a table, read from config.json and metrics.json alone.

    beanstrain runs --out runs --recipe beans4-hidden2 --state finished

    >>> import tempfile
    >>> from beanstrain.files import write_json
    >>> out = Path(tempfile.mkdtemp())
    >>> (out / "beans4-hidden2" / "20261124-101500-1").mkdir(parents=True)
    >>> write_json(out / "beans4-hidden2" / "20261124-101500-1" / "config.json", {"state": "running"})
    >>> (out / "beans4-hidden2" / "20261124-101501-1").mkdir()
    >>> [(row.state, row.problem) for row in catalog(out)]
    [('damaged', 'no config.json'), ('running', None)]

Nothing here imports TensorFlow, Keras, matplotlib or Jinja2, so `beanstrain
runs` answers at once.  A folder that should be a run and is not (no
config.json, JSON that does not parse, a finished run without its metrics)
is a row in state `damaged` with its problem, never skipped.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

from beanstrain import runs
from beanstrain.errors import RunError
from beanstrain.files import read_json
from beanstrain.runs import SWEEP, SWEEPS

DAMAGED = "damaged"
STATES = (runs.RUNNING, runs.FINISHED, runs.INTERRUPTED, runs.FAILED, runs.DIVERGED, DAMAGED)


@dataclass(frozen=True)
class RunRow:
    """One run folder as `beanstrain runs` shows it; metrics are None where the run has none."""

    recipe: str
    state: str
    test_accuracy: float | None
    test_loss: float | None
    epochs: int | None
    seconds: float | None
    started: str | None
    folder: str
    problem: str | None = None

    def as_json(self) -> dict:
        return asdict(self)


def run_folders(out: Path, recipe: str | None = None) -> list[Path]:
    """Every folder `out/<recipe>/<run>` (hidden ones aside), newest first within each recipe, recipes by name.

    The sweeps' folder, `out/sweeps/`, holds sweeps, not runs: it and any folder holding a sweep.json are left out.
    """
    out = Path(out)
    if not out.is_dir():
        return []
    parents = [out / recipe] if recipe else sorted(path for path in out.iterdir()
                                                   if not path.name.startswith(".") and path.name != SWEEPS)
    folders = []
    for parent in parents:
        if parent.is_dir():
            children = [path for path in parent.iterdir() if path.is_dir() and not path.name.startswith(".")
                        and not (path / SWEEP).is_file()]
            folders += sorted(children, key=runs.run_order, reverse=True)
    return folders


def read_row(run_dir: Path) -> RunRow:
    """A run folder's row, or a `damaged` row naming what is wrong with it."""
    run_dir = Path(run_dir)

    def damaged(problem: str) -> RunRow:
        return RunRow(run_dir.parent.name, DAMAGED, None, None, None, None, None, str(run_dir), problem)

    if not (run_dir / runs.CONFIG).is_file():
        return damaged(f"no {runs.CONFIG}")
    try:
        config = read_json(run_dir / runs.CONFIG)
    except RunError as error:
        return damaged(_short(error, run_dir))
    if not isinstance(config, dict) or config.get("state") not in STATES[:-1]:
        state = config.get("state") if isinstance(config, dict) else None
        return damaged(f"{runs.CONFIG} has no known state" + (f" ({state!r})" if state is not None else ""))
    recipe = config.get("recipe") if isinstance(config.get("recipe"), dict) else {}
    name = str(recipe.get("name") or run_dir.parent.name)
    state = config["state"]
    metrics, problem = {}, None
    if (run_dir / runs.METRICS).is_file():
        try:
            metrics = read_json(run_dir / runs.METRICS)
        except RunError as error:
            problem = _short(error, run_dir)
        if not isinstance(metrics, dict):
            metrics, problem = {}, f"{runs.METRICS} is not a JSON object"
    elif state == runs.FINISHED:
        problem = f"finished, but {runs.METRICS} is missing"
    if problem:
        return RunRow(name, DAMAGED, None, None, None, None, config.get("started"), str(run_dir), problem)
    test = metrics.get("test") if isinstance(metrics.get("test"), dict) else {}
    # Epochs trained: a finished run's metrics say; a stopped run, how far its checkpoint (or the NaN) came.
    epochs = {runs.FINISHED: metrics.get("epochs", config.get("epochs_done")),
              runs.DIVERGED: config.get("diverged_epoch")}.get(state, config.get("checkpoint_epoch"))
    seconds = metrics.get("train_seconds", config.get("train_seconds"))
    return RunRow(name, state, _number(test.get("accuracy")), _number(test.get("loss")),
                  int(epochs) if _number(epochs) is not None else None, _number(seconds),
                  config.get("started") if isinstance(config.get("started"), str) else None, str(run_dir))


def _number(value) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) \
        and math.isfinite(value) else None


def _short(error: RunError, run_dir: Path) -> str:
    """'metrics.json is not readable JSON: ...' rather than the whole path: the row names the folder."""
    return str(error).replace(f"{run_dir}/", "")


def catalog(out: Path, recipe: str | None = None, state: str | None = None) -> list[RunRow]:
    """The rows of every run folder under `out` (of one recipe, in one state, when given)."""
    rows = [read_row(run_dir) for run_dir in run_folders(out, recipe)]
    return [row for row in rows if state is None or row.state == state]


def table_lines(rows: list[RunRow]) -> list[str]:
    """The rows as an aligned text table, a header first; a damaged row ends with its problem."""
    header = ("recipe", "state", "test", "epochs", "seconds", "started", "folder")
    cells = [header] + [(row.recipe, row.state, metric_text(row), "" if row.epochs is None else str(row.epochs),
                         "" if row.seconds is None else f"{row.seconds:.1f}", (row.started or "").replace("T", " "),
                         row.folder + (f"  ({row.problem})" if row.problem else "")) for row in rows]
    widths = [max(len(line[column]) for line in cells) for column in range(len(header) - 1)]
    return ["  ".join(cell.ljust(width) for cell, width in zip(line, widths)) + "  " + line[-1] for line in cells]


def metric_text(row: RunRow) -> str:
    if row.test_accuracy is not None:
        return f"acc {row.test_accuracy:.4f}"
    if row.test_loss is not None:
        return f"loss {row.test_loss:.4g}"
    return ""
