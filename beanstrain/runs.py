"""Run folders: one per run, never reused, held by one process at a time, each with its state.

    runs/beans4-hidden2/20261123-153012-1/
        config.json     resolved recipe, seed, device, engine, versions, state
        <recipe>.toml   the resolved recipe, when a key without a `fit` flag differs from its base recipe
        model.keras     the trained network (with its optimizer state)
        metrics.json    final loss and accuracy on train and test
        history.csv     one row per epoch
        trace.npz       the weights at about 150 epochs
        *.png, *.gif    the pictures, the training animation
        eval.json       written by `beanstrain eval`

    >>> import tempfile
    >>> from beanstrain.files import write_json
    >>> out = Path(tempfile.mkdtemp())
    >>> run_dir = create_run_dir(out, "beans4-hidden2")
    >>> run_dir.parent == out / "beans4-hidden2"
    True
    >>> write_json(run_dir / CONFIG, {"state": RUNNING})
    >>> set_state(run_dir, FINISHED)["state"]
    'finished'
    >>> latest_finished_run(out, "beans4-hidden2") == run_dir
    True

Every file in a run folder is written atomically (`beanstrain.files`).  A
run's `config.json` carries its state: running, finished, interrupted,
failed or diverged.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import os
import shlex
import tempfile
import time
from datetime import datetime
from pathlib import Path

from beanstrain.errors import RunError, UsageError
from beanstrain.files import json_text, read_json, write_csv, write_text

RUNNING, FINISHED, INTERRUPTED, FAILED, DIVERGED = "running", "finished", "interrupted", "failed", "diverged"
CONFIG, METRICS, HISTORY, MODEL, EVAL = "config.json", "metrics.json", "history.csv", "model.keras", "eval.json"
# A sweep's folder, OUT/sweeps/<recipe>-<time>-<n>/, and its record (beanstrain.sweep).
SWEEPS, SWEEP = "sweeps", "sweep.json"
TRACE = "trace.npz"  # the weights at the snapshot epochs (beanstrain.trace)
PICTURE_SUFFIXES = (".png", ".gif", ".mp4")  # the pictures and the training animation


def write_history(path: Path, columns: list[str], rows: list[list[float]]) -> None:
    """history.csv: an `epoch` column (from 1), then one column per figure."""
    write_csv(path, [["epoch", *columns]] + [[epoch, *(f"{value:.8g}" for value in row)]
                                              for epoch, row in enumerate(rows, start=1)])


def read_history(path: Path) -> tuple[list[str], list[list[float]]]:
    """history.csv read back: its metric columns (without `epoch`) and one row of floats per epoch."""
    with open(path, newline="", encoding="utf-8") as stream:
        reader = csv.reader(stream)
        header = next(reader)
        rows = [[float(value) for value in row[1:]] for row in reader]
    return header[1:], rows


def check_out_dir(out: Path) -> Path:
    """Refuse an --out that is a file or cannot be written, before any work starts."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file, not a folder")
    existing = out
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir() or not _can_create_files_in(existing):
        raise UsageError(f"--out {out} is not writable")
    return out


def _can_create_files_in(folder: Path) -> bool:
    """Try it: permission bits do not tell about read-only disks, and root passes every os.access test."""
    try:
        with tempfile.TemporaryFile(dir=folder):
            return True
    except OSError:
        return False


def create_run_dir(out: Path, recipe_name: str) -> Path:
    """A new, empty folder `out/<recipe>/<timestamp>-<n>`; two runs never get the same one.

    `mkdir` without `exist_ok` is atomic: of several processes racing for a
    name, exactly one succeeds and the others take the next number.
    """
    return new_numbered_dir(Path(out) / recipe_name, "", "run")


def new_numbered_dir(parent: Path, prefix: str, what: str) -> Path:
    """A new, empty folder `parent/<prefix><timestamp>-<n>` (run folders, sweep folders), made with the parent."""
    parent.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    for number in range(1, 10_000):
        candidate = parent / f"{prefix}{stamp}-{number}"
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            continue
    raise RunError(f"could not create a new {what} folder under {parent}")


# What a run produces, in the order it writes them; saved_outputs lists those present.
OUTPUTS = (HISTORY, MODEL, METRICS, TRACE)


def saved_outputs(run_dir: Path) -> list[str]:
    """The run's results present in its folder: history, model, metrics, trace, then each picture in the order
    drawn."""
    run_dir = Path(run_dir)
    pictures = sorted((path for path in run_dir.iterdir()
                       if path.suffix in PICTURE_SUFFIXES and path.is_file() and not path.name.startswith(".")),
                      key=lambda path: (path.stat().st_mtime_ns, path.name))
    return [name for name in OUTPUTS if (run_dir / name).is_file()] + [path.name for path in pictures]


