"""Checkpoints: the exact training state of an unfinished run, so it can continue where it stopped.

    runs/beans4-hidden2/20261123-153012-1/
        checkpoint-1111.npz   weights, optimizer variables, history rows, the trace after epoch 1111, and whatever
                              else the trainer keeps (the levels of a run on levels) (plain arrays, no pickles)
        checkpoint.json       epoch, seed, training seconds so far, the name of the .npz and its SHA-256

    >>> import tempfile
    >>> run_dir = Path(tempfile.mkdtemp())
    >>> state = TrainingState(epoch=2, weights=[np.ones((2, 1), "float32")], optimizer_variables=[np.array(20)],
    ...                       history_rows=[[0.9], [0.5]], train_seconds=1.5)
    >>> write_checkpoint(run_dir, state, seed=0)
    'checkpoint-2.npz'
    >>> read_checkpoint(run_dir).history_rows     # `beanstrain fit --resume RUN_DIR`
    [[0.9], [0.5]]

During a run a `Keeper` holds the latest state: a copy is taken in memory
after every chunk of epochs whose loss is finite and written to disk when the
run stops early (and every few minutes, so a killed process loses little);
`restore(trainer, state)` puts it back.  Since every epoch's batches depend
only on (seed, epoch), a run resumed from a checkpoint ends with the same
weights as one that never stopped.  What is saved is whatever the engine's
trainer keeps (`get_state`, `set_state`); this module never reaches into a
network.

The two files must agree, so they are never replaced together: a new state
goes to a new arrays file, then checkpoint.json is replaced to name it, and
only then is the old arrays file removed.  A process killed between the two
writes leaves the previous pair as it was, still resumable.
"""

from __future__ import annotations

import math
import os
import re
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from beanstrain import files
from beanstrain.engines.protocol import EngineState
from beanstrain.errors import RunError, first_line
from beanstrain.listeners import Listener

CHECKPOINT_INFO = "checkpoint.json"
# Arrays files are named after their epoch, a second copy of one epoch with a number after it,
# so a new file never has the name checkpoint.json gives; checkpoint.npz is the name of earlier versions.
ARRAYS_NAME = re.compile(r"checkpoint(-\d+(\.\d+)?)?\.npz")
UNVERSIONED_ARRAYS = "checkpoint.npz"
# A finished run keeps its last state under these names, in the checkpoint's format, so that
# `fit --resume RUN --epochs N` can train it on from its last epoch (`keep_final_state`).
FINAL_INFO, FINAL_ARRAYS = "final-state.json", "final-state.npz"
# A running job writes its latest copy this often, so a process killed
# without warning (power cut, SIGKILL) loses at most this much training.
SAVE_EVERY_SECONDS = 120.0
# The trace's arrays (`trace.Trace.arrays`) go into the same file under their own keys.
TRACE_PREFIX = "trace_"


@dataclass
class TrainingState:
    """Everything needed to continue a run: `epoch` epochs are done."""

    epoch: int
    weights: list[np.ndarray]
    optimizer_variables: list[np.ndarray]
    history_rows: list[list[float]]  # may run past `epoch` (a run's live history); its first `epoch` rows count
    train_seconds: float
    extra: dict[str, np.ndarray] = field(default_factory=dict)  # the trainer's other arrays (EngineState.extra)
    # The weight trace so far: a `trace.Trace` (its snapshots up to `epoch` count) when written, its arrays when read.
    trace: object = None


def capture(trainer, epoch: int, rows, train_seconds: float, trace=None) -> TrainingState:
    """The state after `epoch` epochs: the trainer's copies of its weights and optimizer variables.

    `rows` is kept as it is, not copied: a run's history only grows, so its
    first `epoch` rows stay this state's; copying it after every chunk would
    cost time that grows with the square of the epochs.
    """
    state = trainer.get_state()
    return TrainingState(epoch, state.weights, state.optimizer_variables, rows, train_seconds, state.extra, trace)


