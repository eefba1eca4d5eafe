"""Checkpoints: the exact training state of an unfinished run, so it can continue where it stopped.

    runs/beans4-hidden2/20261123-153012-1/
        checkpoint.npz    weights, optimizer variables, history rows (plain arrays, no pickles)
        checkpoint.json   epoch, seed, training seconds so far, the .npz's SHA-256

    >>> keeper = Keeper(run_dir, model, optimizer, seed=0)
    >>> keeper.take(epoch, history)        # after every chunk of epochs: an in-memory copy
    >>> keeper.save()                      # on an interrupt, a failure or divergence
    >>> state = read_checkpoint(run_dir)   # `beanstrain fit --resume RUN_DIR`
    >>> restore(model, optimizer, state)

A copy is taken in memory after every chunk of epochs whose loss is finite
and written to disk when the run stops early (and every few minutes, so a
killed process loses little).  Since every epoch's batches depend only on
(seed, epoch), a run resumed from a checkpoint ends with the same weights as
one that never stopped.
"""

from __future__ import annotations

import math
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from beanstrain import runs
from beanstrain.errors import RunError

CHECKPOINT_ARRAYS, CHECKPOINT_INFO = "checkpoint.npz", "checkpoint.json"
# A running job writes its latest copy this often, so a process killed
# without warning (power cut, SIGKILL) loses at most this much training.
SAVE_EVERY_SECONDS = 120.0


@dataclass
class TrainingState:
    """Everything needed to continue a run: `epoch` epochs are done."""

    epoch: int
    weights: list[np.ndarray]
    optimizer_variables: list[np.ndarray]
    history_rows: list[list[float]]  # may run past `epoch` (a run's live history); its first `epoch` rows count
    train_seconds: float


def capture(model, optimizer, epoch: int, rows, train_seconds: float) -> TrainingState:
    """The state after `epoch` epochs: copies of the weights and optimizer variables.

    `rows` is kept as it is, not copied: a run's history only grows, so its
    first `epoch` rows stay this state's; copying it after every chunk would
    cost time that grows with the square of the epochs.
    """
    return TrainingState(epoch, [np.array(value) for value in model.get_weights()],
                         [np.array(variable.numpy()) for variable in optimizer.variables],
                         rows, train_seconds)


def write_checkpoint(run_dir: Path, state: TrainingState, seed: int) -> None:
    """checkpoint.npz, then checkpoint.json naming its SHA-256; each file is replaced atomically."""
    arrays = {f"weight_{index}": value for index, value in enumerate(state.weights)}
    arrays.update({f"optimizer_{index}": value for index, value in enumerate(state.optimizer_variables)})
    rows = state.history_rows[:state.epoch]
    arrays["history"] = np.array(rows, dtype=np.float64).reshape(len(rows), len(rows[0]) if rows else 0)
    with runs.atomic_path(run_dir / CHECKPOINT_ARRAYS) as temporary:
        np.savez(temporary, **arrays)
        digest = runs.file_sha256(temporary)
    runs.write_json(run_dir / CHECKPOINT_INFO, {
        "epoch": state.epoch, "seed": seed, "train_seconds": state.train_seconds,
        "weights": len(state.weights), "optimizer_variables": len(state.optimizer_variables),
        "sha256": digest, "saved": time.strftime("%Y-%m-%dT%H:%M:%S"),
    })


def has_checkpoint(run_dir: Path) -> bool:
    return (run_dir / CHECKPOINT_INFO).is_file() and (run_dir / CHECKPOINT_ARRAYS).is_file()


def read_checkpoint(run_dir: Path) -> TrainingState:
    """The saved state, refused (one line) if either file is missing, damaged or does not match the other."""
    info_path, arrays_path = run_dir / CHECKPOINT_INFO, run_dir / CHECKPOINT_ARRAYS
    info = runs.read_json(info_path)
    try:
        epoch, weights, variables = int(info["epoch"]), int(info["weights"]), int(info["optimizer_variables"])
        expected, train_seconds = str(info["sha256"]), float(info.get("train_seconds", 0.0))
    except (KeyError, TypeError, ValueError):
        raise RunError(f"{info_path} is damaged (a field is missing or not a number)") from None
    if not arrays_path.is_file():
        raise RunError(f"{run_dir} has {CHECKPOINT_INFO} but no {CHECKPOINT_ARRAYS}")
    if runs.file_sha256(arrays_path) != expected:
        raise RunError(f"{arrays_path} does not match {CHECKPOINT_INFO} (SHA-256 differs); "
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
            )
    except Exception as error:  # a damaged zip fails in many ways inside NumPy
        reason = (str(error).strip("'\" \n").splitlines() or [type(error).__name__])[0][:200]
        raise RunError(f"{arrays_path} cannot be read: {reason}") from None
    if len(state.history_rows) != epoch:
        raise RunError(f"{arrays_path} holds {len(state.history_rows)} history rows for {epoch} epochs")
    return state


def restore(model, optimizer, state: TrainingState) -> None:
    """Put the saved weights and optimizer variables back; refused if they do not fit this network."""
    shapes = [tuple(weight.shape) for weight in model.get_weights()]
    if shapes != [tuple(weight.shape) for weight in state.weights]:
        raise RunError(f"the checkpoint's weights {[tuple(w.shape) for w in state.weights]} "
                       f"do not fit the network's {shapes}")
    if not optimizer.built:
        optimizer.build(model.trainable_variables)
    variables = optimizer.variables
    if [tuple(variable.shape) for variable in variables] != [tuple(value.shape) for value in
                                                            state.optimizer_variables]:
        raise RunError("the checkpoint's optimizer state does not fit this optimizer")
    model.set_weights(state.weights)
    for variable, value in zip(variables, state.optimizer_variables):
        variable.assign(value)


def remove_checkpoint(run_dir: Path) -> None:
    for name in (CHECKPOINT_INFO, CHECKPOINT_ARRAYS):
        (run_dir / name).unlink(missing_ok=True)


class Keeper:
    """Holds the latest good training state in memory and writes it when asked (or when it is old)."""

    def __init__(self, run_dir: Path, model, optimizer, seed: int, seconds_before: float = 0.0,
                 save_every: float | None = None):
        self.run_dir, self.model, self.optimizer, self.seed = run_dir, model, optimizer, seed
        self.seconds_before = seconds_before
        # Seconds between writes while the run goes on; None: SAVE_EVERY_SECONDS (tests shorten it).
        self.save_every = SAVE_EVERY_SECONDS if save_every is None else save_every
        self.started = time.perf_counter()
        self.last_written = time.monotonic()
        self.latest: TrainingState | None = None

    def take(self, epoch: int, rows) -> None:
        """Copy the state after `epoch` epochs, unless the last loss is not finite (those weights are lost)."""
        if rows and not math.isfinite(rows[-1][0]):
            return
        self.latest = capture(self.model, self.optimizer, epoch, rows, self.train_seconds())
        if time.monotonic() - self.last_written >= self.save_every:
            self.save()

    def train_seconds(self) -> float:
        return self.seconds_before + time.perf_counter() - self.started

    def save(self) -> int | None:
        """Write the latest state; returns its epoch, or None when there is none yet."""
        if self.latest is None:
            return None
        write_checkpoint(self.run_dir, self.latest, self.seed)
        self.last_written = time.monotonic()
        return self.latest.epoch