def set_state(run_dir: Path, state: str, **fields) -> dict:
    """Record the run's state (and any other fields) in its config.json.

    On a disk too full for a second copy, the only way to record that a run failed is to write over
    the old file within the blocks it already holds: the state matters more than atomicity then.
    """
    config = read_json(run_dir / CONFIG)
    config.update(fields, state=state)
    if state != RUNNING:
        config["ended"] = time.strftime("%Y-%m-%dT%H:%M:%S")
    text = json_text(config)
    try:
        write_text(run_dir / CONFIG, text)
    except OSError as error:
        if error.errno not in (errno.ENOSPC, errno.EDQUOT) or not _overwrite_in_place(run_dir / CONFIG, text):
            raise
    return config


def _overwrite_in_place(path: Path, text: str) -> bool:
    """Write `text` over `path` without asking for new space; False when it would need more than the file holds."""
    data = text.encode("utf-8")
    try:
        handle = os.open(path, os.O_WRONLY)
    except OSError:
        return False
    try:
        if len(data) > os.fstat(handle).st_blocks * 512:
            return False
        written = 0
        while written < len(data):
            written += os.write(handle, data[written:])
        os.ftruncate(handle, len(data))
        os.fsync(handle)
        return True
    except OSError:
        return False
    finally:
        os.close(handle)


@contextlib.contextmanager
def holding(run_dir: Path):
    """Hold the run folder for this process: a second process training or resuming it is refused.

    The lock belongs to the process (flock on the folder itself), so it ends
    when the process does, however it ends.
    """
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks; runs there are not guarded
        yield
        return
    handle = os.open(run_dir, os.O_RDONLY)
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise UsageError(f"{run_dir} is being trained by another process") from None
        yield
    finally:
        os.close(handle)


def resume_command(run_dir: Path) -> str:
    return f"beanstrain fit --resume {shlex.quote(str(run_dir))}"


def require_finished(run_dir: Path, config: dict) -> None:
    """Only finished runs have a complete, checked model; say what to do with any other."""
    state = config.get("state")
    if state == FINISHED:
        return
    hints = {
        RUNNING: "it is still training, or its process was killed; "
                 f"if it was killed, continue it with: {resume_command(run_dir)}",
        INTERRUPTED: f"continue it with: {resume_command(run_dir)}",
        FAILED: f"continue it with: {resume_command(run_dir)}",
        DIVERGED: f"its loss became NaN or infinite at epoch {config.get('diverged_epoch')}; "
                  "train again with a lower --learning-rate",
    }
    raise RunError(f"{run_dir} is {state or 'not marked finished'}, not finished: "
                   f"{hints.get(state, 'train a new run')}")


def list_runs(out: Path, recipe_name: str | None = None) -> list[tuple[Path, dict]]:
    """Every run of a recipe (or of every recipe) under `out`, oldest first, with its config."""
    out = Path(out)
    parents = [out / recipe_name] if recipe_name else (sorted(out.iterdir()) if out.is_dir() else [])
    candidates = [run_dir for parent in parents if parent.is_dir() for run_dir in parent.iterdir()]
    runs = []
    for run_dir in sorted(candidates, key=run_order):
        config_path = run_dir / CONFIG
        if run_dir.is_dir() and config_path.is_file():
            try:
                runs.append((run_dir, read_json(config_path)))
            except RunError:
                continue  # a foreign or damaged folder is not a run
    return runs


def run_order(run_dir: Path):
    """The order runs were created in: the folder's timestamp, then its number (then its name)."""
    stamp, _, number = Path(run_dir).name.rpartition("-")
    return (stamp, int(number) if number.isdigit() else 0, Path(run_dir).name)


def finished_runs(out: Path, recipe_name: str | None = None) -> list[tuple[Path, dict]]:
    """The finished runs of a recipe (of every recipe when None), oldest first, with their configs."""
    return [(run_dir, config) for run_dir, config in list_runs(out, recipe_name) if config.get("state") == FINISHED]


def train_first(what: str, out: Path, recipe_name: str) -> RunError:
    """The error for finding no finished run, naming the command that trains one."""
    out_flag = f" --out {out}" if str(out) != "runs" else ""
    return RunError(f"no finished run of {what} under {out}; train one first: beanstrain fit {recipe_name}{out_flag}")


def latest_finished_run(out: Path, recipe_name: str | None = None) -> Path:
    """The newest finished run of a recipe (of any recipe when None), or a RunError naming the command to run."""
    finished = finished_runs(out, recipe_name)
    if not finished:
        raise train_first(f"'{recipe_name}'" if recipe_name else "any recipe", out, recipe_name or "RECIPE")
    return finished[-1][0]


def resolve_run(target: str | None, out: Path) -> Path:
    """A run folder given directly, or the newest finished run of a recipe name (of any recipe when None)."""
    if not target:
        return latest_finished_run(out)
    path = Path(target)
    if (path / CONFIG).is_file():
        return path
    if path.is_dir():
        raise RunError(f"{path} is not a run folder (it has no {CONFIG})")
    return latest_finished_run(out, target)