def write_checkpoint(run_dir: Path, state: TrainingState, seed: int) -> str:
    """A new arrays file, then checkpoint.json naming it and its SHA-256, then the old arrays file removed.

    Returns the new arrays file's name.
    """
    arrays = {f"weight_{index}": value for index, value in enumerate(state.weights)}
    arrays.update({f"optimizer_{index}": value for index, value in enumerate(state.optimizer_variables)})
    arrays.update({f"extra_{name}": value for name, value in state.extra.items()})
    rows = state.history_rows[:state.epoch]
    arrays["history"] = np.array(rows, dtype=np.float64).reshape(len(rows), len(rows[0]) if rows else 0)
    if state.trace is not None:
        arrays.update({f"{TRACE_PREFIX}{key}": value for key, value in state.trace.arrays(upto=state.epoch).items()})
    name = _unused_arrays_name(run_dir, state.epoch)
    digest = files.write_with(run_dir / name, lambda temporary: np.savez(temporary, **arrays))
    files.write_json(run_dir / CHECKPOINT_INFO, {
        "epoch": state.epoch, "seed": seed, "train_seconds": state.train_seconds,
        "weights": len(state.weights), "optimizer_variables": len(state.optimizer_variables),
        "arrays": name, "sha256": digest, "saved": time.strftime("%Y-%m-%dT%H:%M:%S"),
        **({"extra": sorted(state.extra)} if state.extra else {}),
    })
    _remove_arrays(run_dir, keep=name)
    return name


def _unused_arrays_name(run_dir: Path, epoch: int) -> str:
    name, copy = f"checkpoint-{epoch}.npz", 1
    while (run_dir / name).exists():
        copy += 1
        name = f"checkpoint-{epoch}.{copy}.npz"
    return name


def _remove_arrays(run_dir: Path, keep: str | None = None) -> None:
    for path in run_dir.iterdir():
        if ARRAYS_NAME.fullmatch(path.name) and path.name != keep:
            path.unlink(missing_ok=True)


def is_checkpoint_file(name: str) -> bool:
    """Whether a file name in a run folder is one of a checkpoint's two files."""
    return name == CHECKPOINT_INFO or bool(ARRAYS_NAME.fullmatch(name))


def has_checkpoint(run_dir: Path) -> bool:
    """checkpoint.json and the arrays file it names exist (or it is damaged, which `read_checkpoint` explains)."""
    if not (run_dir / CHECKPOINT_INFO).is_file():
        return False
    try:
        name = files.read_json(run_dir / CHECKPOINT_INFO).get("arrays", UNVERSIONED_ARRAYS)
    except (RunError, AttributeError):
        return True
    return not isinstance(name, str) or (run_dir / name).is_file()


def read_checkpoint(run_dir: Path, info_name: str = CHECKPOINT_INFO) -> TrainingState:
    """The saved state, refused (one line) if either file is missing, damaged or does not match the other.

    `info_name` FINAL_INFO reads a finished run's final state instead."""
    info_path = run_dir / info_name
    info = files.read_json(info_path)
    try:
        epoch, weights, variables = int(info["epoch"]), int(info["weights"]), int(info["optimizer_variables"])
        expected, train_seconds = str(info["sha256"]), float(info.get("train_seconds", 0.0))
        name = info.get("arrays", UNVERSIONED_ARRAYS)
        extra = [str(key) for key in info.get("extra", [])]
    except (KeyError, TypeError, ValueError, AttributeError):
        raise RunError(f"{info_path} is damaged (a field is missing or not a number)") from None
    if not isinstance(name, str) or not (ARRAYS_NAME.fullmatch(name) or name == FINAL_ARRAYS):
        raise RunError(f"{info_path} is damaged (it names {name!r}, not a checkpoint arrays file)")
    arrays_path = run_dir / name
    if not arrays_path.is_file():
        raise RunError(f"{run_dir} has {info_name} but no {name}")
    if files.file_sha256(arrays_path) != expected:
        raise RunError(f"{arrays_path} does not match {info_name} (SHA-256 differs); "
                       "it was changed or damaged")
    if not zipfile.is_zipfile(arrays_path):
        raise RunError(f"{arrays_path} is not a .npz archive (a zip file)")
    try:
        with np.load(arrays_path, allow_pickle=False) as archive:
            state = TrainingState(
                epoch,
                [archive[f"weight_{index}"] for index in range(weights)],
                [archive[f"optimizer_{index}"] for index in range(variables)],
                archive["history"].tolist(),
                train_seconds,
                {key: archive[f"extra_{key}"] for key in extra},
                {key[len(TRACE_PREFIX):]: archive[key] for key in archive.files if key.startswith(TRACE_PREFIX)}
                or None,
            )
    except Exception as error:  # a damaged zip fails in many ways inside NumPy
        raise RunError(f"{arrays_path} cannot be read: {first_line(error)}") from None
    if len(state.history_rows) != epoch:
        raise RunError(f"{arrays_path} holds {len(state.history_rows)} history rows for {epoch} epochs")
    return state


