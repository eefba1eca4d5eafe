"""The trainer protocol: what every engine's trainer offers, and the data and history it works with.

    >>> history = History(history_columns("binary", "test"))
    >>> history.columns
    ['loss', 'accuracy', 'test_loss', 'test_accuracy']

Every engine's trainer reports the same history columns, trains with
`run(start_epoch, epochs, ...)`, gives and takes its state for checkpoints
(`get_state` / `set_state`), and keeps copies of the weights at the epochs
(or steps) it was asked to snapshot, for the weight trace.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np


@dataclass
class TrainData:
    """Training arrays (targets already encoded for the loss) and an optional held-out set.

    `held_out_name` is "test" for generated sets (a fresh draw) and "val" for
    image sets (the validation split); history columns are named after it.
    """

    x: np.ndarray
    y: np.ndarray
    held_out_x: np.ndarray | None = None
    held_out_y: np.ndarray | None = None
    held_out_name: str = "test"

    @property
    def has_held_out(self) -> bool:
        return self.held_out_x is not None and len(self.held_out_x) > 0


def history_columns(accuracy: str | None, held_out_name: str | None) -> list[str]:
    """The metrics a trainer reports per epoch, in order.

    >>> history_columns("binary", "test")
    ['loss', 'accuracy', 'test_loss', 'test_accuracy']
    >>> history_columns(None, None)   # regression, no held-out set
    ['loss']
    """
    metrics = ["loss"] + (["accuracy"] if accuracy else [])
    held_out = [f"{held_out_name}_{metric}" for metric in metrics] if held_out_name else []
    return metrics + held_out


@dataclass
class History:
    """Per-epoch metrics: `columns` name each value of a row; `epochs_done` counts rows.

    >>> history = History(["loss"], [[0.5], [float("nan")]])
    >>> history.epochs_done, history.last(), history.diverged_at()
    (2, {'loss': nan}, 2)
    """

    columns: list[str]
    rows: list[list[float]] = field(default_factory=list)

    @property
    def epochs_done(self) -> int:
        return len(self.rows)

    def column(self, name: str) -> list[float]:
        index = self.columns.index(name)
        return [row[index] for row in self.rows]

    def last(self) -> dict[str, float]:
        return dict(zip(self.columns, self.rows[-1])) if self.rows else {}

    def diverged_at(self) -> int | None:
        """The 1-based epoch whose loss was first NaN or infinite, if any."""
        for epoch, loss in enumerate(self.column("loss"), start=1):
            if not math.isfinite(loss):
                return epoch
        return None


@dataclass
class EngineState:
    """Everything a trainer keeps between epochs, as NumPy arrays: what a checkpoint saves."""

    weights: list[np.ndarray]
    optimizer_variables: list[np.ndarray]  # the optimizer's slots (step count, momenta), in its own order
    extra: dict[str, np.ndarray] = field(default_factory=dict)  # anything else a trainer keeps, by name


@runtime_checkable
class Trainer(Protocol):
    """What every engine's trainer offers.

    `snapshots` maps each epoch asked for in `snapshot_epochs` (0: before the
    first epoch) to a copy of every layer's weights after that epoch, once
    the run has reached it.  A trainer with a `snapshot_steps` attribute can
    snapshot inside epochs: when that is set (global optimizer steps), its
    `snapshots` are keyed by step instead (`trace.Trace.take(by_step=True)`).
    """

    columns: list[str]
    snapshots: dict[int, list[np.ndarray]]
    # The most epochs one chunk may train (None: the engine's own pace); early stopping sets 1.
    most_epochs_per_chunk: int | None

    def run(self, start_epoch: int, epochs: int, on_chunk: Callable[[int, History], None] | None = None,
            should_stop: Callable[[], bool] | None = None, history: History | None = None) -> History:
        """Train from `start_epoch` up to `epochs`, appending to `history` (a fresh one by default);
        `on_chunk(epoch, history)` after every chunk of epochs, stopping early when `should_stop()`
        says so or the loss stops being finite."""

    def get_state(self) -> EngineState:
        """Copies of the weights and the optimizer's variables."""

    def set_state(self, state: EngineState) -> None:
        """Put a saved state back; a `RunError` when it does not fit this network and optimizer."""