def keep_final_state(run_dir: Path) -> None:
    """Turn the checkpoint of a finished run's last epoch into its final state: the arrays renamed, then
    final-state.json naming them, then checkpoint.json removed (a kill between leaves no checkpoint to resume)."""
    info = files.read_json(run_dir / CHECKPOINT_INFO)
    os.replace(run_dir / info["arrays"], run_dir / FINAL_ARRAYS)
    files.write_json(run_dir / FINAL_INFO, {**info, "arrays": FINAL_ARRAYS})
    (run_dir / CHECKPOINT_INFO).unlink(missing_ok=True)


def restore(trainer, state: TrainingState) -> None:
    """Put the saved weights and optimizer variables back; refused if they do not fit this network."""
    trainer.set_state(EngineState(state.weights, state.optimizer_variables, state.extra))


def remove_checkpoint(run_dir: Path) -> None:
    """checkpoint.json first, so a kill halfway leaves no checkpoint rather than one without its arrays."""
    (run_dir / CHECKPOINT_INFO).unlink(missing_ok=True)
    _remove_arrays(run_dir)


class Keeper(Listener):
    """Holds the latest good training state in memory and writes it when asked (or when it is old).

    A listener: after each chunk of epochs it takes the state (`on_chunk`).

    With `trace` (the run's `trace.Trace`), each checkpoint also carries the trace up to its epoch.
    """

    def __init__(self, run_dir: Path, trainer, seed: int, seconds_before: float = 0.0,
                 save_every: float | None = None, trace=None):
        self.run_dir, self.trainer, self.seed, self.trace = run_dir, trainer, seed, trace
        self.seconds_before = seconds_before
        # Seconds between writes while the run goes on; None: SAVE_EVERY_SECONDS (tests shorten it).
        self.save_every = SAVE_EVERY_SECONDS if save_every is None else save_every
        self.started = time.perf_counter()
        self.last_written = time.monotonic()
        self.latest: TrainingState | None = None
        self.arrays_name: str | None = None  # the arrays file written last

    def take(self, epoch: int, rows) -> None:
        """Copy the state after `epoch` epochs, unless the last loss is not finite (those weights are lost)."""
        if rows and not math.isfinite(rows[-1][0]):
            return
        self.latest = capture(self.trainer, epoch, rows, self.train_seconds(), self.trace)
        if time.monotonic() - self.last_written >= self.save_every:
            self.save()

    def on_chunk(self, epoch: int, history) -> None:
        self.take(epoch, history.rows)

    def train_seconds(self) -> float:
        return self.seconds_before + time.perf_counter() - self.started

    def save(self) -> int | None:
        """Write the latest state; returns its epoch, or None when there is none yet."""
        if self.latest is None:
            return None
        self.arrays_name = write_checkpoint(self.run_dir, self.latest, self.seed)
        self.last_written = time.monotonic()
        return self.latest.epoch
